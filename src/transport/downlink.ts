/**
 * What both transports do with a message from the mothership, in one place. The payload must be a
 * signed envelope (src/protocol/downlink-signature.ts) addressed to this pool and worker, signed by
 * a downlink signer of the token's CA, not expired and not seen before; anything else is refused
 * with a warning and never reaches the agent. A verified message of a type this launcher does not
 * know (a newer mothership) is ignored; a known type with a bad body is logged and dropped. Never a crash.
 *
 * Messages are handed on in the order they arrived, although checking a signature is asynchronous.
 *
 * Replays: every accepted id is remembered (with the start of its signature) until it expires, in a
 * bounded cache. The same envelope again (an MQTT QoS 1 redelivery, a poll answer delivered twice) is
 * dropped at debug level; the same id with another signature, or an id so old that the full cache
 * had to forget ids expiring later, is refused as replayed.
 */
import { errorMessage } from "../errors.ts";
import type { Logger } from "../log/logger.ts";
import { DOWNLINK_CLOCK_SKEW_SECONDS, DownlinkSignatureError, type DownlinkVerifier } from "../protocol/downlink-signature.ts";
import { decodeMessage, type DownlinkMessage } from "../protocol/messages.ts";

/** Ids remembered at most; a worker gets far fewer messages within their validity. */
const REPLAY_CACHE = 4096;
/** Enough of an ECDSA signature (its random r) to tell two signatures apart. */
const SIG_PREFIX = 16;

export type Seen = "new" | "duplicate" | "replayed";

/** Accepted message ids until they expire, bounded. @testSeam */
export class ReplayGuard {
  private readonly ids = new Map<string, { exp: number; sig: string }>();
  /** The latest expiry among ids forgotten while still valid: anything expiring by then is suspect. */
  private floor = 0;

  constructor(private readonly limit = REPLAY_CACHE) {}

  get size(): number {
    return this.ids.size;
  }

  /** Records the id when new. `nowSeconds` prunes what has expired (a launcher refuses those anyway). */
  check(id: string, exp: number, sig: string, nowSeconds: number): Seen {
    const known = this.ids.get(id);
    if (known) return known.sig === sig.slice(0, SIG_PREFIX) ? "duplicate" : "replayed";
    if (exp <= this.floor) return "replayed";
    this.ids.set(id, { exp, sig: sig.slice(0, SIG_PREFIX) });
    if (this.ids.size > this.limit) {
      // Ids arrive roughly in expiry order, so the oldest entries are the first ones.
      for (const [old, entry] of this.ids) {
        if (this.ids.size <= this.limit) break;
        if (entry.exp + DOWNLINK_CLOCK_SKEW_SECONDS >= nowSeconds) this.floor = Math.max(this.floor, entry.exp);
        this.ids.delete(old);
      }
    }
    return "new";
  }
}

export class DownlinkReceiver {
  private tail: Promise<void> = Promise.resolve();
  private readonly seen: ReplayGuard;

  constructor(
    private readonly verifier: DownlinkVerifier,
    private readonly log: Logger,
    private readonly deliver: (message: DownlinkMessage) => void,
    replayCache?: number,
  ) {
    this.seen = new ReplayGuard(replayCache);
  }

  /**
   * One payload: raw bytes (MQTT) or a value already decoded from JSON (one of a poll answer).
   * Resolves once it has been handled (after every earlier one); never rejects.
   */
  receive(payload: Uint8Array | string | unknown): Promise<void> {
    const next = this.tail.then(() => this.handle(payload));
    this.tail = next.catch((err: unknown) => this.log.error("downlink message handling failed", { error: errorMessage(err) }));
    return this.tail;
  }

  private async handle(payload: unknown): Promise<void> {
    let value = payload;
    if (payload instanceof Uint8Array || typeof payload === "string") {
      try {
        value = JSON.parse(typeof payload === "string" ? payload : new TextDecoder().decode(payload));
      } catch {
        this.log.warn("downlink message refused", { reason: "downlink-malformed", error: "payload is not JSON" });
        return;
      }
    }
    let opened;
    try {
      opened = await this.verifier.open(value);
    } catch (err) {
      if (!(err instanceof DownlinkSignatureError)) throw err;
      const claimed = claimedIdentity(value);
      this.log.warn("downlink message refused", { reason: err.code, error: err.message, ...claimed });
      return;
    }
    const seen = this.seen.check(opened.id, opened.exp, opened.sig, this.verifier.now() / 1000);
    const type = typeof opened.message.type === "string" ? opened.message.type : null;
    if (seen === "duplicate") {
      this.log.debug("duplicate delivery of a downlink message dropped", { id: opened.id, type });
      return;
    }
    if (seen === "replayed") {
      this.log.warn("downlink message refused", { reason: "downlink-replayed", error: "a message id seen before", id: opened.id, type });
      return;
    }
    const parsed = decodeMessage(opened.message, "downlink");
    if (parsed.kind === "ignored") {
      this.log.debug("message of an unknown type ignored", { type: parsed.type });
      return;
    }
    if (parsed.kind === "invalid") {
      this.log.warn("invalid message from the mothership dropped", { error: parsed.error, type: parsed.type, id: parsed.id });
      return;
    }
    this.deliver(parsed.message);
  }
}

/** Type and id an unverified payload claims, for the log only (short, never trusted). */
function claimedIdentity(value: unknown): { type?: string; id?: string } {
  if (typeof value !== "object" || value === null) return {};
  let rec = value as Record<string, unknown>;
  if (typeof rec.message === "string" && rec.message.length < 64 * 1024) {
    try {
      rec = JSON.parse(rec.message) as Record<string, unknown>;
    } catch {
      return {};
    }
  }
  if (typeof rec !== "object" || rec === null) return {};
  const short = (x: unknown) => (typeof x === "string" ? x.slice(0, 64) : undefined);
  return { type: short(rec.type), id: short(rec.id) };
}
