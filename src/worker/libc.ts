/**
 * The two libc calls the worker needs and Bun does not expose: waitpid(2) to reap orphaned zombies
 * as PID 1, and prctl(PR_SET_DUMPABLE, 0) so that user commands, even as root without
 * CAP_SYS_PTRACE (Docker's default), cannot read the worker's memory and with it the marker nonce.
 * Loaded lazily through bun:ffi; in a bundle-started container libc.so.6 is the bundle's glibc.
 */
import { dlopen, FFIType } from "bun:ffi";

export interface Libc {
  /** waitpid(pid, NULL, WNOHANG): the pid when it was reaped, 0 when still running, -1 on error. */
  waitpidNoHang(pid: number): number;
  /** prctl(PR_SET_DUMPABLE, 0); true on success. Reset by execve, so children are unaffected. */
  setNotDumpable(): boolean;
}

const WNOHANG = 1;
const PR_SET_DUMPABLE = 4;

/** Opens libc, or returns null (with the reason) where it cannot be loaded, e.g. a musl-only host. */
export function openLibc(): { libc: Libc } | { libc: null; error: unknown } {
  try {
    const lib = dlopen("libc.so.6", {
      waitpid: { args: [FFIType.i32, FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
      prctl: { args: [FFIType.i32, FFIType.u64, FFIType.u64, FFIType.u64, FFIType.u64], returns: FFIType.i32 },
    });
    return {
      libc: {
        waitpidNoHang: (pid) => lib.symbols.waitpid(pid, null, WNOHANG),
        setNotDumpable: () => lib.symbols.prctl(PR_SET_DUMPABLE, 0n, 0n, 0n, 0n) === 0,
      },
    };
  } catch (error) {
    return { libc: null, error };
  }
}
