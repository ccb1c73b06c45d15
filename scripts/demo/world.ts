/**
 * The operator workflow with the compiled binaries, as `make demo` shows it and the end-to-end tests
 * drive it: a mothership process on a temp data dir, an openssl key and CSR, a pool and its token, and
 * launcher processes started with SPACELIFT_TOKEN and the base64 key. Everything started here is
 * stopped by its PID.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, stopPid } from "../testenv/util.ts";

export const repoRoot = join(import.meta.dir, "../..");
export const dist = join(repoRoot, "dist");

export interface Binaries {
  mothership: string;
  launcher: string;
}

/** `bun build/build.ts --target x86_64` (or aarch64 on such a host). */
export function buildBinaries(log: (m: string) => void): Binaries {
  const arch = process.arch === "arm64" ? "aarch64" : "x86_64";
  log(`building the ${arch} binaries`);
  const r = spawnSync(process.execPath, ["build/build.ts", "--target", arch], { cwd: repoRoot, stdio: ["ignore", "inherit", "inherit"] });
  if (r.status !== 0) throw new Error("build failed");
  return { mothership: join(dist, `mothership-${arch}`), launcher: join(dist, `spacelift-launcher-${arch}`) };
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export class LauncherProcess {
  constructor(
    readonly proc: Bun.Subprocess,
    readonly logFile: string,
  ) {}

  get pid(): number {
    return this.proc.pid;
  }

  log(): string {
    return readFileSync(this.logFile, "utf8");
  }

  /** The launcher's JSON log records (its log file holds nothing else). */
  records(): Record<string, unknown>[] {
    return this.log().split("\n").flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
  }

  signal(sig: NodeJS.Signals): void {
    if (this.proc.exitCode === null) process.kill(this.pid, sig);
  }

  async stop(): Promise<void> {
    await stopPid(this.pid, 30_000);
    await this.proc.exited;
  }
}

export class DemoWorld {
  readonly dir = mkdtempSync(join(tmpdir(), "spacelift-demo-"));
  readonly data = join(this.dir, "mothership-data");
  readonly scratch = join(this.dir, "scratch");
  private mothership: Bun.Subprocess | null = null;
  private ports: { http: number; mqtt: number } | null = null;
  readonly launchers: LauncherProcess[] = [];
  token = "";
  pool = "";

  constructor(
    readonly bin: Binaries,
    readonly dockerHost: string,
    readonly log: (m: string) => void,
  ) {}

  /** `mothership serve` on free loopback ports (the same ones again after a restart). */
  async startMothership(): Promise<void> {
    this.ports ??= { http: await freePort(), mqtt: await freePort() };
    const out = openSync(join(this.dir, "mothership.log"), "a");
    const proc = Bun.spawn(
      [this.bin.mothership, "serve", "--data", this.data, "--http", `127.0.0.1:${this.ports.http}`, "--mqtt", `127.0.0.1:${this.ports.mqtt}`, "--heartbeat", "5"],
      { stdout: out, stderr: out, stdin: "ignore" },
    );
    this.mothership = proc;
    const deadline = Date.now() + 20_000;
    while (!readFileSync(join(this.dir, "mothership.log"), "utf8").includes("mothership ready")) {
      if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`mothership did not start:\n${readFileSync(join(this.dir, "mothership.log"), "utf8")}`);
      await Bun.sleep(50);
    }
    this.log(`mothership running (pid ${proc.pid}), api https://127.0.0.1:${this.ports.http}, broker mqtts://127.0.0.1:${this.ports.mqtt}`);
  }

  /** SIGKILL, by PID: the mothership gets no chance to close anything (a crash or an OOM kill). */
  async killMothership(): Promise<void> {
    if (!this.mothership) return;
    if (this.mothership.exitCode === null) process.kill(this.mothership.pid, "SIGKILL");
    await this.mothership.exited;
    this.mothership = null;
  }

  async stopMothership(): Promise<void> {
    if (!this.mothership) return;
    await stopPid(this.mothership.pid, 15_000);
    await this.mothership.exited;
    this.mothership = null;
  }

  async cli(args: string[]): Promise<CliResult> {
    const proc = Bun.spawn([this.bin.mothership, ...args, "--data", this.data], { stdout: "pipe", stderr: "pipe", env: { ...process.env, MOTHERSHIP_URL: "", MOTHERSHIP_TOKEN: "" } });
    const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    return { code, stdout, stderr };
  }

  async cliOk(args: string[]): Promise<string> {
    const r = await this.cli(args);
    if (r.code !== 0) throw new Error(`mothership ${args.join(" ")} failed (${r.code}): ${r.stderr}`);
    return r.stdout;
  }

  async json<T>(args: string[]): Promise<T> {
    return JSON.parse(await this.cliOk([...args, "--json"])) as T;
  }

  /** The documented operator step, then `pool create` with the CSR; keeps the token. */
  async createPool(name: string): Promise<void> {
    const r = spawnSync("openssl", ["req", "-new", "-newkey", "rsa:4096", "-nodes", "-keyout", "spacelift.key", "-out", "spacelift.csr", "-subj", `/CN=${name}`], { cwd: this.dir, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`openssl req failed: ${r.stderr}`);
    this.token = (await this.cliOk(["pool", "create", "--name", name, "--csr", join(this.dir, "spacelift.csr"), "--description", "made by make demo"])).trim();
    this.pool = (JSON.parse(Buffer.from(this.token, "base64").toString("utf8")) as { pool: string }).pool;
    this.log(`pool ${this.pool} created; token of ${this.token.length} characters`);
  }

  /** Starts `spacelift-launcher` with the token and `base64 -w0 spacelift.key`. */
  startLauncher(extraEnv: Record<string, string> = {}): LauncherProcess {
    const key = Buffer.from(readFileSync(join(this.dir, "spacelift.key"))).toString("base64");
    const logFile = join(this.dir, `launcher-${this.launchers.length + 1}.log`);
    const out = openSync(logFile, "a");
    const proc = Bun.spawn([this.bin.launcher], {
      stdout: out,
      stderr: out,
      stdin: "ignore",
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        SPACELIFT_TOKEN: this.token,
        SPACELIFT_POOL_PRIVATE_KEY: key,
        DOCKER_HOST: this.dockerHost,
        SPACELIFT_LAUNCHER_SCRATCH_DIR: this.scratch,
        SPACELIFT_METADATA_host: "demo-host",
        SPACELIFT_INSTANCE_METADATA_ENDPOINT: "off",
        ...extraEnv,
      },
    });
    const launcher = new LauncherProcess(proc, logFile);
    this.launchers.push(launcher);
    this.log(`launcher started (pid ${proc.pid})`);
    return launcher;
  }

  /** `stack create` with `--phase NAME=COMMAND` for each phase; the stack id. */
  async stack(name: string, image: string, phases: string[], extra: string[] = []): Promise<string> {
    return (await this.cliOk(["stack", "create", "--name", name, "--pool", this.pool, "--image", image, ...extra, ...phases.flatMap((p) => ["--phase", p])])).trim();
  }

  async trigger(stack: string): Promise<string> {
    return (await this.cliOk(["run", "trigger", stack])).trim();
  }

  showRun<T extends { state: string }>(run: string): Promise<T> {
    return this.json<T>(["run", "show", run]);
  }

  runLogs(run: string): Promise<string> {
    return this.cliOk(["run", "logs", run]);
  }

  workers<T>(): Promise<T[]> {
    return this.json<T[]>(["worker", "list", "--pool", this.pool]);
  }

  /** The run once it is FINISHED, FAILED or CANCELED. */
  runEnded<T extends { state: string }>(run: string, timeoutMs = 60_000): Promise<T> {
    return this.waitFor(`run ${run} to end`, async () => {
      const r = await this.showRun<T>(run);
      return ["FINISHED", "FAILED", "CANCELED"].includes(r.state) ? r : null;
    }, timeoutMs);
  }

  async waitFor<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 30_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await probe().catch(() => null);
      if (v !== null && v !== undefined && v !== false) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await Bun.sleep(100);
    }
  }

  /** A file only this user can read, in the world's temp dir (for `--secret-file`); its path. */
  privateFile(name: string, content: string): string {
    const path = join(this.dir, name);
    writeFileSync(path, content, { mode: 0o600 });
    return path;
  }

  /**
   * Where a secret shows in the clear: the mothership's output holding its admin token, or the
   * database files holding `secret` (stack secret values are stored encrypted).
   */
  secretLeaks(secret: string): string[] {
    const leaks: string[] = [];
    const token = readFileSync(join(this.data, "admin-token"), "utf8").trim();
    if (readFileSync(join(this.dir, "mothership.log"), "utf8").includes(token)) leaks.push("the mothership's output contains the admin token");
    for (const f of ["mothership.db", "mothership.db-wal", "mothership.db-shm"].map((n) => join(this.data, n))) {
      if (existsSync(f) && readFileSync(f).includes(Buffer.from(secret))) leaks.push(`${f} contains the secret`);
    }
    return leaks;
  }

  /** Stops every launcher and the mothership by PID, then removes the temp dir. */
  async close(): Promise<void> {
    for (const l of this.launchers) await l.stop().catch(() => {});
    await this.stopMothership().catch(() => {});
    rmSync(this.dir, { recursive: true, force: true });
  }
}
