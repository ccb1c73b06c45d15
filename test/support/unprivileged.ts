/**
 * Runs a piece of TypeScript as an ordinary user. The tests run as root, and root reads every file
 * whatever its mode, so behaviour that depends on permissions is asserted in a child process that
 * dropped to nobody (65534) with `setpriv`. Run by an ordinary user already, the child runs as that user.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";

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
  const spawn = (script: string): ChildResult => {
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
  };
  // Run by an ordinary user already, the child reads what its parent reads.
  return root ? withReachableRepo(script, spawn) : spawn(script);
}

/** Like runUnprivileged, for a script that prints one JSON value; fails with the child's stderr otherwise. */
export function unprivilegedJson<T>(script: string, input: unknown = null): T {
  const r = runUnprivileged(script, input);
  if (r.status !== 0) throw new Error(`the unprivileged child exited ${r.status}: ${r.stderr.trim()}`);
  return JSON.parse(r.stdout) as T;
}

const REPO = resolve(import.meta.dir, "../..");

/** True when every directory from / down to `dir` lets others through (o+x). */
function othersCanEnter(dir: string): boolean {
  for (let d = dir; ; d = dirname(d)) {
    if ((statSync(d).mode & 0o001) === 0) return false;
    if (d === dirname(d)) return true;
  }
}

/**
 * A clone inside a private directory (e.g. `mktemp -d`, 0700) cannot be read by nobody. Then the
 * child imports a copy of the sources (hard links where the file system allows) in a directory others
 * may enter, made for this one call and removed after it; the script's paths into the repository point
 * at the copy.
 */
function withReachableRepo<T>(script: string, run: (script: string) => T): T {
  if (othersCanEnter(REPO) || !script.includes(REPO)) return run(script);
  const dir = mkdtempSync(join(tmpdir(), "spacelift-unprivileged-"));
  try {
    chmodSync(dir, 0o755);
    if (!othersCanEnter(dir)) throw new Error(`tests as nobody need a directory others may enter; ${tmpdir()} is not one`);
    for (const part of ["src", "test", "node_modules", "package.json", "tsconfig.json", "bunfig.toml"]) {
      const linked = spawnSync("cp", ["-al", join(REPO, part), dir]);
      if (linked.status !== 0) spawnSync("cp", ["-a", join(REPO, part), dir]);
    }
    return run(script.split(REPO).join(dir));
  } finally {
    spawnSync("rm", ["-rf", dir]);
  }
}
