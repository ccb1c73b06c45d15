/**
 * MQTT topic layout (src/protocol/README.md). Two one-way subtrees per pool:
 *   <ns>/readonly/<pool>/<worker>   mothership -> launcher (the launcher only reads it)
 *   <ns>/writeonly/<pool>/<worker>  launcher -> mothership (the launcher only writes it)
 * The names are from the launcher's point of view, which is also how the broker ACLs read them.
 * A worker's MQTT client id is `<pool>.<worker>` (mqttClientId).
 */
export const DEFAULT_NAMESPACE = "spacelift";

export type Direction = "readonly" | "writeonly";

export interface TopicAddress {
  namespace: string;
  direction: Direction;
  pool: string;
  worker: string;
}

/** Ids and namespaces become topic levels, so they must not contain MQTT separators or wildcards. */
const LEVEL = /^[A-Za-z0-9_.-]{1,128}$/;

export function isTopicLevel(value: string): boolean {
  return LEVEL.test(value);
}

function level(value: string, what: string): string {
  if (!isTopicLevel(value)) throw new RangeError(`${what} ${JSON.stringify(value)} cannot be an MQTT topic level`);
  return value;
}

/** Where the mothership publishes to one worker and that worker subscribes. */
export function readonlyTopic(namespace: string, pool: string, worker: string): string {
  return `${level(namespace, "namespace")}/readonly/${level(pool, "pool")}/${level(worker, "worker")}`;
}

/** Where one worker publishes (including its Last Will) and the mothership listens. */
export function writeonlyTopic(namespace: string, pool: string, worker: string): string {
  return `${level(namespace, "namespace")}/writeonly/${level(pool, "pool")}/${level(worker, "worker")}`;
}

/** The filter that matches every worker's uplink in every pool: the mothership's one subscription. */
export function allWriteonlyFilter(namespace: string): string {
  return `${level(namespace, "namespace")}/writeonly/+/+`;
}

/** Prefix of a pool's subtree in one direction, used by the broker ACLs (`<ns>/<dir>/<pool>/`). @testSeam */
export function poolPrefix(namespace: string, direction: Direction, pool: string): string {
  return `${level(namespace, "namespace")}/${direction}/${level(pool, "pool")}/`;
}

/** Splits a concrete topic into its parts; null when it is not one of ours. */
export function parseTopic(topic: string): TopicAddress | null {
  const parts = topic.split("/");
  if (parts.length !== 4) return null;
  const [namespace, direction, pool, worker] = parts as [string, string, string, string];
  if (direction !== "readonly" && direction !== "writeonly") return null;
  if (![namespace, pool, worker].every(isTopicLevel)) return null;
  return { namespace, direction, pool, worker };
}

/**
 * The MQTT client id of a worker: `<pool>.<worker>`. A broker takes a connection over from an older
 * one with the same client id, so the id carries the pool: our broker accepts only a client id that
 * starts with the pool of the client certificate, and one pool can never take over another's worker.
 * Ids are ULIDs (26 characters), so this fits Mosquitto and AWS IoT (at most 128 characters, no `$`).
 */
export function mqttClientId(pool: string, worker: string): string {
  return `${level(pool, "pool")}.${level(worker, "worker")}`;
}

/** The worker of a client id made by mqttClientId for `pool`; null when it is not `<pool>.<worker>`. */
export function workerOfClientId(pool: string, clientId: string): string | null {
  if (!clientId.startsWith(`${pool}.`)) return null;
  const worker = clientId.slice(pool.length + 1);
  // One dot only: the split is then the same whichever pool reads it.
  return isTopicLevel(worker) && !worker.includes(".") ? worker : null;
}
