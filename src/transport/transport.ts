/**
 * src/transport — how the launcher reaches the mothership. One `Transport` interface, two
 * implementations: MQTT (mqtt-transport.ts, the only launcher module that imports `mqtt`) and HTTP
 * long-poll with signed requests (poll-transport.ts, fetch only), both built on one reconnecting session
 * (session.ts: backoff, refusal limit, first-connect wait, an outage logged once). The agent loop
 * (src/launcher/agent) sees typed protocol messages only: it never learns topics, sockets or retries.
 *
 * Delivery is at least once: `send` resolves when the broker has acknowledged the message, and a
 * message that was not acknowledged before a connection dropped is published again after the
 * reconnect. Receivers must tolerate duplicates (the mothership deduplicates log chunks by
 * (run, seq)); the launcher additionally keeps log chunks on disk until the mothership acknowledges
 * them, because a broker's PUBACK is not the mothership's "stored".
 */
import type { DownlinkMessage, UplinkMessage } from "../protocol/messages.ts";
import type { RefusalInfo } from "./refusals.ts";

export interface TransportEvents {
  /** A valid mothership -> launcher message. Invalid ones are logged by the transport and dropped. */
  message: (message: DownlinkMessage) => void;
  /** The connection is up (first time or again); the greeting has already been sent first. */
  connected: (info: { reconnect: boolean }) => void;
  /** The connection dropped; the transport is already trying again. */
  disconnected: (info: { error: string | null }) => void;
  /**
   * The mothership refused the pool's credentials MAX_REFUSALS times in a row (a reset or deleted
   * pool, ./refusals.ts). The transport has closed itself; the launcher exits EXIT_CREDENTIALS_REFUSED.
   */
  refused: (info: RefusalInfo) => void;
}

export interface Transport {
  /**
   * Starts connecting (and reconnecting, for as long as the transport is open). Resolves at the first
   * successful connection; rejects only when `signal` aborts or `close` is called first.
   */
  connect(signal?: AbortSignal): Promise<void>;
  /** Resolves when the broker (MQTT) or the mothership (poll, 2xx) acknowledged the message; queued while disconnected. Rejects only after close. */
  send(message: UplinkMessage): Promise<void>;
  /** Subscribe to an event; returns the unsubscribe function. */
  on<E extends keyof TransportEvents>(event: E, handler: TransportEvents[E]): () => void;
  /**
   * Stops for good. `clean`: an orderly MQTT DISCONNECT, so the broker drops the Last Will (say `gone`
   * first). Not clean: the connection is cut as a crash would cut it, and the broker publishes the Last Will.
   * Over poll there is neither: both loops stop, and silence makes the mothership declare the worker lost.
   * Unsent messages are rejected with `transport-closed`.
   */
  close(clean: boolean): Promise<void>;
}
