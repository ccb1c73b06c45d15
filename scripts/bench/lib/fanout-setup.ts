/**
 * What the fan-out benchmark (scripts/bench/fanout.ts) runs against: a "setup" is one or more mothership
 * processes behind a list of API base URLs, their broker, and the process ids whose CPU and memory count.
 * `startEmbedded` makes the default setup (SQLite in a temp data dir, the embedded MQTT broker, one
 * replica); ./fanout-replicas.ts fills in the same interface with PostgreSQL, Mosquitto and two replicas.
 *
 * Also here: the admin API client (requests go round robin over the replicas; a failed request fails
 * the benchmark, nothing is retried), pools made from fresh P-256 keys and CSRs, and /proc readings of
 * CPU time, resident memory and the open-files limit.
 */
import { existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface FanoutSetup {
  /** Carried by every row name, e.g. "sqlite + embedded broker, 1 replica". */
  name: string;
  /** Which mothership program runs (a path, and whether it is older than the sources). */
  mothership: string;
  /** Base URLs (`https://host:port`) of the replicas' APIs; requests go round robin. */
  apiUrls: string[];
  /** Overrides the broker endpoint of the pool tokens (an external broker reached another way); else the tokens' own. */
  brokerUrl?: string;
  /** The mothership processes: CPU and RSS rows sum over them. */
  pids: number[];
  adminToken: string;
  /** PEM of the CA that issued the API's server certificate. */
  ca: string;
  /** The last lines of the replicas' logs, for a failure report. */
  logTail(lines: number): string;
  stop(): Promise<void>;
}

const repoRoot = join(import.meta.dir, "../../..");
const arch = process.arch === "arm64" ? "aarch64" : "x86_64";

/** A free loopback port (released before the caller binds it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** The newest modification time of a file below `dir`, in ms. */
function newest(dir: string): number {
  let t = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) t = Math.max(t, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return t;
}

/**
 * The mothership command: BENCH_MOTHERSHIP (an executable, or a `main.ts` run with bun), else the
 * compiled dist/mothership-<arch>, built first when missing. `label` says which, and whether the binary
 * is older than the sources (then it measures an older mothership than the tree's).
 */
export function mothershipCommand(): { cmd: string[]; label: string } {
  const chosen = process.env.BENCH_MOTHERSHIP;
  if (chosen) return { cmd: chosen.endsWith(".ts") ? [process.execPath, chosen] : [chosen], label: chosen };
  const compiled = join(repoRoot, "dist", `mothership-${arch}`);
  if (!existsSync(compiled)) {
    const r = spawnSync(process.execPath, ["build/build.ts", "--target", arch], { cwd: repoRoot, stdio: ["ignore", "inherit", "inherit"] });
    if (r.status !== 0 || !existsSync(compiled)) throw new Error("building the mothership failed (bun build/build.ts)");
  }
  const stale = statSync(compiled).mtimeMs < newest(join(repoRoot, "src"));
  const label = `dist/mothership-${arch}${stale ? ` (older than src/: bun build/build.ts --target ${arch} to measure the tree)` : ""}`;
  return { cmd: [compiled], label };
}

/** `mothership serve` with SQLite in a fresh temp data dir and the embedded broker, loopback ports only. */
export async function startEmbedded(): Promise<FanoutSetup> {
  const dir = mkdtempSync(join(tmpdir(), "bench-fanout-"));
  const data = join(dir, "data");
  const logFile = join(dir, "mothership.log");
  const http = await freePort();
  const mqtt = await freePort();
  const out = openSync(logFile, "a");
  const mothership = mothershipCommand();
  const proc = Bun.spawn([...mothership.cmd, "serve", "--data", data, "--http", `127.0.0.1:${http}`, "--mqtt", `127.0.0.1:${mqtt}`], {
    stdout: out,
    stderr: out,
    stdin: "ignore",
  });
  const logTail = (lines: number) => {
    try {
      return readFileSync(logFile, "utf8").split("\n").slice(-lines).join("\n");
    } catch {
      return "";
    }
  };
  const stop = async () => {
    if (proc.exitCode === null) {
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
      await proc.exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const deadline = Date.now() + 30_000;
    while (!readFileSync(logFile, "utf8").includes("mothership ready")) {
      if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`mothership did not start:\n${logTail(15)}`);
      await Bun.sleep(50);
    }
    return {
      name: "sqlite + embedded broker, 1 replica",
      mothership: mothership.label,
      apiUrls: [`https://127.0.0.1:${http}`],
      pids: [proc.pid],
      adminToken: readFileSync(join(data, "admin-token"), "utf8").trim(),
      ca: readFileSync(join(data, "ca", "ca.crt"), "utf8"),
      logTail,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The admin API of a setup. Every non-2xx answer throws with the route, the status and the API's error code. */
export class AdminApi {
  private next = 0;

  constructor(private readonly setup: FanoutSetup) {}

  async call<T>(method: "GET" | "POST", path: string, body?: unknown): Promise<T> {
    const base = this.setup.apiUrls[this.next++ % this.setup.apiUrls.length]!;
    const res = await fetch(`${base}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${this.setup.adminToken}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      tls: { ca: this.setup.ca },
    });
    const text = await res.text();
    if (!res.ok) {
      let why = text.slice(0, 200);
      try {
        const e = (JSON.parse(text) as { error?: { code?: string; message?: string } }).error;
        if (e) why = `${e.code ?? ""}: ${e.message ?? ""}`;
      } catch {
        // not JSON: the start of the text says enough
      }
      throw new Error(`${method} ${path}: HTTP ${res.status} ${why}`);
    }
    return JSON.parse(text) as T;
  }
}

export interface BenchPool {
  id: string;
  /** The pool token as `pool create` prints it (base64). */
  token: string;
  /** PEM of the pool's private key (PKCS#8, EC P-256). */
  keyPem: string;
  stack: string;
}

/** A fresh EC P-256 key and a CSR for it, as an operator makes them (`openssl req -newkey ec`). */
function keyAndCsr(dir: string, name: string): { keyPem: string; csrPem: string } {
  const keyPath = join(dir, `${name}.key`);
  const csrPath = join(dir, `${name}.csr`);
  const r = spawnSync("openssl", ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", keyPath, "-out", csrPath, "-subj", `/CN=${name}`], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`openssl req failed: ${r.stderr}`);
  return { keyPem: readFileSync(keyPath, "utf8"), csrPem: readFileSync(csrPath, "utf8") };
}

/** `count` pools, each with one stack (its image is never pulled: the simulated launchers run nothing). */
export async function createPools(api: AdminApi, count: number, prefix: string): Promise<BenchPool[]> {
  const dir = mkdtempSync(join(tmpdir(), "bench-fanout-keys-"));
  try {
    const pools: BenchPool[] = [];
    for (let i = 0; i < count; i++) {
      const name = `${prefix}-${i}`;
      const { keyPem, csrPem } = keyAndCsr(dir, name);
      const created = await api.call<{ pool: { id: string }; token: string }>("POST", "/pools", { name, csr: csrPem });
      const stack = await api.call<{ id: string }>("POST", "/stacks", {
        name: `${name}-stack`,
        pool: created.pool.id,
        image: "bench/never-pulled:latest",
        phases: [{ name: "plan", commands: ["true"] }],
      });
      pools.push({ id: created.pool.id, token: created.token, keyPem, stack: stack.id });
    }
    return pools;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const CLOCK_TICKS = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;

/** utime + stime of the processes in ms, from /proc/PID/stat (NaN once one is gone). */
export function cpuMs(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      // Fields after the command name, which may hold spaces: state is field 3, utime 14, stime 15.
      const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(rest[11]) + Number(rest[12]);
    } catch {
      return NaN;
    }
  }
  return (ticks * 1000) / CLOCK_TICKS;
}

/** VmRSS of the processes in kB, summed (NaN once one is gone). */
export function rssKb(pids: number[]): number {
  let kb = 0;
  for (const pid of pids) {
    try {
      kb += Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? NaN);
    } catch {
      return NaN;
    }
  }
  return kb;
}

/** The soft limit on open files of a process ("Max open files" in /proc/PID/limits). */
export function openFilesLimit(pid: number | "self"): number {
  const line = /^Max open files\s+(\S+)/m.exec(readFileSync(`/proc/${pid}/limits`, "utf8"))?.[1];
  return line === "unlimited" ? Infinity : Number(line);
}
