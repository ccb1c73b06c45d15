/** Process measurements shared by the benchmarks: resident memory from /proc, medians, the compiled-Bun floor. */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Resident set of a process in MB (undefined once it is gone). */
export function rssMb(pid: number): number | undefined {
  try {
    const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
    return kb === undefined ? undefined : Number(kb) / 1024;
  } catch {
    return undefined;
  }
}

/** Resident memory split as `/proc/PID/smaps_rollup` gives it: anonymous, and pages of mapped files (the executable). */
export function residentSplit(pid: number): { rss: number; anon: number; file: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? NaN);
    const rss = kb("Rss") / 1024;
    const anon = kb("Anonymous") / 1024;
    return { rss, anon, file: rss - anon };
  } catch {
    return undefined;
  }
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}

/**
 * The floor of every compiled program: an empty one (`setInterval` only) compiled by the same Bun with
 * `--minify` — its resident memory when idle and its size in bytes.
 */
export async function compiledFloor(): Promise<{ rss: number; bytes: number }> {
  const dir = mkdtempSync(join(tmpdir(), "bench-floor-"));
  try {
    writeFileSync(join(dir, "idle.ts"), "setInterval(() => {}, 1000);\n");
    const r = spawnSync(process.execPath, ["build", "--compile", "--minify", join(dir, "idle.ts"), "--outfile", join(dir, "idle")], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`compiling the empty program failed: ${r.stderr}`);
    const proc = Bun.spawn([join(dir, "idle")], { stdio: ["ignore", "ignore", "ignore"] });
    await Bun.sleep(1_500);
    const rss = rssMb(proc.pid) ?? NaN;
    proc.kill();
    await proc.exited;
    return { rss, bytes: Bun.file(join(dir, "idle")).size };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
