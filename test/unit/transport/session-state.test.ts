// The transports' connection state machine, as a table: state + event -> state + effects. Then the
// walks that matter end to end: an outage is reported once, backoff grows with the retries and starts
// again after a connection, and the fifth refusal in a row (transient failures between them do not
// reset the count, a connection does) closes the session with `refused`.
import { describe, expect, test } from "bun:test";
import { MAX_REFUSALS } from "../../../src/transport/refusals.ts";
import { INITIAL_SESSION, sessionTransition, type SessionEffect, type SessionEvent, type SessionState } from "../../../src/transport/session-state.ts";

const connecting = (generation: number, failures = 0, everConnected = false, refusals = 0): SessionState => ({ kind: "connecting", generation, failures, everConnected, refusals });
const waiting = (generation: number, failures: number, everConnected = false, refusals = 0): SessionState => ({ kind: "waiting", generation, failures, everConnected, refusals });
const connected = (generation: number): SessionState => ({ kind: "connected", generation });
const closed: SessionState = { kind: "closed", refused: false };
const down = (generation: number, refusal?: string): SessionEvent => ({ type: "down", generation, error: "boom", refusal });

const table: Array<[string, SessionState, SessionEvent, SessionState, SessionEffect[]]> = [
  ["start opens the first attempt", INITIAL_SESSION, { type: "start" }, connecting(1), [{ type: "open", generation: 1 }]],
  ["a second start changes nothing", connecting(1), { type: "start" }, connecting(1), []],
  ["up before start is ignored", INITIAL_SESSION, { type: "up", generation: 1 }, INITIAL_SESSION, []],
  ["the first connection", connecting(1), { type: "up", generation: 1 }, connected(1), [{ type: "connected", reconnect: false, retries: 0 }]],
  ["the first connection after 3 retries", connecting(4, 3), { type: "up", generation: 4 }, connected(4), [{ type: "connected", reconnect: false, retries: 3 }]],
  ["a reconnection after 2 retries", connecting(7, 2, true, 1), { type: "up", generation: 7 }, connected(7), [{ type: "connected", reconnect: true, retries: 2 }]],
  ["up of an older attempt is ignored", connecting(3), { type: "up", generation: 2 }, connecting(3), []],
  ["a failed first attempt: wait, reported", connecting(1), down(1), waiting(1, 1), [{ type: "wait", attempt: 0, first: true, error: "boom" }]],
  ["a failed retry: wait longer, not reported again", connecting(2, 1), down(2), waiting(2, 2), [{ type: "wait", attempt: 1, first: false, error: "boom" }]],
  [
    "a dropped connection: disconnected, then wait from the start of the backoff",
    connected(5),
    down(5),
    waiting(5, 1, true),
    [
      { type: "disconnected", error: "boom" },
      { type: "wait", attempt: 0, first: true, error: "boom" },
    ],
  ],
  ["down of an older attempt is ignored", connected(5), down(4), connected(5), []],
  ["a second down of the same attempt is ignored", waiting(5, 1), down(5), waiting(5, 1), []],
  ["retry opens the next attempt, keeping the counts", waiting(5, 2, true, 1), { type: "retry" }, connecting(6, 2, true, 1), [{ type: "open", generation: 6 }]],
  ["retry while connecting changes nothing", connecting(2), { type: "retry" }, connecting(2), []],
  ["a refusal is counted", connecting(1), down(1, "CONNACK not authorized"), waiting(1, 1, false, 1), [{ type: "wait", attempt: 0, first: true, error: "boom" }]],
  ["a transient failure keeps the refusal count", connecting(3, 2, false, 2), down(3), waiting(3, 3, false, 2), [{ type: "wait", attempt: 2, first: false, error: "boom" }]],
  [
    "the last refusal closes the session",
    connecting(9, 8, true, MAX_REFUSALS - 1),
    down(9, "HTTP 401 poll-signature-invalid"),
    { kind: "closed", refused: true },
    [{ type: "refused", reason: "HTTP 401 poll-signature-invalid", attempts: MAX_REFUSALS }],
  ],
  ["close from any state", waiting(3, 2), { type: "close" }, closed, []],
  ["close of a new session", INITIAL_SESSION, { type: "close" }, closed, []],
  ["nothing reopens a closed session", closed, { type: "retry" }, closed, []],
  ["a refused session stays refused when closed", { kind: "closed", refused: true }, { type: "close" }, { kind: "closed", refused: true }, []],
  ["up after close is ignored", closed, { type: "up", generation: 1 }, closed, []],
];

describe("session state machine", () => {
  for (const [name, state, event, next, effects] of table) {
    test(name, () => {
      expect(sessionTransition(state, event)).toEqual({ state: next, effects });
    });
  }
});

/** Feeds events in turn; returns the final state and every effect. */
function walk(events: SessionEvent[]): { state: SessionState; effects: SessionEffect[] } {
  let state = INITIAL_SESSION;
  const effects: SessionEffect[] = [];
  for (const event of events) {
    const t = sessionTransition(state, event);
    state = t.state;
    effects.push(...t.effects);
  }
  return { state, effects };
}

/** `times` failed attempts (generations 1..times), each followed by the retry that opens the next. */
const failAndRetry = (times: number, refusal?: string): SessionEvent[] =>
  Array.from({ length: times }, (_, i) => [down(i + 1, refusal), { type: "retry" } as SessionEvent]).flat();

describe("session walks", () => {
  test("ten failed attempts: reported once, backoff attempts 0..9, then connected after 10 retries", () => {
    const { state, effects } = walk([{ type: "start" }, ...failAndRetry(10), { type: "up", generation: 11 }]);
    const waits = effects.filter((e) => e.type === "wait");
    expect(waits.map((w) => w.attempt)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(waits.filter((w) => w.first)).toHaveLength(1);
    expect(effects.at(-1)).toEqual({ type: "connected", reconnect: false, retries: 10 });
    expect(state).toEqual(connected(11));
  });

  test("refusals: the fifth in a row ends it, a connection in between starts the count again", () => {
    const refusal = "CONNACK not authorized";
    const fourThenUp = walk([{ type: "start" }, ...failAndRetry(MAX_REFUSALS - 1, refusal), { type: "up", generation: MAX_REFUSALS }, down(MAX_REFUSALS, refusal)]);
    expect(fourThenUp.state).toMatchObject({ kind: "waiting", refusals: 1 });
    expect(fourThenUp.effects.some((e) => e.type === "refused")).toBe(false);

    const five = walk([{ type: "start" }, ...failAndRetry(MAX_REFUSALS - 1, refusal), down(MAX_REFUSALS, refusal)]);
    expect(five.state).toEqual({ kind: "closed", refused: true });
    expect(five.effects.at(-1)).toEqual({ type: "refused", reason: refusal, attempts: MAX_REFUSALS });
  });
});
