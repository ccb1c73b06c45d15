/**
 * The MQTT transport (src/protocol/README.md): mutual TLS with the pool certificate and key, the Last Will
 * (`gone {crashed: true}`) on the worker's writeonly topic, a subscription to its readonly topic, QoS 1
 * both ways. Reconnecting is the session's (./session.ts: jittered, capped backoff — mqtt.js's fixed
 * reconnect period would bring a whole fleet back in lock step). Every connection attempt is a fresh
 * client; what it did not get acknowledged is carried over to the next one, so `send` is
 * at-least-once across reconnects.
 */
import type { IClientOptions, MqttClient } from "mqtt";
import type * as MqttClientModule from "mqtt/lib/client";
import type * as MqttTlsModule from "mqtt/lib/connect/tls";
import { errorMessage } from "../errors.ts";
import type { Logger } from "../log/logger.ts";
import type { DownlinkVerifier } from "../protocol/downlink-signature.ts";
import { encodeMessage, makeMessage, type UplinkMessage } from "../protocol/messages.ts";
import { wirePayload } from "./log-message.ts";
import type { BackoffPolicy } from "./backoff.ts";
import { DownlinkReceiver } from "./downlink.ts";
import { closedError } from "./first-connect.ts";
import type { ProxyServer } from "../config/proxy.ts";
import { tunnelStream } from "./proxy.ts";
import { mqttRefusal } from "./refusals.ts";
import { ReconnectingSession } from "./session.ts";
import type { Transport } from "./transport.ts";

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

export class MqttTransport extends ReconnectingSession implements Transport {
  private queue: Outgoing[] = [];
  private client: MqttClient | null = null;
  private readonly downlink: DownlinkReceiver;
  /** Published by the broker when the connection is lost without a DISCONNECT: the mothership learns the worker crashed. */
  private readonly will = Buffer.from(encodeMessage(makeMessage("gone", { crashed: true })));

  constructor(private readonly opts: MqttTransportOptions) {
    const log = opts.logger.child({ component: "mqtt" });
    super({
      log,
      fields: { endpoint: opts.endpoint },
      peer: "the broker",
      says: { connected: "connected to the broker", reconnected: "reconnected to the broker", retrying: "broker connection lost, retrying" },
      backoff: opts.backoff,
    });
    this.downlink = new DownlinkReceiver(opts.verifier, log, (m) => this.events.emit("message", m));
  }

  send(message: UplinkMessage): Promise<void> {
    if (this.isClosed) return Promise.reject(closedError());
    return new Promise<void>((resolve, reject) => {
      const item: Outgoing = { payload: wirePayload(message), type: message.type, greeting: false, sentOn: 0, resolve, reject };
      this.queue.push(item);
      if (this.isConnected) this.publish(item);
    });
  }

  protected async teardown(clean: boolean): Promise<void> {
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
  }

  protected open(generation: number): void {
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
      will: { topic: o.publishTopic, payload: this.will, qos: 1, retain: false },
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
      const refused = mqttRefusal(err);
      refusal = refused ?? refusal;
      // A refusal is logged each time (there are at most MAX_REFUSALS); a transient error is in the session's one line per outage.
      if (refused === undefined) this.log.debug("broker connection error", { endpoint: o.endpoint, error: lastError });
      else this.log.warn("broker connection error", { endpoint: o.endpoint, error: lastError, refusal: refused });
    });
    client.on("message", (topic, payload) => {
      if (generation === this.generation) this.receive(topic, payload);
    });
    client.on("connect", () => {
      client.subscribe(o.subscribeTopic, { qos: 1 }, (err, granted) => {
        if (generation !== this.generation) return;
        const refused = err ?? (granted?.some((g) => g.qos === 128) ? new Error(`subscription to ${o.subscribeTopic} refused`) : null);
        if (refused) {
          lastError = errorMessage(refused);
          this.log.debug("cannot subscribe to the worker topic", { topic: o.subscribeTopic, error: lastError });
          destroyStream(client);
          return;
        }
        this.up(generation);
      });
    });
    client.on("close", () => {
      if (generation !== this.generation) return;
      client.removeAllListeners("message");
      client.end(true);
      this.down(generation, lastError, refusal);
    });
  }

  protected onUp(): void {
    const greeting = this.opts.greeting();
    this.queue.unshift({ payload: encodeMessage(greeting), type: greeting.type, greeting: true, sentOn: 0, resolve: () => {}, reject: () => {} });
    for (const item of this.queue) this.publish(item);
  }

  /** What the old connection did not get acknowledged goes out again on the next one. */
  protected onDown(): void {
    this.queue = this.queue.filter((item) => !item.greeting);
    for (const item of this.queue) item.sentOn = 0;
  }

  private publish(item: Outgoing): void {
    const client = this.client;
    if (!client || item.sentOn !== 0) return;
    const generation = this.generation;
    item.sentOn = generation;
    client.publish(this.opts.publishTopic, item.payload, { qos: 1 }, (err) => {
      if (item.sentOn !== generation) return;
      if (err) {
        // The connection went; onDown has put it back in line (or will).
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
