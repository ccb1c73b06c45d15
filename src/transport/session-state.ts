/**
 * The connection state of a transport, the same for every carrier: a discriminated union and a pure
 * transition function. The reconnecting session (./session.ts) feeds it what the carrier reports and
 * carries out the effects it returns; the carrier only opens connections and says how each one went.
 *
 *   new ──start──▶ connecting ──up──▶ connected
 *                    ▲     │             │
 *                  retry  down          down
 *                    │     ▼             │
 *                   waiting ◀────────────┘
 *
 *   any ──close──▶ closed;  connecting/connected ──down (the MAX_REFUSALS-th refusal)──▶ closed
 *
 * Every attempt has a generation; what a carrier reports about an older attempt (a late callback of
 * a connection already given up) is ignored, and so is a second `down` of the same attempt.
 */
import { MAX_REFUSALS } from "./refusals.ts";

export type SessionState =
  | { kind: "new" }
  | { kind: "connecting"; generation: number; failures: number; everConnected: boolean; refusals: number }
  | { kind: "connected"; generation: number }
  | { kind: "waiting"; generation: number; failures: number; everConnected: boolean; refusals: number }
  | { kind: "closed"; refused: boolean };

export type SessionEvent =
  | { type: "start" }
  /** Attempt `generation` is connected (and, over MQTT, subscribed). */
  | { type: "up"; generation: number }
  /** Attempt `generation` failed or its connection dropped; `refusal` when the peer refused the credentials (./refusals.ts). */
  | { type: "down"; generation: number; error: string | null; refusal?: string | undefined }
  /** The backoff delay has passed. */
  | { type: "retry" }
  | { type: "close" };

export type SessionEffect =
  /** Start connection attempt `generation`. */
  | { type: "open"; generation: number }
  /** Connected, after `retries` attempts since the connection was lost (or since the first attempt failed). */
  | { type: "connected"; reconnect: boolean; retries: number }
  | { type: "disconnected"; error: string | null }
  /**
   * Wait the backoff delay for retry number `attempt`, then `retry`. `first`: the first failure since the
   * last connection (or the start), which is the one to report; the later ones are the same outage.
   */
  | { type: "wait"; attempt: number; first: boolean; error: string | null }
  /** The credentials were refused MAX_REFUSALS times in a row: the session is over. */
  | { type: "refused"; reason: string; attempts: number };

export interface SessionTransition {
  state: SessionState;
  effects: SessionEffect[];
}

export const INITIAL_SESSION: SessionState = Object.freeze({ kind: "new" });

const same = (state: SessionState): SessionTransition => ({ state, effects: [] });

export function sessionTransition(state: SessionState, event: SessionEvent): SessionTransition {
  if (event.type === "close") return state.kind === "closed" ? same(state) : same({ kind: "closed", refused: false });
  switch (state.kind) {
    case "new":
      return event.type === "start" ? open({ generation: 1, failures: 0, everConnected: false, refusals: 0 }) : same(state);
    case "connecting":
      if (event.type === "up" && event.generation === state.generation) {
        return { state: { kind: "connected", generation: state.generation }, effects: [{ type: "connected", reconnect: state.everConnected, retries: state.failures }] };
      }
      if (event.type === "down" && event.generation === state.generation) return down(state, false, event);
      return same(state);
    case "connected":
      // Connected: the credentials are good and the outage count starts again.
      if (event.type === "down" && event.generation === state.generation) {
        return down({ generation: state.generation, failures: 0, everConnected: true, refusals: 0 }, true, event);
      }
      return same(state);
    case "waiting":
      return event.type === "retry" ? open({ generation: state.generation + 1, failures: state.failures, everConnected: state.everConnected, refusals: state.refusals }) : same(state);
    case "closed":
      return same(state);
  }
}

type Progress = Omit<Extract<SessionState, { kind: "connecting" }>, "kind">;

function open(p: Progress): SessionTransition {
  return { state: { kind: "connecting", ...p }, effects: [{ type: "open", generation: p.generation }] };
}

function down(p: Progress, wasConnected: boolean, event: Extract<SessionEvent, { type: "down" }>): SessionTransition {
  const effects: SessionEffect[] = wasConnected ? [{ type: "disconnected", error: event.error }] : [];
  // Refusals count in a row across transient failures; only a successful connection resets them.
  const refusals = event.refusal === undefined ? p.refusals : p.refusals + 1;
  if (event.refusal !== undefined && refusals >= MAX_REFUSALS) {
    return { state: { kind: "closed", refused: true }, effects: [...effects, { type: "refused", reason: event.refusal, attempts: refusals }] };
  }
  const state: SessionState = { kind: "waiting", generation: p.generation, failures: p.failures + 1, everConnected: p.everConnected, refusals };
  return { state, effects: [...effects, { type: "wait", attempt: p.failures, first: p.failures === 0, error: event.error }] };
}
