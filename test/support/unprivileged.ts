/**
 * Runs a piece of TypeScript as an ordinary user. The tests run as root, and root reads every file
 * whatever its mode, so behaviour that depends on permissions is asserted in a child process that
 * dropped to nobody (65534) with `setpriv`. Run by an ordinary user already, the child runs as that user.
 */
import { spawnSync } from "node:child_process";

export const NOBODY = 65534;

export interface ChildResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * `script` is module source (absolute import paths); `input` arrives on its stdin as JSON. Paths it
 * touches must be reachable by nobody (a mkdtemp folder is 0700: chmod it 0755 first).
 */
export function runUnprivileged(script: string, input: unknown = null): ChildResult {
  const root = process.getuid?.() === 0;
  const bun = process.execPath;
  const [cmd, args] = root
    ? ["setpriv", [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", bun, "-e", script]]
    : [bun, ["-e", script]];
  const r = spawnSync(cmd, args, {
    input: JSON.stringify(input),
    encoding: "utf8",
    cwd: "/",
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: "/tmp", TMPDIR: "/tmp" },
    timeout: 30_000,
  });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Like runUnprivileged, for a script that prints one JSON value; fails with the child's stderr otherwise. */
export function unprivilegedJson<T>(script: string, input: unknown = null): T {
  const r = runUnprivileged(script, input);
  if (r.status !== 0) throw new Error(`the unprivileged child exited ${r.status}: ${r.stderr.trim()}`);
  return JSON.parse(r.stdout) as T;
}
