/**
 * Which carrier reaches which worker. A worker is reached the way it last spoke: a launcher on
 * long-poll gets its messages in its mailbox, one on MQTT through the broker (the embedded one, or
 * the external one of `serve --broker`). A worker not heard from since this process started goes to
 * the MQTT carrier, where a launcher that reconnects subscribes before it says hello.
 *
 * Every message is signed here, once, for its pool and worker (downlink-signer.ts), before any
 * carrier sees it: no carrier, proxy or broker can make a launcher act on anything else.
 */
import type { Logger } from "../log/logger.ts";
import { isTopicLevel } from "../protocol/topics.ts";
import type { Outbox } from "./outbox.ts";

export interface CarriersOptions {
  /** Signs a message for (pool, worker); the result is what travels. */
  sign(pool: string, worker: string, message: string): string;
  /** The outbox of each carrier by name, e.g. `embedded-broker` and `poll`. */
  outboxes: Readonly<Record<string, Outbox>>;
  /** The carrier of workers not heard from yet. */
  fallback: string;
  /** Most (pool, worker) pairs remembered; the least recently heard go first. */
  maxWorkers?: number;
  logger: Logger;
}

/** Ids every carrier can carry: they become MQTT topic levels and client ids (no `/`, `+`, `#`). */
export function isCarrierId(id: string): boolean {
  return isTopicLevel(id);
}

/** Pool and worker ids hold no `/` (isCarrierId), so this key is one pair only. */
const keyOf = (pool: string, worker: string): string => `${pool}/${worker}`;

export class Carriers implements Outbox {
  /** By keyOf(pool, worker), in the order they were last heard (a Map keeps insertion order). */
  private readonly last = new Map<string, { pool: string; worker: string; carrier: string }>();
  private readonly max: number;

  constructor(private readonly o: CarriersOptions) {
    if (!o.outboxes[o.fallback]) throw new Error(`no outbox for the fallback carrier ${o.fallback}`);
    this.max = o.maxWorkers ?? 100_000;
  }

  /** A message from (pool, worker) came through `carrier`: answers go back that way. */
  spoke(pool: string, worker: string, carrier: string): void {
    if (!this.o.outboxes[carrier]) throw new Error(`unknown carrier ${carrier}`);
    const key = keyOf(pool, worker);
    const before = this.last.get(key);
    this.last.delete(key);
    this.last.set(key, { pool, worker, carrier });
    if (before && before.carrier !== carrier) {
      this.o.logger.debug("worker changed carrier", { pool, worker, from: before.carrier, to: carrier });
      this.o.outboxes[before.carrier]?.release?.(pool, worker);
    }
    while (this.last.size > this.max) {
      const oldest = this.last.keys().next().value as string;
      this.last.delete(oldest);
    }
  }

  /** The carrier a message to (pool, worker) takes now. */
  carrierOf(pool: string, worker: string): string {
    return this.last.get(keyOf(pool, worker))?.carrier ?? this.o.fallback;
  }

  /** Forgets a reset or deleted pool; returns its workers that last spoke through each carrier. */
  forgetPool(pool: string): Map<string, string[]> {
    const byCarrier = new Map<string, string[]>();
    for (const [key, entry] of this.last) {
      if (entry.pool !== pool) continue;
      this.last.delete(key);
      byCarrier.set(entry.carrier, [...(byCarrier.get(entry.carrier) ?? []), entry.worker]);
    }
    return byCarrier;
  }

  deliver(pool: string, worker: string, message: string): Promise<void> {
    let signed: string;
    try {
      signed = this.o.sign(pool, worker, message);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    const outbox = this.o.outboxes[this.carrierOf(pool, worker)] ?? (this.o.outboxes[this.o.fallback] as Outbox);
    return outbox.deliver(pool, worker, signed);
  }
}
