/**
 * Which carrier reaches which worker. A worker is reached the way it last spoke: a launcher on
 * long-poll gets its messages in its mailbox, one on MQTT through the broker (the embedded one, or
 * the external one of `serve --broker`). A worker not heard from goes to the MQTT carrier, where a
 * launcher that reconnects subscribes before it says hello.
 *
 * Where each worker spoke is kept in a `CarrierBook`: in this process on SQLite (MemoryCarrierBook,
 * one mothership hears everything), in the database on PostgreSQL (store/worker-carriers.ts), so a
 * replica that never heard a worker still reaches it the way it speaks.
 *
 * Every message is signed here, once, for its pool and worker (downlink-signer.ts), before any
 * carrier sees it: no carrier, proxy or broker can make a launcher act on anything else.
 */
import type { Logger } from "../log/logger.ts";
import { isTopicLevel } from "../protocol/topics.ts";
import type { Outbox } from "./outbox.ts";

/** Where the carrier each worker last spoke through is kept. */
export interface CarrierBook {
  /** (pool, worker) spoke through `carrier`; resolves to the carrier it spoke through before when that was another. */
  spoke(pool: string, worker: string, carrier: string): Promise<string | null>;
  /** The carrier (pool, worker) last spoke through; null when not heard from. */
  carrierOf(pool: string, worker: string): Promise<string | null>;
  /** Forgets a reset or deleted pool; returns its workers by the carrier they last spoke through. */
  forgetPool(pool: string): Promise<Map<string, string[]>>;
}

export interface CarriersOptions {
  /** Signs a message for (pool, worker); the result is what travels. */
  sign(pool: string, worker: string, message: string): string;
  /** The outbox of each carrier by name, e.g. `embedded-broker` and `poll`. */
  outboxes: Readonly<Record<string, Outbox>>;
  /** The carrier of workers not heard from yet. */
  fallback: string;
  /** Where carriers are kept; default a MemoryCarrierBook of `maxWorkers`. */
  book?: CarrierBook;
  /** Most (pool, worker) pairs the default book remembers; the least recently heard go first. */
  maxWorkers?: number;
  logger: Logger;
}

/** Ids every carrier can carry: they become MQTT topic levels and client ids (no `/`, `+`, `#`). */
export function isCarrierId(id: string): boolean {
  return isTopicLevel(id);
}

/** Pool and worker ids hold no `/` (isCarrierId), so this key is one pair only. */
const keyOf = (pool: string, worker: string): string => `${pool}/${worker}`;

/** The carriers of the workers this process heard, bounded: the least recently heard go first. */
export class MemoryCarrierBook implements CarrierBook {
  /** By keyOf(pool, worker), in the order they were last heard (a Map keeps insertion order). */
  private readonly last = new Map<string, { pool: string; worker: string; carrier: string }>();

  constructor(private readonly max = 100_000) {}

  async spoke(pool: string, worker: string, carrier: string): Promise<string | null> {
    const key = keyOf(pool, worker);
    const before = this.last.get(key);
    this.last.delete(key);
    this.last.set(key, { pool, worker, carrier });
    while (this.last.size > this.max) this.last.delete(this.last.keys().next().value as string);
    return before && before.carrier !== carrier ? before.carrier : null;
  }

  async carrierOf(pool: string, worker: string): Promise<string | null> {
    return this.last.get(keyOf(pool, worker))?.carrier ?? null;
  }

  async forgetPool(pool: string): Promise<Map<string, string[]>> {
    const byCarrier = new Map<string, string[]>();
    for (const [key, entry] of this.last) {
      if (entry.pool !== pool) continue;
      this.last.delete(key);
      byCarrier.set(entry.carrier, [...(byCarrier.get(entry.carrier) ?? []), entry.worker]);
    }
    return byCarrier;
  }
}

export class Carriers implements Outbox {
  private readonly book: CarrierBook;
  /** The lookup under way per worker: this process's messages to one worker reach their carrier in order. */
  private readonly routing = new Map<string, Promise<unknown>>();

  constructor(private readonly o: CarriersOptions) {
    if (!o.outboxes[o.fallback]) throw new Error(`no outbox for the fallback carrier ${o.fallback}`);
    this.book = o.book ?? new MemoryCarrierBook(o.maxWorkers);
  }

  /** A message from (pool, worker) came through `carrier`: answers go back that way. */
  spoke(pool: string, worker: string, carrier: string): Promise<void> {
    if (!this.o.outboxes[carrier]) throw new Error(`unknown carrier ${carrier}`);
    return this.book.spoke(pool, worker, carrier).then(async (before) => {
      if (before === null) return;
      this.o.logger.debug("worker changed carrier", { pool, worker, from: before, to: carrier });
      await this.o.outboxes[before]?.release?.(pool, worker);
    });
  }

  /** The carrier a message to (pool, worker) takes now. */
  async carrierOf(pool: string, worker: string): Promise<string> {
    const carrier = await this.book.carrierOf(pool, worker);
    return carrier !== null && this.o.outboxes[carrier] ? carrier : this.o.fallback;
  }

  /** Forgets a reset or deleted pool; returns its workers that last spoke through each carrier. */
  forgetPool(pool: string): Promise<Map<string, string[]>> {
    return this.book.forgetPool(pool);
  }

  deliver(pool: string, worker: string, message: string): Promise<void> {
    let signed: string;
    try {
      signed = this.o.sign(pool, worker, message);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    // Each lookup starts after the one before it settled, and each delivery is handed over as its lookup
    // settles: in the order `deliver` was called, whatever each lookup costs.
    const key = keyOf(pool, worker);
    const routed = (this.routing.get(key) ?? Promise.resolve()).then(() => this.carrierOf(pool, worker));
    const settled = routed.then(
      () => undefined,
      () => undefined,
    );
    this.routing.set(key, settled);
    void settled.then(() => {
      if (this.routing.get(key) === settled) this.routing.delete(key);
    });
    return routed.then((carrier) => (this.o.outboxes[carrier] ?? (this.o.outboxes[this.o.fallback] as Outbox)).deliver(pool, worker, signed));
  }
}
