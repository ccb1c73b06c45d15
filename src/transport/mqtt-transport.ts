/**
 * The MQTT transport (src/protocol/README.md): mutual TLS with the pool certificate and key, the Last Will on the
 * worker's writeonly topic, a subscription to its readonly topic, QoS 1 both ways, and a reconnect loop
 * of our own with jittered exponential backoff (mqtt.js's fixed reconnect period would bring a whole
 * fleet back in lock step). Every connection attempt is a fresh client; what it did not get
 * acknowledged is carried over to the next one, so `send` is at-least-once across reconnects.
 */
import type { IClientOptions, MqttClient } from "mqtt";
import type * as MqttClientModule from "mqtt/lib/client";
import type * as MqttTlsModule from "mqtt/lib/connect/tls";
import { errorMessage } from "../errors.ts";
import type { Logger } from "../log/logger.ts";
import type { DownlinkVerifier } from "../protocol/downlink-signature.ts";
import { encodeMessage, type UplinkMessage } from "../protocol/messages.ts";
import { wirePayload } from "./log-message.ts";
import { backoffDelay, DEFAULT_BACKOFF, type BackoffPolicy } from "./backoff.ts";
import { DownlinkReceiver } from "./downlink.ts";
import { Emitter } from "./emitter.ts";
import { FirstConnect, closedError } from "./first-connect.ts";
import type { ProxyServer } from "../config/proxy.ts";
import { tunnelStream } from "./proxy.ts";
import { mqttRefusal, RefusalCounter } from "./refusals.ts";
import type { Transport, TransportEvents } from "./transport.ts";

// The client and its TLS connector only: MQTT.js's entry point also loads the WebSocket, TCP and
// mini-program connectors and the URL parsing that a launcher never uses (docs/performance.md).
// require, not import: these files set `exports.default`, which Bun's bundler and its runtime read
// differently for a default import.
const { default: MqttClientClass } = require("mqtt/lib/client") as typeof MqttClientModule;
const { default: buildTlsStream } = require("mqtt/lib/connect/tls") as typeof MqttTlsModule;

export interface MqttTransportOptions {
  /** `mqtts://host:port` (the token's broker endpoint). */
  endpoint: string;
  /** `ca`: the token's CA, plus the operator's extra CAs (a broker certificate from a corporate CA). */
  tls: { cert: string; key: string; ca: string | readonly string[]; servername?: string };
  /** An HTTPS_PROXY to reach the broker through (src/transport/proxy.ts); TLS runs end to end inside its tunnel. */
  proxy?: ProxyServer | undefined;
  /** `<pool>.<worker>` (mqttClientId): one connection per worker, and the broker's session identity. */
  clientId: string;
  /** Where the mothership writes to this worker. */
  subscribeTopic: string;
  /** Where this worker writes (and where its Last Will goes). */
  publishTopic: string;
  /** Published by the broker when the connection is lost without a DISCONNECT. */
  will: UplinkMessage;
  /** Made fresh and published first after every (re)connect (the hello), before anything queued. */
  greeting: () => UplinkMessage;
  /** Checks that each downlink message is signed by the mothership for this worker (src/transport/downlink.ts). */
  verifier: DownlinkVerifier;
  logger: Logger;
  backoff?: BackoffPolicy;
  connectTimeoutMs?: number;
  keepaliveSeconds?: number;
}

interface Outgoing {
  /** The message's JSON; a log chunk's as prebuilt bytes (./log-message.ts). */
  payload: string | Buffer;
  type: string;
  /** Greetings are never resent: the next connection makes its own. */
  greeting: boolean;
  /** Generation of the client it was handed to, 0 when waiting. */
  sentOn: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

type Phase = "new" | "connecting" | "connected" | "waiting" | "closed";

export class MqttTransport implements Transport {
  private readonly events: Emitter<TransportEvents>;
  private readonly log: Logger;
  private queue: Outgoing[] = [];
  private client: MqttClient | null = null;
  private generation = 0;
  private phase: Phase = "new";
  private attempt = 0;
  private everConnected = false;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly firstConnect = new FirstConnect();
  private readonly refusals = new RefusalCounter();
  private readonly downlink: DownlinkReceiver;

  constructor(private readonly opts: MqttTransportOptions) {
    this.log = opts.logger.child({ component: "mqtt" });
    this.events = new Emitter<TransportEvents>((err) => this.log.error("transport event handler failed", { error: errorMessage(err) }));
    this.downlink = new DownlinkReceiver(opts.verifier, this.log, (m) => this.events.emit("message", m));
  }

  on<E extends keyof TransportEvents>(event: E, handler: TransportEvents[E]): () => void {
    return this.events.on(event, handler);
  }

  connect(signal?: AbortSignal): Promise<void> {
    if (this.phase === "closed") return Promise.reject(closedError());
    if (this.everConnected) return Promise.resolve();
    const first = this.firstConnect.wait("the broker", signal);
    if (this.phase === "new") this.open();
    return first;
  }

  send(message: UplinkMessage): Promise<void> {
    if (this.phase === "closed") return Promise.reject(closedError());
    return new Promise<void>((resolve, reject) => {
      const item: Outgoing = { payload: wirePayload(message), type: message.type, greeting: false, sentOn: 0, resolve, reject };
      this.queue.push(item);
      if (this.phase === "connected") this.publish(item);
    });
  }

  async close(clean: boolean): Promise<void> {
    if (this.phase === "closed") return;
    this.phase = "closed";
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const client = this.client;
    this.client = null;
    if (client) {
      if (!clean) destroyStream(client);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 2_000);
        client.end(!clean, () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    for (const item of this.queue.splice(0)) item.reject(closedError());
    this.firstConnect.closed();
  }

  private open(): void {
    if (this.phase === "closed") return;
    this.phase = "connecting";
    const generation = ++this.generation;
    const o = this.opts;
    // Host and port, not the URL string: mqtt.js would parse a string with the deprecated url.parse().
    const url = new URL(o.endpoint);
    // Always TLS: the pool certificate is the worker's identity (an mqtt:// endpoint gets TLS too, as
    // MQTT.js's own connect() does when given a certificate).
    const options: IClientOptions = {
      protocol: "mqtts",
      hostname: url.hostname.replace(/^\[|\]$/g, ""),
      port: Number(url.port || (url.protocol === "mqtt:" ? 1883 : 8883)),
      clientId: o.clientId,
      cert: o.tls.cert,
      key: o.tls.key,
      ca: typeof o.tls.ca === "string" ? o.tls.ca : [...o.tls.ca],
      servername: o.tls.servername,
      rejectUnauthorized: true,
      protocolVersion: 4,
      // Without it mqtt-packet pre-builds a 2-byte buffer for each of the 65,536 packet ids on the first
      // write and keeps them all: ~4 MB resident for the launcher's life (docs/performance.md).
      writeCache: false,
      clean: true,
      reconnectPeriod: 0,
      connectTimeout: o.connectTimeoutMs ?? 10_000,
      keepalive: o.keepaliveSeconds ?? 30,
      will: { topic: o.publishTopic, payload: Buffer.from(encodeMessage(o.will)), qos: 1, retain: false },
    };
    const proxy = o.proxy;
    const client = new MqttClientClass(
      // Through a proxy, MQTT.js's TLS connector gets the tunnel as its socket (Node's tls.connect `socket`).
      proxy
        ? (c) => buildTlsStream(c, { ...options, socket: tunnelStream(proxy, options.hostname!, options.port!, { timeoutMs: options.connectTimeout! }) } as IClientOptions)
        : (c) => buildTlsStream(c, options),
      options,
    );
    this.client = client;
    let lastError: string | null = null;
    let refusal: string | undefined;
    client.on("error", (err) => {
      lastError = errorMessage(err);
      refusal = mqttRefusal(err) ?? refusal;
      this.log.warn("broker connection error", { endpoint: o.endpoint, error: lastError });
    });
    client.on("message", (topic, payload) => {
      if (generation === this.generation) this.receive(topic, payload);
    });
    client.on("connect", () => {
      client.subscribe(o.subscribeTopic, { qos: 1 }, (err, granted) => {
        if (generation !== this.generation || this.phase === "closed") return;
        const refused = err ?? (granted?.some((g) => g.qos === 128) ? new Error(`subscription to ${o.subscribeTopic} refused`) : null);
        if (refused) {
          lastError = errorMessage(refused);
          this.log.error("cannot subscribe to the worker topic", { topic: o.subscribeTopic, error: lastError });
          destroyStream(client);
          return;
        }
        this.onConnected();
      });
    });
    client.on("close", () => {
      if (generation !== this.generation) return;
      client.removeAllListeners("message");
      client.end(true);
      this.onDropped(lastError, refusal);
    });
  }

  private onConnected(): void {
    const reconnect = this.everConnected;
    this.phase = "connected";
    this.attempt = 0;
    this.refusals.connected();
    this.everConnected = true;
    this.log.info(reconnect ? "reconnected to the broker" : "connected to the broker", { endpoint: this.opts.endpoint });
    const greeting = this.opts.greeting();
    this.queue.unshift({ payload: encodeMessage(greeting), type: greeting.type, greeting: true, sentOn: 0, resolve: () => {}, reject: () => {} });
    for (const item of this.queue) this.publish(item);
    this.events.emit("connected", { reconnect });
    this.firstConnect.connected();
  }

  private onDropped(error: string | null, refusal?: string): void {
    if (this.phase === "closed") return;
    const wasConnected = this.phase === "connected";
    if (refusal !== undefined && this.refusals.refused()) {
      if (wasConnected) this.events.emit("disconnected", { error });
      this.events.emit("refused", { reason: refusal, attempts: this.refusals.attempts });
      void this.close(false);
      return;
    }
    // What the old connection did not get acknowledged goes out again on the next one.
    this.queue = this.queue.filter((item) => !item.greeting);
    for (const item of this.queue) item.sentOn = 0;
    this.phase = "waiting";
    const delay = backoffDelay(this.opts.backoff ?? DEFAULT_BACKOFF, this.attempt++);
    if (wasConnected) this.events.emit("disconnected", { error });
    this.log.info("broker connection lost, retrying", { endpoint: this.opts.endpoint, retry_in_ms: delay, error });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.open();
    }, delay);
  }

  private publish(item: Outgoing): void {
    const client = this.client;
    if (!client || item.sentOn !== 0) return;
    const generation = this.generation;
    item.sentOn = generation;
    client.publish(this.opts.publishTopic, item.payload, { qos: 1 }, (err) => {
      if (item.sentOn !== generation) return;
      if (err) {
        // The connection went; onDropped has put it back in line (or will).
        return;
      }
      const at = this.queue.indexOf(item);
      if (at >= 0) this.queue.splice(at, 1);
      item.resolve();
    });
  }

  private receive(topic: string, payload: Buffer): void {
    if (topic !== this.opts.subscribeTopic) {
      this.log.warn("message on an unexpected topic dropped", { topic });
      return;
    }
    void this.downlink.receive(payload);
  }
}


/** Cuts the socket without an MQTT DISCONNECT: to the broker this is a crash, so it publishes the Last Will. */
function destroyStream(client: MqttClient): void {
  try {
    (client.stream as { destroy?: () => void } | undefined)?.destroy?.();
  } catch {
    // already gone
  }
}
