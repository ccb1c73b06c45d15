/**
 * Two `mothership serve` processes (replicas) on one fresh PostgreSQL database and one private
 * Mosquitto configured only by `mothership broker-config mosquitto`, as an operator runs them: the
 * first replica starts on an empty data dir (making the CA, admin token, secrets.key and downlink
 * signer key), is stopped, and its data dir is copied for the second, so both hold the same files.
 * Each replica is its own process (a test can SIGKILL one); the database URL, password included,
 * reaches it in MOTHERSHIP_DATABASE_URL, never on its command line. Tokens advertise a round-robin
 * TCP forwarder in front of both HTTPS ports as their comms URL (./round-robin.ts), so long-poll
 * launchers are served by either replica. Launchers are the real agent with the shell executor
 * (in process, or in a process of their own: ./launcher-process.ts). Each replica's JSON log lines go
 * to a file the tests read. Everything started here is stopped by its PID.
 */
import { cp, rm } from "node:fs/promises";
import { openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, stopPid } from "../../../scripts/testenv/util.ts";
import { createTestDatabase, type TestDatabase } from "../../support/postgres.ts";
import { startAgent, type TestAgent } from "../agent/harness.ts";
import { ShellExecutor } from "../agent/shell-executor.ts";
import { Mosquitto, mothershipCli, type RunJson, type WorkerJson } from "../carriers/carrier-world.ts";
import { opensslKeyAndCsr, repoRoot, tempDir, waitFor } from "../mothership/harness.ts";
import { RoundRobin } from "./round-robin.ts";

export const HEARTBEAT_SECONDS = 2;
export type Carrier = "mqtt" | "poll";

/** One line a replica logged, with the replica's name. */
export interface LogLine {
  replica: string;
  msg: string;
  [field: string]: unknown;
}

export class Replica {
  proc: Bun.Subprocess | null = null;
  readonly logFile: string;

  constructor(
    readonly name: string,
    readonly data: string,
    readonly httpPort: number,
    private readonly args: string[],
    private readonly env: Record<string, string>,
    dir: string,
  ) {
    this.logFile = join(dir, `replica-${name}.log`);
  }

  get url(): string {
    return `https://127.0.0.1:${this.httpPort}`;
  }

  async start(): Promise<void> {
    const before = this.log().split("mothership ready").length;
    const out = openSync(this.logFile, "a");
    const argv = [process.execPath, join(repoRoot, "src/mothership/main.ts"), "serve", "--data", this.data, "--http", `127.0.0.1:${this.httpPort}`, ...this.args];
    this.proc = Bun.spawn(argv, { stdout: out, stderr: out, stdin: "ignore", env: { ...process.env, ...this.env, MOTHERSHIP_REPLICA_ID: this.name } });
    const proc = this.proc;
    await waitFor(`replica ${this.name} ready`, () => {
      if (proc.exitCode !== null) throw new Error(`replica ${this.name} exited ${proc.exitCode}:\n${this.log().slice(-3000)}`);
      return this.log().split("mothership ready").length > before;
    }, 30_000);
  }

  /** SIGKILL: no goodbye to the broker or the database, nothing finished. */
  async kill(): Promise<void> {
    if (!this.proc) return;
    this.proc.kill("SIGKILL");
    await this.proc.exited;
    this.proc = null;
  }

  async stop(): Promise<void> {
    if (!this.proc) return;
    await stopPid(this.proc.pid, 10_000);
    await this.proc.exited;
    this.proc = null;
  }

  log(): string {
    try {
      return readFileSync(this.logFile, "utf8");
    } catch {
      return "";
    }
  }

  lines(): LogLine[] {
    const out: LogLine[] = [];
    for (const line of this.log().split("\n")) {
      if (!line.startsWith("{")) continue;
      try {
        out.push({ ...(JSON.parse(line) as { msg: string }), replica: this.name });
      } catch {
        // a line cut by SIGKILL
      }
    }
    return out;
  }
}

/** A launcher in its own process (./launcher-process.ts). */
export interface LauncherProcess {
  worker: string;
  proc: Bun.Subprocess;
}

export class ReplicaWorld {
  readonly replicas: Replica[] = [];
  readonly agents: TestAgent[] = [];
  readonly processes: LauncherProcess[] = [];
  /** `schedule` messages each launcher received, by run: worker ids, one per message. */
  readonly schedules = new Map<string, string[]>();
  mosquitto!: Mosquitto;
  forwarder!: RoundRobin;
  pool = "";
  token = "";
  keyPath = "";
  adminToken = "";
  ca = "";
  private db: TestDatabase | null = null;
  private dir!: Awaited<ReturnType<typeof tempDir>>;
  private nextApi = 0;

  constructor(private readonly databaseServer: string) {}

  async start(): Promise<void> {
    this.dir = await tempDir("replicas-");
    const dataA = join(this.dir.path, "data-a");
    const dataB = join(this.dir.path, "data-b");
    const brokerPort = await freePort();
    const out = join(this.dir.path, "mosquitto");
    // Running as root, Mosquitto would drop to its own user, who cannot read the 0600 server key.
    const user = process.getuid?.() === 0 ? ["--user", "root"] : [];
    const r = await mothershipCli(["broker-config", "mosquitto", "--out", out, "--listen", `127.0.0.1:${brokerPort}`, "--data", dataA, ...user]);
    if (r.code !== 0) throw new Error(`broker-config failed: ${r.stderr}`);
    this.mosquitto = new Mosquitto(join(out, "mosquitto.conf"), brokerPort, join(this.dir.path, "mosquitto.log"));
    await this.mosquitto.start();
    const pidFile = join(this.dir.path, "mosquitto.pid");
    await Bun.write(pidFile, String(this.mosquitto.pid));
    this.db = await createTestDatabase(this.databaseServer);

    const ports = [await freePort(), await freePort()];
    this.forwarder = new RoundRobin(ports);
    await this.forwarder.start();
    const args = [
      "--broker", `mqtts://127.0.0.1:${brokerPort}`,
      "--broker-crl", join(out, "ca.crl"),
      "--broker-reload-command", `kill -HUP $(cat ${pidFile})`,
      "--comms-url", `https://127.0.0.1:${this.forwarder.port}`,
      "--heartbeat", String(HEARTBEAT_SECONDS),
      "--schedule-timeout", "30",
    ];
    const env = { MOTHERSHIP_DATABASE_URL: this.db.url };
    const a = new Replica("a", dataA, ports[0]!, args, env, this.dir.path);
    const b = new Replica("b", dataB, ports[1]!, args, env, this.dir.path);
    this.replicas.push(a, b);
    // The first start makes the shared files; the second replica gets a copy of them, not its own.
    await a.start();
    await a.stop();
    await cp(dataA, dataB, { recursive: true });
    // What each replica keeps for itself: where its API listens, and its name if it made one.
    for (const own of ["endpoint.json", "replica-id"]) await rm(join(dataB, own), { force: true });
    await Promise.all([a.start(), b.start()]);
    this.adminToken = readFileSync(join(dataA, "admin-token"), "utf8").trim();
    this.ca = readFileSync(join(dataA, "ca", "ca.crt"), "utf8");

    const made = opensslKeyAndCsr(this.dir.path, "spacelift", ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
    this.keyPath = made.keyPath;
    const created = await this.api<{ pool: { id: string }; token: string }>("POST", "/pools", { name: "replicas", csr: readFileSync(made.csrPath, "utf8") }, a);
    this.pool = created.pool.id;
    this.token = created.token;
  }

  /** The admin API of `via`, else of each live replica in turn. */
  async api<T>(method: string, path: string, body?: unknown, via?: Replica): Promise<T> {
    const live = this.replicas.filter((r) => r.proc !== null);
    const replica = via ?? live[this.nextApi++ % live.length]!;
    const res = await fetch(`${replica.url}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${this.adminToken}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      tls: { ca: this.ca },
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path} via ${replica.name}: ${res.status} ${text}`);
    return JSON.parse(text) as T;
  }

  /** A launcher in this process; every `schedule` it receives is counted in `schedules`. */
  async launch(carrier: Carrier, executor = new ShellExecutor()): Promise<TestAgent> {
    const scratch = await tempDir("replica-scratch-");
    const counted = { worker: "" };
    const a = await startAgent({
      token: this.token,
      keyPath: this.keyPath,
      scratch: scratch.path,
      executor,
      protocol: carrier,
      tamper: (m) => {
        if (m.type === "schedule") this.schedules.set(m.run, [...(this.schedules.get(m.run) ?? []), counted.worker]);
        return m;
      },
    });
    counted.worker = a.worker;
    this.agents.push(a);
    void a.exit.catch(() => 1).finally(() => scratch.remove());
    await this.registered(a.worker);
    return a;
  }

  /** A launcher in a process of its own, for a test that SIGKILLs it. */
  async launchProcess(carrier: Carrier): Promise<LauncherProcess> {
    const scratch = join(this.dir.path, `scratch-${this.processes.length}`);
    const proc = Bun.spawn([process.execPath, join(import.meta.dir, "launcher-process.ts"), this.keyPath, scratch, carrier], {
      stdout: "pipe",
      stderr: "inherit",
      stdin: "ignore",
      env: { ...process.env, REPLICA_TEST_TOKEN: this.token },
    });
    const reader = proc.stdout.getReader();
    const first = await reader.read();
    reader.releaseLock();
    const worker = (JSON.parse(new TextDecoder().decode(first.value ?? new Uint8Array())) as { worker: string }).worker;
    const launched = { worker, proc };
    this.processes.push(launched);
    await this.registered(worker);
    return launched;
  }

  private async registered(worker: string): Promise<void> {
    await waitFor("worker registered", async () => (await this.workers()).find((w) => w.id === worker), 20_000);
  }

  workers(): Promise<WorkerJson[]> {
    return this.api<WorkerJson[]>("GET", `/workers?pool=${this.pool}`);
  }

  async stack(name: string, commands: string[]): Promise<string> {
    const body = { name, pool: this.pool, image: "busybox", environment: [], phases: [{ name: "plan", commands }] };
    return (await this.api<{ id: string }>("POST", "/stacks", body)).id;
  }

  async trigger(stack: string, via?: Replica): Promise<string> {
    return (await this.api<{ id: string }>("POST", "/runs", { stack }, via)).id;
  }

  run(id: string): Promise<RunJson> {
    return this.api<RunJson>("GET", `/runs/${id}`);
  }

  async settled(run: string, timeoutMs = 60_000): Promise<RunJson> {
    return waitFor(`run ${run} to end`, async () => {
      const r = await this.run(run);
      return ["FINISHED", "FAILED", "CANCELED"].includes(r.state) ? r : null;
    }, timeoutMs);
  }

  /** The whole stored log of a run, page by page, with the seqs it came in. */
  async logs(run: string): Promise<{ text: string; seqs: number[]; done: boolean }> {
    let after = -1;
    let text = "";
    const seqs: number[] = [];
    for (;;) {
      const page = await this.api<{ chunks: Array<{ seq: number; data: string }>; done: boolean }>("GET", `/runs/${run}/logs?after=${after}&limit=1000`);
      for (const c of page.chunks) {
        seqs.push(c.seq);
        text += Buffer.from(c.data, "base64").toString("utf8");
      }
      if (page.chunks.length === 0) return { text, seqs, done: page.done };
      after = page.chunks.at(-1)!.seq;
    }
  }

  /** What both replicas logged with message `msg` (JSON lines), in file order per replica. */
  logged(msg: string): LogLine[] {
    return this.replicas.flatMap((r) => r.lines()).filter((l) => l.msg === msg);
  }

  /** Every run state change of `run` either replica logged, as `FROM->TO`. */
  transitions(run: string): string[] {
    return this.logged("run state").filter((l) => l.run === run).map((l) => `${String(l.from)}->${String(l.to)}`);
  }

  async close(): Promise<void> {
    for (const a of this.agents) a.agent.stopSignal();
    for (const a of this.agents) a.agent.stopSignal();
    await Promise.all(this.agents.map((a) => Promise.race([a.exit.catch(() => 1), Bun.sleep(3_000)])));
    for (const p of this.processes) if (p.proc.exitCode === null && p.proc.signalCode === null) p.proc.kill("SIGKILL");
    for (const r of this.replicas) await r.stop();
    await this.forwarder?.close();
    await this.mosquitto?.stop();
    await this.db?.drop();
    if (process.env.REPLICA_TEST_KEEP) console.error(`replica test files kept in ${this.dir.path}`);
    else await this.dir?.remove();
  }
}
