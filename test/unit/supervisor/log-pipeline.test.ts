// The run log path without Docker: masking per stream (also across random read boundaries, multibyte
// secrets cut inside a character), phase markers parsed before masking, early release of safe tails,
// every stage empty after finish, chunk sequencing from 0, size and backpressure.
import { describe, expect, test } from "bun:test";
import type { LogChunk, RunSink } from "../../../src/launcher/run-executor.ts";
import { LogMasker } from "../../../src/launcher/log-masker.ts";
import { LogChunker } from "../../../src/launcher/supervisor/log-chunker.ts";
import { LogPipeline } from "../../../src/launcher/supervisor/log-pipeline.ts";
import { encodePhaseMarker, newMarkerNonce } from "../../../src/protocol/phase-markers.ts";
import { rng } from "../../support/random.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function oneShotBytes(bytes: Uint8Array, secrets: string[]): Buffer {
  const m = new LogMasker(secrets);
  return Buffer.concat([...m.write(bytes), ...m.end()]);
}

function oneShot(text: string, secrets: string[]): string {
  return dec.decode(oneShotBytes(enc.encode(text), secrets));
}

/** Splits `bytes` at random points into 1..n pieces. */
function split(bytes: Uint8Array, random: () => number, maxPieces = 12): Uint8Array[] {
  const cuts = new Set<number>();
  const n = Math.floor(random() * maxPieces);
  for (let i = 0; i < n; i++) cuts.add(1 + Math.floor(random() * Math.max(1, bytes.length - 1)));
  const points = [0, ...[...cuts].filter((c) => c < bytes.length).sort((a, b) => a - b), bytes.length];
  const out: Uint8Array[] = [];
  for (let i = 0; i + 1 < points.length; i++) if (points[i + 1]! > points[i]!) out.push(bytes.subarray(points[i], points[i + 1]));
  return out;
}

class Sink implements RunSink {
  readonly events: Array<{ phase: string } | { chunk: LogChunk }> = [];
  delayMs = 0;
  phase(_run: string, name: string): void {
    this.events.push({ phase: name });
  }
  async log(chunk: LogChunk): Promise<void> {
    this.events.push({ chunk });
    if (this.delayMs > 0) await Bun.sleep(this.delayMs);
  }
  chunks(): LogChunk[] {
    return this.events.flatMap((e) => ("chunk" in e ? [e.chunk] : []));
  }
  /** Each phase's bytes decoded whole: a chunk may end inside a multibyte character. */
  byPhase(): Array<{ phase: string; text: string }> {
    const out: Array<{ phase: string; bytes: Uint8Array[] }> = [{ phase: "(start)", bytes: [] }];
    for (const e of this.events) {
      if ("phase" in e) out.push({ phase: e.phase, bytes: [] });
      else out.at(-1)!.bytes.push(e.chunk.data);
    }
    return out.map((p) => ({ phase: p.phase, text: dec.decode(Buffer.concat(p.bytes)) }));
  }
}

describe("LogPipeline", () => {
  test("property: phases in order, each phase's text masked exactly, whatever the read boundaries", async () => {
    const random = rng(42);
    const secrets = ["s3cret-value", "multi\nline\nsecret", "ab", "€", "pässwörd🔑"];
    const pieces = ["plain output ", "s3cret-value", "multi\nline\nsecret", "a", "b", "\n", "x", "s3cret-", "value\n", "\x1e not a marker\n", "€", "₤", "pässwörd🔑", "pässw", "🔑"];
    for (let round = 0; round < 150; round++) {
      const nonce = newMarkerNonce();
      const phases = ["initializing", "planning", "applying"].slice(0, 1 + Math.floor(random() * 3));
      const expected: Array<{ phase: string; text: string }> = [{ phase: "(start)", text: "" }];
      let stream = "";
      for (const phase of phases) {
        stream += dec.decode(encodePhaseMarker(nonce, phase));
        let text = "";
        for (let i = Math.floor(random() * 8); i > 0; i--) text += pieces[Math.floor(random() * pieces.length)];
        stream += text;
        expected.push({ phase, text: oneShot(text, secrets) });
      }
      const sink = new Sink();
      const pipeline = new LogPipeline({ run: "r", stackId: "s", sink, nonce, secrets, maxChunkBytes: 1 + Math.floor(random() * 40) });
      for (const data of split(enc.encode(stream), random, 20)) await pipeline.output({ stream: "stdout", data });
      await pipeline.finish();
      expect(pipeline.heldBack()).toBe(0);
      const got = sink.byPhase();
      expect(got.map((p) => p.phase)).toEqual(expected.map((p) => p.phase));
      got.forEach((p, i) => {
        // A read boundary right after a marker's leading newline may leave that newline in the log.
        const want = expected[i]!.text;
        if (p.text !== want) expect(p.text).toBe(`${want}\n`);
      });
      // Per phase: the phase change stands where the marker was, so two phases' bytes never form one secret.
      for (const p of got) for (const s of secrets) expect(p.text).not.toContain(s);
      expect(sink.chunks().map((c) => c.seq)).toEqual(sink.chunks().map((_, i) => i));
      expect(pipeline.lastSeq).toBe(sink.chunks().length - 1);
      expect(dec.decode(Buffer.concat(sink.chunks().map((c) => c.data)))).not.toContain(nonce);
    }
  });

  test("a secret split across stdout reads is masked although stderr output comes in between", async () => {
    const sink = new Sink();
    const nonce = newMarkerNonce();
    const pipeline = new LogPipeline({ run: "r", stackId: "s", sink, nonce, secrets: ["topsecret"] });
    await pipeline.output({ stream: "stdout", data: encodePhaseMarker(nonce, "planning") });
    await pipeline.output({ stream: "stdout", data: enc.encode("out: top") });
    await pipeline.output({ stream: "stderr", data: enc.encode("err line\n") });
    await pipeline.output({ stream: "stdout", data: enc.encode("secret\n") });
    await pipeline.finish();
    // stdout's possible secret start is held back, so the stderr line goes first.
    expect(sink.byPhase()[1]).toEqual({ phase: "planning", text: "err line\nout: *****\n" });
  });

  test("a line then stderr keeps the line break in place; launcher notes are masked too", async () => {
    const sink = new Sink();
    const nonce = newMarkerNonce();
    const pipeline = new LogPipeline({ run: "r", stackId: "s", sink, nonce, secrets: ["pw-123"] });
    await pipeline.output({ stream: "stdout", data: enc.encode("out\n") });
    await pipeline.output({ stream: "stderr", data: enc.encode("err\n") });
    await pipeline.note("debug: password pw-123");
    await pipeline.output({ stream: "stdout", data: enc.encode("more\n") });
    await pipeline.finish();
    expect(sink.byPhase()[0]!.text).toBe("out\nerr\n[spacelift-launcher] debug: password *****\nmore\n");
  });

  test("the first chunk has seq 0; a run that printed nothing has lastSeq -1", async () => {
    const quiet = new Sink();
    const nothing = new LogPipeline({ run: "r", stackId: "s", sink: quiet, nonce: newMarkerNonce(), secrets: ["x"] });
    await nothing.finish();
    expect(quiet.chunks()).toEqual([]);
    expect(nothing.lastSeq).toBe(-1);
    const sink = new Sink();
    const nonce = newMarkerNonce();
    const pipeline = new LogPipeline({ run: "r", stackId: "s", sink, nonce, secrets: [], maxChunkBytes: 4 });
    // A marker alone prints nothing: the phase change carries no chunk.
    await pipeline.output({ stream: "stdout", data: encodePhaseMarker(nonce, "planning") });
    expect(pipeline.lastSeq).toBe(-1);
    await pipeline.output({ stream: "stdout", data: enc.encode("hello\n") });
    await pipeline.finish();
    expect(sink.chunks().map((c) => [c.seq, dec.decode(c.data)])).toEqual([[0, "hell"], [1, "o\n"]]);
    expect(pipeline.lastSeq).toBe(1);
  });

  test("a one-character multibyte secret cut inside it, with the other stream in between, never leaks", async () => {
    for (const secret of ["€", "é", "🔑"]) {
      const bytes = enc.encode(`pw ${secret} ok\n`);
      for (let cut = 1; cut < bytes.length; cut++) {
        const sink = new Sink();
        const pipeline = new LogPipeline({ run: "r", stackId: "s", sink, nonce: newMarkerNonce(), secrets: [secret] });
        await pipeline.output({ stream: "stdout", data: bytes.subarray(0, cut) });
        await pipeline.output({ stream: "stderr", data: enc.encode("E") });
        await pipeline.output({ stream: "stdout", data: bytes.subarray(cut) });
        await pipeline.finish();
        const all = Buffer.concat(sink.chunks().map((c) => c.data));
        expect(all.includes(enc.encode(secret))).toBe(false);
        expect(Buffer.from(all.filter((b) => b !== 0x45)).toString("hex")).toBe(oneShotBytes(bytes, [secret]).toString("hex"));
      }
    }
  });

  test("fuzz (seeded): each stream, cut at random byte positions between the other's reads, equals one-shot masking", async () => {
    const random = rng(1337);
    const int = (n: number): number => Math.floor(random() * n);
    const chars = ["a", "b", "\n", " ", "é", "€", "₤", "😀", "😁", "🔑"];
    const word = (max: number): string => Array.from({ length: 1 + int(max) }, () => chars[int(chars.length)]).join("");
    // The other stream prints only X and Y, bytes no secret and no multibyte character contains,
    // so the two streams can be told apart in the sink's bytes whatever the interleaving.
    const other = (n: number): Uint8Array => enc.encode(Array.from({ length: n }, () => (int(2) === 0 ? "X" : "Y")).join(""));
    for (let round = 0; round < 600; round++) {
      const secrets = Array.from({ length: 1 + int(3) }, () => (int(3) === 0 ? ["€", "😀", "é"][int(3)]! : word(5)));
      const data = enc.encode(Array.from({ length: int(30) }, () => (int(3) === 0 ? secrets[int(secrets.length)] : word(3))).join(""));
      const stream = int(2) === 0 ? "stdout" : "stderr";
      const sink = new Sink();
      const pipeline = new LogPipeline({ run: "r", stackId: "s", sink, nonce: newMarkerNonce(), secrets, maxChunkBytes: 1 + int(64) });
      let otherBytes = 0;
      for (const piece of split(data, random, 16)) {
        await pipeline.output({ stream, data: piece });
        const noise = other(int(3));
        otherBytes += noise.length;
        await pipeline.output({ stream: stream === "stdout" ? "stderr" : "stdout", data: noise });
      }
      await pipeline.finish();
      expect(pipeline.heldBack()).toBe(0);
      const all = Buffer.concat(sink.chunks().map((c) => c.data));
      const mine = all.filter((b) => b !== 0x58 && b !== 0x59);
      const where = `seed 1337 round ${round} (${stream}): secrets=${JSON.stringify(secrets)} data=${Buffer.from(data).toString("hex")}`;
      if (!Buffer.from(mine).equals(oneShotBytes(data, secrets))) throw new Error(`streaming differs from one-shot masking at ${where}`);
      expect(all.length - mine.length).toBe(otherBytes);
      for (const s of secrets) if (all.includes(enc.encode(s))) throw new Error(`secret bytes in the output at ${where}`);
    }
  });

  test("the stdout mirror writes masked JSON lines", async () => {
    const lines: string[] = [];
    const nonce = newMarkerNonce();
    const pipeline = new LogPipeline({
      run: "R", stackId: "S", sink: new Sink(), nonce, secrets: ["pw-123"], mirror: (l) => lines.push(l), now: () => new Date(0),
    });
    await pipeline.output({ stream: "stdout", data: enc.encode("a pw-1") });
    await pipeline.output({ stream: "stdout", data: enc.encode("23 b\nlast") });
    await pipeline.finish();
    expect(lines.map((l) => JSON.parse(l) as unknown)).toEqual([
      { run_ulid: "R", stack_id: "S", ts: "1970-01-01T00:00:00.000Z", msg: "a ***** b" },
      { run_ulid: "R", stack_id: "S", ts: "1970-01-01T00:00:00.000Z", msg: "last" },
    ]);
  });
});

describe("LogChunker", () => {
  test("chunks are at most maxBytes, seq starts at 0 without gaps, and the bytes are copied", async () => {
    const sink = new Sink();
    const chunker = new LogChunker("r", sink, 10, 1000);
    expect(chunker.lastSeq).toBe(-1);
    const buf = enc.encode("0123456789abcdefghijKLMNO");
    await chunker.push(buf);
    expect(chunker.heldBack()).toBe(5);
    buf.fill(0x21);
    await chunker.flush();
    expect(chunker.heldBack()).toBe(0);
    const chunks = sink.chunks();
    expect(chunks.map((c) => [c.seq, dec.decode(c.data)])).toEqual([[0, "0123456789"], [1, "abcdefghij"], [2, "KLMNO"]]);
    expect(chunker.lastSeq).toBe(2);
  });

  test("a small write goes out after maxDelayMs without another push", async () => {
    const sink = new Sink();
    const chunker = new LogChunker("r", sink, 1000, 30);
    await chunker.push(enc.encode("hello"));
    expect(sink.chunks()).toHaveLength(0);
    await Bun.sleep(80);
    expect(sink.chunks().map((c) => dec.decode(c.data))).toEqual(["hello"]);
  });

  test("backpressure: push waits for a slow sink, so buffered bytes stay bounded", async () => {
    const sink = new Sink();
    sink.delayMs = 20;
    const chunker = new LogChunker("r", sink, 100, 1000);
    const started = performance.now();
    for (let i = 0; i < 10; i++) await chunker.push(new Uint8Array(100));
    // Ten full chunks, each taking 20 ms in the sink, handed over one at a time.
    expect(performance.now() - started).toBeGreaterThanOrEqual(9 * 20 - 5);
    expect(sink.chunks()).toHaveLength(10);
  });

  test("a sink failure reaches the next caller", async () => {
    const failing: RunSink = { phase: () => {}, log: () => Promise.reject(new Error("spool full")) };
    const chunker = new LogChunker("r", failing, 4, 1000);
    const failure = await chunker.push(enc.encode("12345")).then(() => undefined, (error: unknown) => error);
    expect(failure).toBeInstanceOf(Error);
    expect((failure as Error).message).toBe("spool full");
  });
});
