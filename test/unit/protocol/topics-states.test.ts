import { describe, expect, test } from "bun:test";
import { allWriteonlyFilter, parseTopic, poolPrefix, readonlyTopic, writeonlyTopic } from "../../../src/protocol/topics.ts";
import { RUN_REASONS, finalStateForReason, isTerminalRunState, RUN_STATES } from "../../../src/protocol/states.ts";

describe("topics", () => {
  test("builders and parser agree", () => {
    expect(readonlyTopic("spacelift", "P1", "W1")).toBe("spacelift/readonly/P1/W1");
    expect(writeonlyTopic("spacelift", "P1", "W1")).toBe("spacelift/writeonly/P1/W1");
    expect(parseTopic("spacelift/writeonly/P1/W1")).toEqual({ namespace: "spacelift", direction: "writeonly", pool: "P1", worker: "W1" });
    expect(allWriteonlyFilter("ns")).toBe("ns/writeonly/+/+");
    expect(poolPrefix("ns", "readonly", "P")).toBe("ns/readonly/P/");
  });

  test.each(["spacelift/writeonly/P1", "spacelift/sideways/P1/W1", "spacelift/writeonly/+/W1", "a/writeonly/P/W/extra", ""])(
    "%p is not one of ours",
    (topic) => expect(parseTopic(topic)).toBeNull(),
  );

  test("wildcards and separators cannot be smuggled in through ids", () => {
    expect(() => readonlyTopic("spacelift", "P/../Q", "W")).toThrow(RangeError);
    expect(() => writeonlyTopic("spacelift", "P", "#")).toThrow(RangeError);
    expect(() => writeonlyTopic("spacelift", "+", "W")).toThrow(RangeError);
  });
});

describe("states and reasons", () => {
  test("every reason maps to exactly one terminal state", () => {
    for (const reason of RUN_REASONS) expect(isTerminalRunState(finalStateForReason(reason))).toBe(true);
    expect(finalStateForReason("ok")).toBe("FINISHED");
    expect(finalStateForReason("cancelled")).toBe("CANCELED");
    expect(finalStateForReason("launcher-crashed")).toBe("FAILED");
    expect(RUN_STATES.filter(isTerminalRunState)).toEqual(["FINISHED", "FAILED", "CANCELED"]);
  });
});
