/**
 * External broker mode (`serve --broker mqtts://HOST:PORT`): the mothership is an MQTT client of a
 * broker someone else runs (Mosquitto configured by `broker-config mosquitto`, EMQX, AWS IoT Core;
 * docs/external-broker.md), instead of running its own. It connects with its own client
 * certificate from the mothership's CA (broker-identity.ts) as `mothership.<ns>.<replica>`, takes
 * the launchers' uplinks through the replicas' shared subscription and publishes each worker's
 * messages to `<ns>/readonly/<pool>/<worker>`. The pool of an uplink is the one in its topic: the
 * broker's ACL lets a pool's certificate write only its own subtree, so the topic is as good as the
 * certificate.
 *
 * The session is persistent (clean: false, QoS 1), so what launchers publish while the mothership
 * restarts waits at the broker; other replicas take over the session of one that is down
 * (broker-replicas.ts). The `mqtt` imports of external broker mode stay in this file and that one.
 */
import { connect, type IClientOptions, type MqttClient } from "mqtt";
import { errorMessage, SpaceliftError } from "../errors.ts";
import type { Logger } from "../log/logger.ts";
import { allWriteonlyFilter, mqttClientId, parseTopic, readonlyTopic } from "../protocol/topics.ts";
import { MOTHERSHIP_BROKER_USER, type BrokerClientIdentity } from "./broker-identity.ts";
import { drainReplicaSession, newInstance, parsePresence, presenceFilter, presencePayload, presenceTopic, replicaClientId, sharedUplinkFilter } from "./broker-replicas.ts";
import { MAX_MQTT_PACKET_BYTES } from "./mqtt-packet-limit.ts";
import type { Outbox } from "./outbox.ts";

/** How long a message to a launcher waits for the broker connection to come back, and how many may wait. */
const LINK_WAIT_MS = 5000;
const MAX_WAITING_FOR_LINK = 10_000;
/** How long another replica's `down` must stand before its broker session is taken over. */
const TAKEOVER_GRACE_MS = 5000;

export interface ExternalBrokerOptions {
  /** `mqtts://HOST:PORT`. */
  url: string;
  namespace: string;
  /** This process among the replicas on the broker (replica-id.ts). */
  replica: string;
  identity: BrokerClientIdentity;
  /** CA certificates the broker's server certificate must chain to. */
  caPems: readonly string[];
  onUplink(pool: string, worker: string, payload: Buffer): void;
  /** The connection to the broker was lost (false) or made again (true). */
  onLink?(up: boolean): void;
  /** How long `connectExternalBroker` waits for the first connection before it returns anyway (retrying). */
  firstConnectMs?: number;
  logger: Logger;
}

export interface ExternalBroker extends Outbox {
  /**
   * Ends the broker sessions of these workers of `pool` (a reset or deleted pool): the mothership
   * connects with each one's client id, which makes the broker drop the launcher's connection. The
   * launcher's reconnect then meets the broker's CRL.
   */
  kick(pool: string, workers: readonly string[]): Promise<void>;
  connected(): boolean;
  close(): Promise<void>;
}

/** Connection losses within this long of connecting count towards a clash warning. */
const QUICK_DROP_MS = 5000;
const CLASH_WARN_EVERY_MS = 60_000;

export async function connectExternalBroker(o: ExternalBrokerOptions): Promise<ExternalBroker> {
  const log = o.logger.child({ component: "external-broker", replica: o.replica });
  const tls = { key: o.identity.keyPem, cert: o.identity.certificatePem, ca: [...o.caPems], rejectUnauthorized: true };
  const instance = newInstance();
  const ownPresence = presenceTopic(o.namespace, o.replica);
  const clientId = replicaClientId(o.namespace, o.replica);
  const options: IClientOptions = {
    ...tls,
    protocolVersion: 4,
    clientId,
    clean: false,
    reconnectPeriod: 1000,
    connectTimeout: 10_000,
    keepalive: 30,
    // The broker publishes it when this process dies: the other replicas then take over the session.
    will: { topic: ownPresence, payload: presencePayload({ state: "down", instance }), qos: 1, retain: true },
  };
  const client: MqttClient = connect(o.url, options);
  // An object, not a `let`: the event handlers change it while the first-connect loop below waits.
  const link: { state: "connecting" | "connected" | "down"; closing: boolean; connectedAt: number; quickDrops: number; clashWarnedAt: number } = { state: "connecting", closing: false, connectedAt: 0, quickDrops: 0, clashWarnedAt: 0 };
  const drains = new Map<string, Promise<void>>();
  /** Messages to launchers waiting for the broker connection to come back (deliver). */
  let waitingForLink = 0;

  // Two processes with one client id push each other off the broker, forever: say so, at most once a minute.
  const clash = (why: string) => {
    if (Date.now() - link.clashWarnedAt < CLASH_WARN_EVERY_MS) return;
    link.clashWarnedAt = Date.now();
    log.error(`another process connects to the broker as this replica (${why}): two replicas share a data dir or a --replica-id; give each its own`, { client_id: clientId });
  };

  const uplink = (topic: string, payload: Buffer) => {
    if (payload.byteLength > MAX_MQTT_PACKET_BYTES) {
      log.warn("message over the size limit from the broker dropped", { topic: topic.slice(0, 200), bytes: payload.byteLength });
      return;
    }
    const addr = parseTopic(topic);
    if (!addr || addr.direction !== "writeonly" || addr.namespace !== o.namespace) return;
    try {
      o.onUplink(addr.pool, addr.worker, payload);
    } catch (err) {
      log.error("uplink handler failed", { pool: addr.pool, worker: addr.worker, error: err });
    }
  };

  /** The last presence heard of each other replica ("down" until its marker says otherwise). */
  const others = new Map<string, "up" | "down">();

  /** What the broker queued for a session nobody uses any more, handled here like our own. */
  const takeOver = (key: string, session: { clientId: string; filter: string }, marker?: string) => {
    if (drains.has(key) || link.closing) return;
    const drain = (async () => {
      // A replica that is starting again says `up` within a second of connecting: its retained `down`
      // (from its last stop) must not make us connect with its client id, which would end its session.
      // Every live replica hears of it; a random pause spares most of them connecting to the same session.
      await Bun.sleep((marker ? TAKEOVER_GRACE_MS : 0) + Math.random() * 1000);
      if (link.closing || (marker && others.get(key) !== "down")) return;
      const r = await drainReplicaSession({ url: o.url, tls, ...session, onMessage: uplink, stopping: () => link.closing, logger: o.logger });
      if (r.complete && marker && client.connected) await client.publishAsync(marker, Buffer.alloc(0), { qos: 1, retain: true });
    })()
      .catch((err: unknown) => log.warn("taking over a replica's broker session failed", { session: session.clientId, error: errorMessage(err) }))
      .finally(() => drains.delete(key));
    drains.set(key, drain);
  };

  const presence = (topic: string, payload: Buffer, retained: boolean): boolean => {
    const p = parsePresence(o.namespace, topic, payload);
    if (!p) return false;
    if (p.replica === o.replica) {
      // Ours is published before we subscribe: any later `up` of another instance is another process.
      if (p.presence?.state === "up" && p.presence.instance !== instance) clash(retained ? "its presence marker" : "it announced itself");
    } else if (p.presence) {
      others.set(p.replica, p.presence.state);
    }
    if (p.replica !== o.replica && p.presence?.state === "down") {
      takeOver(p.replica, { clientId: replicaClientId(o.namespace, p.replica), filter: sharedUplinkFilter(o.namespace) }, topic);
    }
    return true;
  };

  client.on("connect", (connack) => {
    log.info("connected to the external broker", { url: o.url, client_id: clientId, session_present: connack.sessionPresent });
    link.state = "connected";
    link.connectedAt = Date.now();
    o.onLink?.(true);
    client.publish(ownPresence, presencePayload({ state: "up", instance }), { qos: 1, retain: true }, (err) => {
      if (err) log.warn("publishing this replica's presence failed", { error: err.message });
      // A kept session keeps its subscriptions; subscribing again is harmless and covers a broker that forgot them.
      const filters = { [sharedUplinkFilter(o.namespace)]: { qos: 1 as const }, [presenceFilter(o.namespace)]: { qos: 1 as const } };
      client.subscribe(filters, (err2, granted) => {
        if (err2) log.error("subscription to the launchers' topics failed", { error: err2.message });
        else if (granted?.some((g) => g.qos === 128)) log.error("the broker refused the subscription to the launchers' topics; its ACL must let user mothership read and write <ns>/#", { filters: Object.keys(filters) });
      });
    });
  });
  client.on("close", () => {
    if (link.state === "connected" && !link.closing) {
      log.warn("external broker connection lost; reconnecting every second", { url: o.url });
      o.onLink?.(false);
      link.quickDrops = Date.now() - link.connectedAt < QUICK_DROP_MS ? link.quickDrops + 1 : 0;
      if (link.quickDrops >= 3) clash("the broker closes this connection right after each connect");
    }
    link.state = "down";
  });
  client.on("error", (err) => {
    // Warned once per outage: a broker that stays down would otherwise fill the log every second.
    if (link.state === "down") log.debug("external broker connection error", { url: o.url, error: err.message });
    else log.warn("external broker connection error", { url: o.url, error: err.message });
  });
  client.on("message", (topic, payload, packet) => {
    if (!presence(topic, payload, packet.retain)) uplink(topic, payload);
  });

  const deadline = Date.now() + (o.firstConnectMs ?? 10_000);
  while (!client.connected && Date.now() < deadline) await Bun.sleep(50);
  if (!client.connected) log.warn("the external broker does not answer yet; the mothership keeps trying", { url: o.url });
  // A mothership from before replicas subscribed as `mothership.<ns>`; what its session still queues is taken once.
  else takeOver("legacy", { clientId: `${MOTHERSHIP_BROKER_USER}.${o.namespace}`, filter: allWriteonlyFilter(o.namespace) });

  return {
    async deliver(pool, worker, message) {
      // A blip (the broker restarting, a session taken over for a moment) is waited out for a few
      // seconds, by a bounded number of messages; beyond that MQTT.js would queue without bound, so
      // the message fails: a launcher learns its state again from the answer to its next hello, and
      // an unconfirmed schedule goes back to the queue.
      if (!client.connected && waitingForLink < MAX_WAITING_FOR_LINK) {
        waitingForLink++;
        try {
          const until = Date.now() + LINK_WAIT_MS;
          while (!client.connected && !link.closing && Date.now() < until) await Bun.sleep(50);
        } finally {
          waitingForLink--;
        }
      }
      if (!client.connected) throw new SpaceliftError("broker-unavailable", "the external broker is not connected");
      await client.publishAsync(readonlyTopic(o.namespace, pool, worker), message, { qos: 1 });
    },
    async kick(pool, workers) {
      for (const worker of workers) {
        const taker = connect(o.url, { ...tls, protocolVersion: 4, clientId: mqttClientId(pool, worker), clean: true, reconnectPeriod: 0, connectTimeout: 5000 });
        await new Promise<void>((resolve) => {
          const done = () => resolve();
          taker.once("connect", done);
          taker.once("error", done);
          taker.once("close", done);
        });
        await taker.endAsync(true).catch(() => {});
        log.info("broker session of a revoked pool's worker ended", { pool, worker });
      }
    },
    connected: () => client.connected,
    async close() {
      link.closing = true;
      await Promise.all(drains.values());
      // Said here, as the Last Will is not sent on a clean goodbye: the other replicas take what queues for us.
      if (client.connected) await client.publishAsync(ownPresence, presencePayload({ state: "down", instance }), { qos: 1, retain: true }).catch(() => {});
      await client.endAsync().catch((err: unknown) => log.debug("external broker close", { error: errorMessage(err) }));
    },
  };
}
