/**
 * Simulated launchers for the fan-out benchmark: light MQTT.js clients in one process that speak the
 * real protocol over the real broker (src/protocol/README.md), as the launcher's MQTT transport does —
 * mutual TLS with the pool certificate from the token and the pool key, client id `<pool>.<worker>`,
 * the Last Will `gone {crashed: true}` on the worker's writeonly topic, a QoS 1 subscription to its
 * readonly topic, then `hello`, and a `heartbeat` every interval the `registered` answer gives.
 *
 * Downlink messages are signed envelopes (src/protocol/downlink-signature.ts). By default a sim opens
 * each one structurally (the audience must be its own pool and worker, the inner message is checked by
 * decodeMessage as the launcher checks it) without verifying the ECDSA signature, so the benchmark's own
 * CPU stays off the 2 cores the mothership is measured on; `verify: true` checks everything exactly as a
 * launcher does (src/transport/downlink.ts).
 *
 * On `schedule` a sim answers `run_accepted`, then `run_finished` (reason ok, exit 0, last_seq -1: a run
 * that printed nothing) at once, after a hold, or when released, as its hooks decide per run.
 */
import mqtt, { type MqttClient } from "mqtt";
import { silentLogger } from "../../../src/log/logger.ts";
import { decodeToken, type PoolToken } from "../../../src/pki/token.ts";
import { DownlinkVerifier } from "../../../src/protocol/downlink-signature.ts";
import { decodeMessage, encodeMessage, makeMessage, type DownlinkMessage, type MessageBody, type UplinkMessage } from "../../../src/protocol/messages.ts";
import { mqttClientId, readonlyTopic, writeonlyTopic } from "../../../src/protocol/topics.ts";
import { ulid } from "../../../src/protocol/ulid.ts";
import { DownlinkReceiver } from "../../../src/transport/downlink.ts";

/** What a sim does with a run it was given: finish at once, after `ms`, or when `release()` is called. */
export type RunBehaviour = { kind: "instant" } | { kind: "hold"; ms: number } | { kind: "keep" };

export interface SimHooks {
  /** A schedule arrived (`at`: performance.now() when the sim had it); the answer says how the run goes. */
  onSchedule(sim: SimLauncher, run: string, at: number): RunBehaviour;
  /** The sim sent run_finished for `run`. */
  onFinished?(sim: SimLauncher, run: string): void;
  /** An `error` message from the mothership, or a downlink message the sim could not open. */
  onProblem?(sim: SimLauncher, what: string): void;
}

export interface SimCredentials {
  /** The pool token as printed (base64). */
  token: string;
  keyPem: string;
  /** Connect here instead of the token's broker endpoint. */
  brokerUrl?: string | undefined;
}

const DOCKER_OK = { ok: true, message: "" };

export class SimLauncher {
  readonly worker = ulid();
  readonly token: PoolToken;
  /** performance.now() when the connection was started and when `registered` arrived. */
  startedAt = 0;
  registeredAt = 0;
  /** The run this sim holds, if any. */
  run: string | null = null;
  private client: MqttClient | null = null;
  private heartbeat: ReturnType<typeof setInterval> | null = null;
  private holdTimer: ReturnType<typeof setTimeout> | null = null;
  private onRegistered: (() => void) | null = null;
  private readonly uplink: string;
  private readonly downlink: string;

  constructor(
    private readonly creds: SimCredentials,
    private readonly hooks: SimHooks,
    private readonly verify = false,
  ) {
    this.token = decodeToken(creds.token);
    const ns = this.token.broker?.namespace ?? "spacelift";
    this.uplink = writeonlyTopic(ns, this.token.pool, this.worker);
    this.downlink = readonlyTopic(ns, this.token.pool, this.worker);
  }

  /** Connects, subscribes and says hello; resolves once `registered` arrived. */
  connect(timeoutMs = 60_000): Promise<void> {
    const endpoint = new URL(this.creds.brokerUrl ?? this.token.broker?.endpoint ?? "");
    if (endpoint.protocol !== "mqtts:") throw new Error("the pool token names no mqtts:// broker: the fan-out benchmark needs one");
    this.startedAt = performance.now();
    const client = mqtt.connect({
      protocol: "mqtts",
      hostname: endpoint.hostname.replace(/^\[|\]$/g, ""),
      port: Number(endpoint.port),
      clientId: mqttClientId(this.token.pool, this.worker),
      cert: this.token.certificate,
      key: this.creds.keyPem,
      ca: this.token.ca,
      rejectUnauthorized: true,
      protocolVersion: 4,
      // As the launcher: without it mqtt-packet keeps ~4 MB of pre-built packet ids per client.
      writeCache: false,
      clean: true,
      reconnectPeriod: 0,
      connectTimeout: timeoutMs,
      keepalive: 30,
      will: { topic: this.uplink, payload: Buffer.from(encodeMessage(makeMessage("gone", { crashed: true }))), qos: 1, retain: false },
    });
    this.client = client;
    const deliver = (m: DownlinkMessage) => this.handle(m);
    const receiver = this.verify ? new DownlinkReceiver(new DownlinkVerifier({ ca: this.token.ca, pool: this.token.pool, worker: this.worker }), silentLogger, deliver) : null;
    client.on("message", (topic, payload) => {
      if (topic !== this.downlink) return;
      if (receiver) void receiver.receive(payload);
      else this.open(payload);
    });
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error(`not registered within ${timeoutMs} ms`)), timeoutMs);
      const fail = (err: Error) => {
        if (this.registeredAt !== 0) return;
        clearTimeout(timer);
        client.end(true);
        reject(err);
      };
      this.onRegistered = () => {
        clearTimeout(timer);
        resolve();
      };
      client.on("error", (err) => fail(err));
      client.on("close", () => {
        if (this.registeredAt === 0) fail(new Error("connection closed before registered"));
        else if (this.client === client) this.hooks.onProblem?.(this, "connection lost");
      });
      client.once("connect", () => {
        client.subscribe(this.downlink, { qos: 1 }, (err, granted) => {
          if (err || granted?.some((g) => g.qos === 128)) return fail(err ?? new Error(`subscription to ${this.downlink} refused`));
          this.send("hello", { metadata: { bench: "fanout" }, version: "bench", arch: process.arch === "arm64" ? "aarch64" : "x86_64", state: "IDLE", run: null, docker: DOCKER_OK });
        });
      });
    });
  }

  /** Finishes a run kept by a `keep` behaviour. */
  release(): void {
    if (this.run) this.finish(this.run);
  }

  /** Leaves as a launcher that stops cleanly: `gone {crashed: false}`, then DISCONNECT. */
  async stop(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.holdTimer) clearTimeout(this.holdTimer);
    const client = this.client;
    this.client = null;
    if (!client) return;
    if (client.connected) {
      await client.publishAsync(this.uplink, encodeMessage(makeMessage("gone", { crashed: false })), { qos: 1 }).catch(() => {});
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        client.end(true);
        resolve();
      }, 5_000);
      client.end(false, () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private send<T extends UplinkMessage["type"]>(type: T, body: MessageBody<T>): void {
    this.client?.publish(this.uplink, encodeMessage(makeMessage(type, body)), { qos: 1 });
  }

  /** The envelope opened without the signature check: audience, then the message as the launcher decodes it. */
  private open(payload: Buffer): void {
    let inner: unknown;
    try {
      const env = JSON.parse(payload.toString("utf8")) as { alg?: unknown; aud?: { pool?: unknown; worker?: unknown }; message?: unknown; sig?: unknown };
      if (env.alg !== "ES256" || typeof env.sig !== "string" || typeof env.message !== "string") return this.hooks.onProblem?.(this, "downlink-malformed");
      if (env.aud?.pool !== this.token.pool || env.aud.worker !== this.worker) return this.hooks.onProblem?.(this, "downlink-audience");
      inner = JSON.parse(env.message);
    } catch {
      return this.hooks.onProblem?.(this, "downlink-malformed");
    }
    const decoded = decodeMessage(inner, "downlink");
    if (decoded.kind === "ok") this.handle(decoded.message);
    else if (decoded.kind === "invalid") this.hooks.onProblem?.(this, `invalid ${decoded.type ?? "message"}`);
  }

  private handle(m: DownlinkMessage): void {
    switch (m.type) {
      case "registered":
        if (this.registeredAt === 0) {
          this.registeredAt = performance.now();
          this.heartbeat = setInterval(() => this.send("heartbeat", { state: this.run ? "BUSY" : "IDLE", run: this.run, docker: DOCKER_OK }), m.heartbeat_seconds * 1000);
          this.onRegistered?.();
        }
        return;
      case "schedule": {
        const at = performance.now();
        if (this.run) return this.send("run_rejected", { run: m.run, reason: "busy", messages: [] });
        this.run = m.run;
        this.send("run_accepted", { run: m.run });
        const how = this.hooks.onSchedule(this, m.run, at);
        if (how.kind === "instant") this.finish(m.run);
        else if (how.kind === "hold") this.holdTimer = setTimeout(() => this.finish(m.run), how.ms);
        return;
      }
      case "cancel":
        if (this.run === m.run) this.finish(m.run);
        return;
      case "error":
        this.hooks.onProblem?.(this, `error ${m.code}`);
        return;
      default:
        // log_ack, drain, undrain, cycle: nothing to do for a launcher that runs nothing.
        return;
    }
  }

  private finish(run: string): void {
    if (this.run !== run) return;
    this.run = null;
    this.holdTimer = null;
    this.send("run_finished", { run, exit_code: 0, reason: "ok", last_seq: -1 });
    this.hooks.onFinished?.(this, run);
  }
}

/** Runs `task` over `items` with at most `limit` at a time; rejects with the first failure. */
export async function eachBounded<T>(items: readonly T[], limit: number, task: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      await task(items[i]!, i);
    }
  });
  await Promise.all(lanes);
}

/** `count` sims spread evenly over the pools (sim i in pool i mod pools), connected `concurrency` at a time. */
export async function connectFleet(pools: readonly SimCredentials[], count: number, hooks: SimHooks, opts: { concurrency: number; verify?: boolean }): Promise<SimLauncher[]> {
  const sims = Array.from({ length: count }, (_, i) => new SimLauncher(pools[i % pools.length]!, hooks, opts.verify ?? false));
  try {
    await eachBounded(sims, opts.concurrency, (sim) => sim.connect());
  } catch (err) {
    await stopFleet(sims, opts.concurrency);
    throw err;
  }
  return sims;
}

export async function stopFleet(sims: readonly SimLauncher[], concurrency: number): Promise<void> {
  await eachBounded(sims, concurrency, (sim) => sim.stop());
}
