/**
 * The reconnecting session both transports are built on: the connection state machine
 * (./session-state.ts), jittered and capped backoff between attempts (./backoff.ts), the first-connect
 * wait (./first-connect.ts), the credential-refusal limit (./refusals.ts) and the transport's events.
 * A carrier (MQTT, HTTP long-poll) extends it and keeps only what is its own: how one connection is
 * opened, what to do when it comes up or goes down, and how to tear everything down.
 *
 * State changes are logged once, not once per attempt: the first failure of an outage is a warning
 * ("… retrying"), the retries after it are debug lines, and the connection that ends the outage says
 * how many attempts failed. A launcher cut off for an hour writes two lines, not two hundred.
 */
import { errorMessage } from "../errors.ts";
import type { Fields, Logger } from "../log/logger.ts";
import { backoffDelay, DEFAULT_BACKOFF, type BackoffPolicy } from "./backoff.ts";
import { Emitter } from "./emitter.ts";
import { closedError, FirstConnect } from "./first-connect.ts";
import { INITIAL_SESSION, sessionTransition, type SessionEffect, type SessionEvent, type SessionState } from "./session-state.ts";
import type { TransportEvents } from "./transport.ts";

export interface SessionOptions {
  /** The transport's logger; lines carry `fields` (the endpoint or URL). */
  log: Logger;
  fields: Fields;
  /** The other end, for the abort message of `connect` ("the broker", "the mothership"). */
  peer: string;
  /** The lines of the state changes, e.g. "connected to the broker", "broker connection lost, retrying". */
  says: { connected: string; reconnected: string; retrying: string };
  backoff?: BackoffPolicy | undefined;
}

export abstract class ReconnectingSession {
  protected readonly events: Emitter<TransportEvents>;
  protected readonly log: Logger;
  private state: SessionState = INITIAL_SESSION;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly firstConnect = new FirstConnect();

  constructor(private readonly settings: SessionOptions) {
    this.log = settings.log;
    this.events = new Emitter<TransportEvents>((err) => this.log.error("transport event handler failed", { error: errorMessage(err) }));
  }

  on<E extends keyof TransportEvents>(event: E, handler: TransportEvents[E]): () => void {
    return this.events.on(event, handler);
  }

  /** Starts connecting; resolves at the first connection, rejects when `signal` aborts or on `close` first. */
  connect(signal?: AbortSignal): Promise<void> {
    const kind = this.state.kind;
    if (kind === "closed") return Promise.reject(closedError());
    if (kind === "connected" || ((kind === "connecting" || kind === "waiting") && this.state.everConnected)) return Promise.resolve();
    const first = this.firstConnect.wait(this.settings.peer, signal);
    if (kind === "new") this.dispatch({ type: "start" });
    return first;
  }

  /** Stops for good (see Transport.close); the carrier tears down in `teardown`. */
  async close(clean: boolean): Promise<void> {
    if (this.state.kind === "closed") return;
    this.dispatch({ type: "close" });
    await this.shutdown(clean);
  }

  /** The current attempt's generation while it is connecting or connected, else 0. */
  protected get generation(): number {
    return this.state.kind === "connecting" || this.state.kind === "connected" ? this.state.generation : 0;
  }

  protected get isConnected(): boolean {
    return this.state.kind === "connected";
  }

  protected get isClosed(): boolean {
    return this.state.kind === "closed";
  }

  /** Attempt `generation` is connected. */
  protected up(generation: number): void {
    this.dispatch({ type: "up", generation });
  }

  /** Attempt `generation` failed or dropped; a late report of an older attempt is ignored. */
  protected down(generation: number, error: string | null, refusal?: string): void {
    this.dispatch({ type: "down", generation, error, refusal });
  }

  /** Opens connection attempt `generation` and reports it with `up` or `down`. */
  protected abstract open(generation: number): void;
  /** The connection of `generation` is up: say the greeting and send what is queued, before `connected` is emitted. */
  protected abstract onUp(generation: number): void;
  /** The connection of `generation` is gone: stop its work and put back what it did not get acknowledged. */
  protected abstract onDown(generation: number): void;
  /** Closes the connection (cleanly or as a crash would) and rejects what is still queued. */
  protected abstract teardown(clean: boolean): Promise<void>;

  private dispatch(event: SessionEvent): void {
    const before = this.state;
    const { state, effects } = sessionTransition(before, event);
    this.state = state;
    if (state.kind === "closed" && this.retryTimer) {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
    if (event.type === "down" && state !== before) this.onDown(event.generation);
    for (const effect of effects) this.apply(effect);
    // Refused for good: the transport closes itself (the listeners of `refused` have been told).
    if (before.kind !== "closed" && state.kind === "closed" && state.refused) void this.shutdown(false);
  }

  private apply(effect: SessionEffect): void {
    const { log, fields, says } = this.settings;
    switch (effect.type) {
      case "open":
        this.open(effect.generation);
        return;
      case "connected":
        log.info(effect.reconnect ? says.reconnected : says.connected, effect.retries > 0 ? { ...fields, retries: effect.retries } : fields);
        this.onUp(this.generation);
        this.events.emit("connected", { reconnect: effect.reconnect });
        this.firstConnect.connected();
        return;
      case "disconnected":
        this.events.emit("disconnected", { error: effect.error });
        return;
      case "wait": {
        const delay = backoffDelay(this.settings.backoff ?? DEFAULT_BACKOFF, effect.attempt);
        if (effect.first) log.warn(says.retrying, { ...fields, retry_in_ms: delay, error: effect.error });
        else log.debug(says.retrying, { ...fields, attempt: effect.attempt + 1, retry_in_ms: delay, error: effect.error });
        this.retryTimer = setTimeout(() => {
          this.retryTimer = null;
          this.dispatch({ type: "retry" });
        }, delay);
        return;
      }
      case "refused":
        this.events.emit("refused", { reason: effect.reason, attempts: effect.attempts });
        return;
    }
  }

  private async shutdown(clean: boolean): Promise<void> {
    await this.teardown(clean);
    this.firstConnect.closed();
  }
}
