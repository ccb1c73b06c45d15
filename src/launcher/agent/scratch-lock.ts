/**
 * One launcher per scratch dir. Several launchers may share a host and its Docker daemon, each with
 * its own SPACELIFT_LAUNCHER_SCRATCH_DIR; two on one scratch dir would share a spool, workspaces and
 * the launcher identity (so each would remove the other's runs as orphans at start). That is a
 * configuration error, found at start: the launcher holds an exclusive flock(2) on
 * `<scratch>/launcher.lock` for as long as it lives, with its pid inside for the message. The kernel
 * drops the lock when the process dies however it dies (SIGKILL included), so there is no stale lock
 * to judge by pid, and it works between launchers in different PID namespaces on one file system.
 */
import { dlopen, FFIType, read } from "bun:ffi";
import { closeSync, ftruncateSync, mkdirSync, openSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { SpaceliftError, errorMessage } from "../../errors.ts";

/** @testSeam */
export const LOCK_FILE = "launcher.lock";
const LOCK_EX = 2;
const LOCK_NB = 4;
const EWOULDBLOCK = 11;

export interface ScratchLock {
  /** Releases the lock (closing the file); the process exiting does the same. */
  release(): void;
}

type Flock = (fd: number) => { locked: true } | { locked: false; errno: number };

let flockFn: Flock | undefined;

function flock(): Flock {
  if (flockFn !== undefined) return flockFn;
  const lib = dlopen("libc.so.6", {
    flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    __errno_location: { args: [], returns: FFIType.ptr },
  });
  flockFn = (fd) => {
    if (lib.symbols.flock(fd, LOCK_EX | LOCK_NB) === 0) return { locked: true };
    const at = lib.symbols.__errno_location();
    return { locked: false, errno: at === null ? 0 : read.i32(at, 0) };
  };
  return flockFn;
}

/** Takes the scratch dir for this process, or throws `scratch-dir-in-use` naming the holder. */
export function lockScratchDir(scratchDir: string): ScratchLock {
  const path = join(scratchDir, LOCK_FILE);
  let fd: number;
  try {
    mkdirSync(scratchDir, { recursive: true, mode: 0o755 });
    fd = openSync(path, "a+", 0o600);
  } catch (cause) {
    throw new SpaceliftError("scratch-dir-unusable", `cannot open ${path}: ${errorMessage(cause)}; SPACELIFT_LAUNCHER_SCRATCH_DIR must be a directory this user can write`, { cause });
  }
  let result: ReturnType<Flock>;
  try {
    result = flock()(fd);
  } catch (cause) {
    closeSync(fd);
    throw new SpaceliftError("scratch-dir-unusable", `cannot lock ${path}: ${errorMessage(cause)}`, { cause });
  }
  if (!result.locked) {
    closeSync(fd);
    if (result.errno !== EWOULDBLOCK && result.errno !== 0) throw new SpaceliftError("scratch-dir-unusable", `cannot lock ${path} (errno ${result.errno})`);
    const holder = holderPid(path);
    throw new SpaceliftError(
      "scratch-dir-in-use",
      `another launcher${holder !== undefined ? ` (pid ${holder})` : ""} is using the scratch dir ${scratchDir}; ` +
        "several launchers on one host need one SPACELIFT_LAUNCHER_SCRATCH_DIR each",
    );
  }
  ftruncateSync(fd, 0);
  writeSync(fd, `${process.pid}\n`);
  return { release: () => closeSync(fd) };
}

function holderPid(path: string): number | undefined {
  try {
    const text = readFileSync(path, "utf8").slice(0, 32).trim();
    return /^[0-9]{1,10}$/.test(text) ? Number(text) : undefined;
  } catch {
    return undefined;
  }
}
