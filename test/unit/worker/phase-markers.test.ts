import { describe, expect, test } from "bun:test";
import { type MarkerEvent, type MarkerParserOptions, PhaseMarkerParser, encodePhaseMarker, newMarkerNonce } from "../../../src/protocol/phase-markers.ts";
import { rng } from "../../support/random.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const NONCE = "a1b2c3d4e5f6a7b8c9d0";

type Flat = Array<{ phase: string } | { out: string }>;

/**
 * Parses `stream` cut at `cuts`, merging adjacent output events so splits do not show. After every
 * read it checks the parser's own account of what it holds: within its bound, and (without an early
 * released line break) exactly the input not yet returned as output or taken by a marker.
 */
function parse(stream: Uint8Array, cuts: number[], nonce = NONCE, options: MarkerParserOptions = {}): Flat {
  const parser = new PhaseMarkerParser(nonce, options);
  const events: MarkerEvent[] = [];
  let prev = 0;
  let accounted = 0;
  for (const cut of [...cuts, stream.length]) {
    const got = parser.write(stream.slice(prev, cut));
    prev = cut;
    events.push(...got);
    for (const e of got) accounted += e.kind === "output" ? e.data.length : encodePhaseMarker(nonce, e.name).length;
    expect(parser.heldBack()).toBeLessThanOrEqual(parser.maxHeldBack);
    if (!options.releaseLineBreak) expect(parser.heldBack()).toBe(prev - accounted);
  }
  const rest = parser.end();
  if (!options.releaseLineBreak) expect(rest.reduce((n, e) => n + (e.kind === "output" ? e.data.length : 0), 0)).toBe(prev - accounted);
  expect(parser.heldBack()).toBe(0);
  events.push(...rest);
  const flat: Flat = [];
  let text: Uint8Array[] = [];
  const flush = (): void => {
    if (text.length > 0) flat.push({ out: dec.decode(Buffer.concat(text)) });
    text = [];
  };
  for (const e of events) {
    if (e.kind === "output") {
      expect(e.data.length).toBeGreaterThan(0);
      text.push(e.data);
    } else {
      flush();
      flat.push({ phase: e.name });
    }
  }
  flush();
  return flat;
}

/** The output text before the first phase and after each phase. */
function bySegment(flat: Flat): Array<{ phase: string; out: string }> {
  const out = [{ phase: "(start)", out: "" }];
  for (const e of flat) {
    if ("phase" in e) out.push({ phase: e.phase, out: "" });
    else out.at(-1)!.out += e.out;
  }
  return out;
}

function stream(...parts: Array<string | { phase: string }>): Uint8Array {
  return Buffer.concat(parts.map((p) => (typeof p === "string" ? enc.encode(p) : encodePhaseMarker(NONCE, p.phase))));
}

describe("phase markers", () => {
  test("round trip: output is exactly what commands wrote, markers become phase events", () => {
    const s = stream({ phase: "initializing" }, "init ok\n", { phase: "planning" }, "no newline at end", { phase: "applying" }, "done\n");
    expect(parse(s, [])).toEqual([
      { phase: "initializing" },
      { out: "init ok\n" },
      { phase: "planning" },
      { out: "no newline at end" },
      { phase: "applying" },
      { out: "done\n" },
    ]);
  });

  test("the same events for a split at every position, and for one-byte reads", () => {
    const s = stream("pre\n", { phase: "planning" }, "a\nb", { phase: "applying" }, "\n");
    const whole = parse(s, []);
    for (let cut = 0; cut <= s.length; cut++) expect(parse(s, [cut])).toEqual(whole);
    expect(parse(s, Array.from({ length: s.length }, (_, i) => i))).toEqual(whole);
  });

  test("a marker with another nonce is plain output", () => {
    const forged = encodePhaseMarker("ffffffffffffffffffff", "applying");
    const s = Buffer.concat([stream({ phase: "planning" }), forged, enc.encode("x")]);
    expect(parse(s, [])).toEqual([{ phase: "planning" }, { out: dec.decode(forged) + "x" }]);
  });

  test("the right nonce with a body that is not a marker stays output", () => {
    const text = `\n\x1e${NONCE} phase Not_A_Name\n\n\x1e${NONCE} other thing\n`;
    expect(parse(enc.encode(text), [])).toEqual([{ out: text }]);
    const long = `\n\x1e${NONCE} phase ${"a".repeat(300)}`;
    expect(parse(enc.encode(long), [5, 40])).toEqual([{ out: long }]);
  });

  test("an unfinished marker at the end of the stream is returned as output", () => {
    const text = `out\n\x1e${NONCE} pha`;
    expect(parse(enc.encode(text), [6])).toEqual([{ out: text }]);
  });

  test("holds back nothing when the tail cannot start a marker", () => {
    const parser = new PhaseMarkerParser(NONCE);
    const events = parser.write(enc.encode("line one\nline two"));
    expect(events).toEqual([{ kind: "output", data: enc.encode("line one\nline two") }]);
    expect(parser.write(enc.encode("\n"))).toEqual([]);
    expect(parser.end()).toEqual([{ kind: "output", data: enc.encode("\n") }]);
  });

  test("releaseLineBreak: a lone trailing line break is output at once, never twice, and a marker after it still parses", () => {
    const parser = new PhaseMarkerParser(NONCE, { releaseLineBreak: true });
    const out = (events: MarkerEvent[]) => events.map((e) => (e.kind === "output" ? dec.decode(e.data) : { phase: e.name }));
    expect(out(parser.write(enc.encode("line\n")))).toEqual(["line", "\n"]);
    expect(parser.heldBack()).toBe(0);
    expect(out(parser.write(enc.encode("more\n\n")))).toEqual(["more\n", "\n"]);
    const marker = encodePhaseMarker(NONCE, "planning");
    // The released line break stands for the marker's own leading newline.
    expect(out(parser.write(marker.subarray(1)))).toEqual([{ phase: "planning" }]);
    // Longer held-back bytes could be the nonce: they wait.
    expect(out(parser.write(marker.subarray(0, 5)))).toEqual([]);
    expect(parser.heldBack()).toBe(5);
    expect(out(parser.end())).toEqual([dec.decode(marker.subarray(0, 5))]);
  });

  test("releaseLineBreak, random streams and splits: the same events, a phase's output at most one extra line break", () => {
    const random = rng(99);
    const pieces = ["\n", "\x1e", NONCE.slice(0, 5), "x", `\x1e${NONCE}`, "é", " phase ", "\n\n"];
    for (let round = 0; round < 400; round++) {
      const parts: Array<string | { phase: string }> = [];
      for (let i = Math.floor(random() * 8); i > 0; i--) {
        if (random() < 0.4) parts.push({ phase: ["planning", "applying", "init-1"][Math.floor(random() * 3)]! });
        else parts.push(Array.from({ length: 1 + Math.floor(random() * 6) }, () => pieces[Math.floor(random() * pieces.length)]).join(""));
      }
      const s = stream(...parts);
      const cuts = Array.from({ length: Math.floor(random() * 10) }, () => Math.floor(random() * (s.length + 1))).sort((a, b) => a - b);
      const exact = bySegment(parse(s, cuts));
      const eager = bySegment(parse(s, cuts, NONCE, { releaseLineBreak: true }));
      expect(eager.map((x) => x.phase)).toEqual(exact.map((x) => x.phase));
      eager.forEach((x, i) => {
        if (x.out !== exact[i]!.out) expect(x.out).toBe(`${exact[i]!.out}\n`);
      });
    }
  });

  test("random streams with random splits parse back to what was written", () => {
    let seed = 7;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const pieces = ["\n", "\x1e", NONCE.slice(0, 5), "x", `\x1e${NONCE}`, "é", " phase "];
    for (let round = 0; round < 300; round++) {
      const parts: Array<string | { phase: string }> = [];
      const expected: Flat = [];
      for (let i = rand(8); i > 0; i--) {
        if (rand(3) === 0) {
          const phase = ["planning", "applying", "init-1"][rand(3)]!;
          parts.push({ phase });
          expected.push({ phase });
        } else {
          const text = Array.from({ length: 1 + rand(6) }, () => pieces[rand(pieces.length)]).join("");
          parts.push(text);
          const last = expected.at(-1);
          if (last !== undefined && "out" in last) last.out += text;
          else expected.push({ out: text });
        }
      }
      const s = stream(...parts);
      const cuts = Array.from({ length: rand(6) }, () => rand(s.length + 1)).sort((a, b) => a - b);
      expect(parse(s, cuts)).toEqual(expected);
    }
  });

  test("nonces are random and validated", () => {
    expect(newMarkerNonce()).toMatch(/^[0-9a-f]{32}$/);
    expect(newMarkerNonce()).not.toBe(newMarkerNonce());
    expect(() => new PhaseMarkerParser("short")).toThrow();
    expect(() => encodePhaseMarker(NONCE, "bad name\n")).toThrow();
  });
});
