/** Small helpers shared by the test-environment scripts. */
import { createServer } from "node:net";

/** A free TCP port on 127.0.0.1 (the kernel picks it; released before the caller binds it). */
export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export async function waitFor(what: string, timeoutMs: number, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe().catch(() => false)) return;
    await Bun.sleep(100);
  }
  throw new Error(`${what} did not become ready within ${timeoutMs / 1000}s`);
}

/** Terminates a process we started, by its PID: SIGTERM, then SIGKILL after `graceMs`. */
export async function stopPid(pid: number, graceMs: number): Promise<void> {
  if (!alive(pid)) return;
  process.kill(pid, "SIGTERM");
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!alive(pid)) return;
    await Bun.sleep(100);
  }
  if (alive(pid)) process.kill(pid, "SIGKILL");
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function sh(cmd: string, args: string[], opts: { cwd?: string } = {}): string {
  const r = Bun.spawnSync([cmd, ...args], { cwd: opts.cwd, stderr: "pipe", stdout: "pipe" });
  if (r.exitCode !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} failed (${r.exitCode}): ${r.stderr.toString().trim()}`);
  }
  return r.stdout.toString();
}
