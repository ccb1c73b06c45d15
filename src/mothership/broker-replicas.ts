/**
 * Several mothership replicas on one external broker (docs/external-broker.md, "Several replicas").
 *
 * Each replica is an MQTT client of its own (`mothership.<ns>.<replica>`, a persistent session) and
 * subscribes to the launchers' uplinks through one shared subscription
 * (`$share/mothership-<ns>/<ns>/writeonly/+/+`): the broker hands each message to one member of the
 * group. Mosquitto 2.0 keeps a persistent member in the round robin while it is disconnected and
 * queues its share of the messages in its session (measured: of 100 uplinks with one of two members
 * down, 50 reached the live one and 50 waited for the other's return). A clean session would avoid
 * that but loses everything published while no replica is connected, a plain restart of a lone
 * mothership included, and a launcher resends nothing on its own while its connection stays up.
 *
 * So sessions stay persistent and the replicas look after each other's: each keeps a retained
 * presence message at `<ns>/replicas/<replica>` (`up` on connect, `down` as its Last Will and on
 * close). A replica that sees another one `down` connects once with that one's client id, takes the
 * messages queued there (the same handler as its own), unsubscribes that session from the shared
 * subscription so the broker stops queuing for it, and clears the marker. A replica that comes back
 * subscribes again and takes the drainer's connection over (the drainer does not reconnect). A
 * message goes to one connection at a time, so it is handled once either way.
 */
import { connect, type IClientOptions } from "mqtt";
import type { Logger } from "../log/logger.ts";
import { allWriteonlyFilter } from "../protocol/topics.ts";
import { MOTHERSHIP_BROKER_USER } from "./broker-identity.ts";
import { isReplicaId } from "./replica-id.ts";

export const replicaClientId = (namespace: string, replica: string): string => `${MOTHERSHIP_BROKER_USER}.${namespace}.${replica}`;
/** The one subscription of every replica: each uplink goes to one of them. */
export const sharedUplinkFilter = (namespace: string): string => `$share/${MOTHERSHIP_BROKER_USER}-${namespace}/${allWriteonlyFilter(namespace)}`;
export const presenceTopic = (namespace: string, replica: string): string => `${namespace}/replicas/${replica}`;
export const presenceFilter = (namespace: string): string => `${namespace}/replicas/+`;

export interface Presence {
  state: "up" | "down";
  /** Random per process: a live `up` of another instance on our own topic is a second process with our id. */
  instance: string;
}

const MAX_PRESENCE_BYTES = 256;
const INSTANCE = /^[0-9a-f]{16}$/;

export const newInstance = (): string => Buffer.from(crypto.getRandomValues(new Uint8Array(8))).toString("hex");

export const presencePayload = (p: Presence): Buffer => Buffer.from(JSON.stringify(p));

/** The replica and presence of a message on the presence topics; null for anything else or a bad payload. */
export function parsePresence(namespace: string, topic: string, payload: Buffer): { replica: string; presence: Presence | null } | null {
  const prefix = `${namespace}/replicas/`;
  if (!topic.startsWith(prefix)) return null;
  const replica = topic.slice(prefix.length);
  if (!isReplicaId(replica)) return null;
  // An empty retained message is a cleared marker.
  if (payload.byteLength === 0 || payload.byteLength > MAX_PRESENCE_BYTES) return { replica, presence: null };
  try {
    const v = JSON.parse(payload.toString("utf8")) as Partial<Presence> | null;
    if ((v?.state === "up" || v?.state === "down") && typeof v.instance === "string" && INSTANCE.test(v.instance)) return { replica, presence: { state: v.state, instance: v.instance } };
  } catch {
    // Not ours: treated as no marker.
  }
  return { replica, presence: null };
}

export interface DrainOptions {
  url: string;
  tls: Pick<IClientOptions, "key" | "cert" | "ca" | "rejectUnauthorized">;
  /** The session's client id: a replica's, or `mothership.<ns>` of a mothership from before replicas. */
  clientId: string;
  /** What that session subscribed to, unsubscribed so the broker queues nothing more there. */
  filter: string;
  onMessage(topic: string, payload: Buffer): void;
  logger: Logger;
  /** Done once no message came for this long after unsubscribing. */
  quietMs?: number;
  /** Asked while waiting: the replica is closing. */
  stopping?(): boolean;
  /** Gives up after this long; what is left stays in the session for the next drain or the replica's return. */
  maxMs?: number;
}

/**
 * Takes what the broker queued in the session of a replica that is down, and stops it queuing more.
 * The session itself stays (empty, subscribed to nothing): deleting it could race the replica's return. Complete: the
 * queue ran dry here; false when the connection was taken over (the replica is back) or failed.
 */
export async function drainReplicaSession(o: DrainOptions): Promise<{ messages: number; complete: boolean }> {
  const log = o.logger.child({ component: "external-broker", session: o.clientId });
  const client = connect(o.url, { ...o.tls, protocolVersion: 4, clientId: o.clientId, clean: false, reconnectPeriod: 0, connectTimeout: 10_000, keepalive: 30 });
  let messages = 0;
  let last = Date.now();
  let closed = false;
  client.on("message", (topic, payload) => {
    messages++;
    last = Date.now();
    o.onMessage(topic, payload);
  });
  client.on("error", (err) => log.debug("draining a replica's session: connection error", { error: err.message }));
  client.on("close", () => (closed = true));
  const connected = await new Promise<boolean>((resolve) => {
    client.once("connect", () => resolve(true));
    client.once("close", () => resolve(false));
  });
  if (!connected) return { messages, complete: false };
  const unsubscribed = await client.unsubscribeAsync(o.filter).then(
    () => true,
    () => false,
  );
  const deadline = Date.now() + (o.maxMs ?? 60_000);
  while (!closed && !o.stopping?.() && Date.now() < deadline && Date.now() - last < (o.quietMs ?? 1000)) await Bun.sleep(50);
  const complete = unsubscribed && !closed && Date.now() - last >= (o.quietMs ?? 1000);
  await client.endAsync().catch(() => {});
  if (complete) log.info("took over the broker session of a replica that is down", { messages });
  else log.info("stopped taking over a replica's broker session (it came back, or the broker closed the connection)", { messages });
  return { messages, complete };
}
