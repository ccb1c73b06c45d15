/**
 * Test harness for the mothership: a real server on loopback ports picked at start, pools made
 * from real `openssl req` CSRs, and a fake launcher that is a real mqtt.js client speaking the
 * protocol over mutual TLS with the pool certificate from the token and the openssl key.
 */
import "reflect-metadata";
import mqtt, { type MqttClient } from "mqtt";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger, silentLogger } from "../../../src/log/logger.ts";
import { decodeToken, type PoolToken } from "../../../src/pki/token.ts";
import { importRunDecryptionKey } from "../../../src/protocol/envelope.ts";
import { DownlinkVerifier } from "../../../src/protocol/downlink-signature.ts";
import { encodeMessage, makeMessage, type DownlinkMessage, type MessageBody, type UplinkMessage } from "../../../src/protocol/messages.ts";
import { mqttClientId, readonlyTopic, writeonlyTopic } from "../../../src/protocol/topics.ts";
import { startMothership, type RunningMothership } from "../../../src/mothership/serve.ts";
import { DownlinkReceiver } from "../../../src/transport/downlink.ts";
import { ulid } from "../../../src/protocol/ulid.ts";

export const repoRoot = join(import.meta.dir, "../../..");

export async function tempDir(prefix: string): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

export async function startServer(dataDir: string, opts: { http?: number; mqtt?: number; heartbeatSeconds?: number } = {}): Promise<RunningMothership> {
  return startMothership({
    dataDir,
    httpHost: "127.0.0.1",
    httpPort: opts.http ?? 0,
    httpPlain: false,
    mqttHost: "127.0.0.1",
    mqttPort: opts.mqtt ?? 0,
    namespace: "spacelift",
    heartbeatSeconds: opts.heartbeatSeconds ?? 30,
    scheduleTimeoutMs: 60_000,
    logger: process.env.MOTHERSHIP_TEST_LOG ? createLogger({ level: "debug", pretty: true }) : silentLogger,
  });
}

/** `openssl req -new -newkey <alg> -nodes`, the documented operator step. */
export function opensslKeyAndCsr(dir: string, name: string, newkey: string[] = ["rsa:4096"]): { keyPath: string; csrPath: string } {
  const keyPath = join(dir, `${name}.key`);
  const csrPath = join(dir, `${name}.csr`);
  const r = Bun.spawnSync(["openssl", "req", "-new", "-newkey", ...newkey, "-nodes", "-keyout", keyPath, "-out", csrPath, "-subj", `/CN=${name}`], { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`openssl req failed: ${r.stderr.toString()}`);
  return { keyPath, csrPath };
}

/** Starts the real CLI (`bun src/mothership/main.ts ...`) against the server's data dir. */
export function spawnCli(dataDir: string, args: string[]) {
  return Bun.spawn([process.execPath, join(repoRoot, "src/mothership/main.ts"), ...args, "--data", dataDir], {
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, MOTHERSHIP_URL: "", MOTHERSHIP_TOKEN: "", MOTHERSHIP_CA: "" },
  });
}

/** Runs the real CLI against the server's data dir, to its end. */
export async function cli(dataDir: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = spawnCli(dataDir, args);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

export async function cliJson<T>(dataDir: string, args: string[]): Promise<T> {
  const r = await cli(dataDir, [...args, "--json"]);
  if (r.code !== 0) throw new Error(`mothership ${args.join(" ")} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

export async function waitFor<T>(what: string, probe: () => T | undefined | null | Promise<T | undefined | null>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(25);
  }
}

export class FakeLauncher {
  readonly worker = ulid();
  readonly received: DownlinkMessage[] = [];
  /** Every raw delivery, including ones for topics that are not this worker's. */
  readonly deliveries: Array<{ topic: string; payload: string }> = [];
  client!: MqttClient;

  constructor(
    readonly token: PoolToken,
    private readonly keyPem: string,
    private readonly brokerUrl: string = token.broker?.endpoint ?? "",
  ) {}

  static async fromToken(tokenText: string, keyPath: string, brokerUrl?: string): Promise<FakeLauncher> {
    const token = decodeToken(tokenText);
    return new FakeLauncher(token, await readFile(keyPath, "utf8"), brokerUrl ?? token.broker?.endpoint);
  }

  get uplink(): string {
    return writeonlyTopic("spacelift", this.token.pool, this.worker);
  }

  get downlink(): string {
    return readonlyTopic("spacelift", this.token.pool, this.worker);
  }

  async connect(): Promise<void> {
    this.client = mqtt.connect(this.brokerUrl, {
      key: this.keyPem,
      cert: this.token.certificate,
      ca: this.token.ca,
      clientId: mqttClientId(this.token.pool, this.worker),
      reconnectPeriod: 0,
      connectTimeout: 5000,
      will: { topic: this.uplink, payload: Buffer.from(encodeMessage(makeMessage("gone", { crashed: true }))), qos: 1, retain: false },
    });
    const verifier = new DownlinkVerifier({ ca: this.token.ca, pool: this.token.pool, worker: this.worker });
    const downlink = new DownlinkReceiver(verifier, silentLogger, (m) => this.received.push(m));
    this.client.on("message", (topic, payload) => {
      this.deliveries.push({ topic, payload: payload.toString() });
      if (topic !== this.downlink) return;
      // Checked as a launcher checks it: only what the mothership signed for this worker counts.
      void downlink.receive(payload);
    });
    this.client.on("error", () => {});
    await new Promise<void>((resolve, reject) => {
      this.client.once("connect", () => resolve());
      this.client.once("error", reject);
      this.client.once("close", () => reject(new Error("connection closed before CONNACK")));
    });
    await this.client.subscribeAsync(this.downlink, { qos: 1 });
  }

  async send<T extends UplinkMessage["type"]>(type: T, body: MessageBody<T>, topic = this.uplink): Promise<void> {
    await this.client.publishAsync(topic, encodeMessage(makeMessage(type, body)), { qos: 1 });
  }

  async hello(metadata: Record<string, string> = {}, run: string | null = null): Promise<void> {
    await this.send("hello", { metadata, version: "1.2.3", arch: "x86_64", state: run ? "BUSY" : "IDLE", run });
  }

  async next<T extends DownlinkMessage["type"]>(type: T, where: (m: Extract<DownlinkMessage, { type: T }>) => boolean = () => true, timeoutMs = 10_000) {
    return waitFor(`${type} message`, () => this.received.find((m): m is Extract<DownlinkMessage, { type: T }> => m.type === type && where(m as Extract<DownlinkMessage, { type: T }>)), timeoutMs);
  }

  async decryptionKey(): Promise<CryptoKey> {
    const der = Buffer.from(this.keyPem.replace(/-----[^-]+-----|\s/g, ""), "base64");
    return importRunDecryptionKey(new Uint8Array(der));
  }

  /** Cuts the TCP connection without DISCONNECT, as a SIGKILLed launcher would: the broker publishes the Last Will. */
  crash(): void {
    (this.client as unknown as { stream: { destroy(): void } }).stream.destroy();
  }

  async stop(): Promise<void> {
    await this.client.endAsync(true).catch(() => {});
  }
}
