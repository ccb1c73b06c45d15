/**
 * One mothership (in process) reached through one carrier: the embedded broker, a real Mosquitto
 * configured only by `mothership broker-config mosquitto` (its own process on a free loopback port,
 * never the shared test broker), or HTTP long-poll. Launchers are the real agent with the real
 * transport (test/integration/agent/harness.ts) and a shell executor. Everything started here is
 * stopped by its PID.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "../../../scripts/testenv/util.ts";
import { createLogger, silentLogger } from "../../../src/log/logger.ts";
import { startMothership, type RunningMothership } from "../../../src/mothership/serve.ts";
import { startAgent, type TestAgent } from "../agent/harness.ts";
import { ShellExecutor } from "../agent/shell-executor.ts";
import { opensslKeyAndCsr, tempDir, waitFor } from "../mothership/harness.ts";
import { Mosquitto, mothershipCli } from "./mosquitto-process.ts";

export type CarrierName = "embedded-broker" | "mosquitto" | "poll";
export const CARRIERS: readonly CarrierName[] = ["embedded-broker", "mosquitto", "poll"];
export const HEARTBEAT_SECONDS = 2;

export interface RunJson { id: string; state: string; reason: string | null; exit_code: number | null; worker: string | null; messages: string[] }
export interface WorkerJson { id: string; status: string; metadata: Record<string, string> }

export { Mosquitto, mosquittoInstalled, mothershipCli } from "./mosquitto-process.ts";

export class CarrierWorld {
  server!: RunningMothership;
  mosquitto: Mosquitto | null = null;
  pool = "";
  token = "";
  keyPath = "";
  readonly agents: TestAgent[] = [];
  private dir!: Awaited<ReturnType<typeof tempDir>>;

  constructor(readonly carrier: CarrierName) {}

  get data(): string {
    return join(this.dir.path, "data");
  }

  get path(): string {
    return this.dir.path;
  }

  async start(): Promise<void> {
    this.dir = await tempDir(`carrier-${this.carrier}-`);
    let externalBroker;
    if (this.carrier === "mosquitto") {
      const port = await freePort();
      const out = join(this.dir.path, "mosquitto");
      // Running as root, Mosquitto would drop to its own user, who cannot read the 0600 server key.
      const user = process.getuid?.() === 0 ? ["--user", "root"] : [];
      const r = await mothershipCli(["broker-config", "mosquitto", "--out", out, "--listen", `127.0.0.1:${port}`, "--data", this.data, ...user]);
      if (r.code !== 0) throw new Error(`broker-config failed: ${r.stderr}`);
      this.mosquitto = new Mosquitto(join(out, "mosquitto.conf"), port, join(this.dir.path, "mosquitto.log"));
      await this.mosquitto.start();
      const pidFile = join(this.dir.path, "mosquitto.pid");
      externalBroker = { url: `mqtts://127.0.0.1:${port}`, crlPath: join(out, "ca.crl"), reloadCommand: `kill -HUP $(cat ${pidFile})` };
      await Bun.write(pidFile, String(this.mosquitto.pid));
    }
    await this.startServer(externalBroker);
    const made = opensslKeyAndCsr(this.dir.path, "spacelift", ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
    this.keyPath = made.keyPath;
    const created = await this.api<{ pool: { id: string }; token: string }>("POST", "/pools", { name: `contract-${this.carrier}`, csr: readFileSync(made.csrPath, "utf8") });
    this.pool = created.pool.id;
    this.token = created.token;
  }

  private externalBroker: Parameters<typeof startMothership>[0]["externalBroker"];

  /** Starts (or starts again) the mothership on the same data dir and ports. */
  async startServer(externalBroker = this.externalBroker): Promise<void> {
    this.externalBroker = externalBroker;
    const prev = this.server;
    this.server = await startMothership({
      dataDir: this.data,
      httpHost: "127.0.0.1",
      httpPort: prev?.httpPort ?? 0,
      httpPlain: false,
      mqttHost: "127.0.0.1",
      mqttPort: prev && !externalBroker ? prev.mqttPort : 0,
      externalBroker,
      brokerEndpoint: externalBroker?.url,
      namespace: "spacelift",
      heartbeatSeconds: HEARTBEAT_SECONDS,
      scheduleTimeoutMs: 60_000,
      logger: process.env.CARRIER_TEST_LOG ? createLogger({ level: "debug", pretty: true }) : silentLogger,
    });
  }

  /** The CRL file Mosquitto reads (`--broker-crl`). */
  get crlPath(): string {
    return join(this.dir.path, "mosquitto", "ca.crl");
  }

  /** The mosquitto pid file the reload command reads, after a restart of Mosquitto. */
  async mosquittoRestarted(): Promise<void> {
    await Bun.write(join(this.dir.path, "mosquitto.pid"), String(this.mosquitto!.pid));
  }

  async api<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(`${this.server.httpUrl}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${this.server.adminToken}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      tls: { ca: this.server.caPem },
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return JSON.parse(text) as T;
  }

  async launch(o: { executor?: ShellExecutor; token?: string; keyPath?: string; metadata?: Record<string, string>; onTransport?: Parameters<typeof startAgent>[0]["onTransport"]; registered?: boolean; pool?: string } = {}): Promise<TestAgent> {
    const scratch = await tempDir("carrier-scratch-");
    const a = await startAgent({
      token: o.token ?? this.token,
      keyPath: o.keyPath ?? this.keyPath,
      scratch: scratch.path,
      executor: o.executor ?? new ShellExecutor(),
      metadata: o.metadata,
      protocol: this.carrier === "poll" ? "poll" : "mqtt",
      onTransport: o.onTransport,
    });
    this.agents.push(a);
    void a.exit.catch(() => 1).finally(() => scratch.remove());
    if (o.registered !== false) await waitFor("worker registered", async () => (await this.workers(o.pool)).find((w) => w.id === a.worker), 20_000);
    return a;
  }

  workers(pool = this.pool): Promise<WorkerJson[]> {
    return this.api<WorkerJson[]>("GET", `/workers?pool=${pool}`);
  }

  async stack(name: string, phases: Record<string, string[]>): Promise<string> {
    const body = { name, pool: this.pool, image: "busybox", environment: [], phases: Object.entries(phases).map(([n, commands]) => ({ name: n, commands })) };
    return (await this.api<{ id: string }>("POST", "/stacks", body)).id;
  }

  async trigger(stack: string): Promise<string> {
    return (await this.api<{ id: string }>("POST", "/runs", { stack })).id;
  }

  run(id: string): Promise<RunJson> {
    return this.api<RunJson>("GET", `/runs/${id}`);
  }

  async settled(run: string, timeoutMs = 30_000): Promise<RunJson> {
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
      const page = await this.api<{ chunks: Array<{ seq: number; data: string }>; next: number; done: boolean }>("GET", `/runs/${run}/logs?after=${after}&limit=1000`);
      for (const c of page.chunks) {
        seqs.push(c.seq);
        text += Buffer.from(c.data, "base64").toString("utf8");
      }
      if (page.chunks.length === 0) return { text, seqs, done: page.done };
      after = page.chunks.at(-1)!.seq;
    }
  }

  async close(): Promise<void> {
    for (const a of this.agents) a.agent.stopSignal();
    for (const a of this.agents) a.agent.stopSignal();
    await Promise.all(this.agents.map((a) => Promise.race([a.exit.catch(() => 1), Bun.sleep(3_000)])));
    await this.server?.stop();
    await this.mosquitto?.stop();
    await this.dir?.remove();
  }
}
