// The run log path without Docker: masking per stream (also across random read boundaries), phase
// markers parsed before masking, early release of safe tails, chunk sequencing, size and backpressure.
import { describe, expect, test } from "bun:test";
import type { LogChunk, RunSink } from "../../../src/launcher/run-executor.ts";
import { LogMasker } from "../../../src/launcher/log-masker.ts";
import { LogChunker } from "../../../src/launcher/supervisor/log-chunker.ts";
import { LogPipeline } from "../../../src/launcher/supervisor/log-pipeline.ts";
import { StreamMasker } from "../../../src/launcher/supervisor/stream-masker.ts";
import { encodePhaseMarker, newMarkerNonce } from "../../../src/protocol/phase-markers.ts";
import { rng } from "../../support/random.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function oneShot(text: string, secrets: string[]): string {
  const m = new LogMasker(secrets);
  return dec.decode(Buffer.concat([m.write(enc.encode(text)), m.end()]));
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
  byPhase(): Array<{ phase: string; text: string }> {
    const out = [{ phase: "(start)", text: "" }];
    for (const e of this.events) {
      if ("phase" in e) out.push({ phase: e.phase, text: "" });
      else out.at(-1)!.text += dec.decode(e.chunk.data);
    }
    return out;
  }
}

describe("StreamMasker", () => {
  test("equals one-shot masking for random secrets, texts and read boundaries", () => {
    const random = rng(7);
    const alphabet = "ab\nc-";
    const word = (n: number) => Array.from({ length: n }, () => alphabet[Math.floor(random() * alphabet.length)]).join("");
    for (let round = 0; round < 400; round++) {
      const secrets = Array.from({ length: 1 + Math.floor(random() * 3) }, () => word(1 + Math.floor(random() * 5)));
      const text = word(Math.floor(random() * 60));
      const masker = new StreamMasker(secrets);
      const parts = split(enc.encode(text), random).flatMap((p) => masker.write(p));
      parts.push(...masker.end());
      expect(dec.decode(Buffer.concat(parts))).toBe(oneShot(text, secrets));
    }
  });

  test("releases a tail that cannot begin a secret, holds one that can", () => {
    const masker = new StreamMasker(["hunter2"]);
    expect(dec.decode(Buffer.concat(masker.write(enc.encode("line one\n"))))).toBe("line one\n");
    // "hun" may continue as the secret: the masker keeps its usual (longest secret - 1) bytes.
    expect(dec.decode(Buffer.concat(masker.write(enc.encode("pw: hun"))))).toBe("p");
    expect(dec.decode(Buffer.concat(masker.write(enc.encode("ter2 ok\n"))))).toBe("w: ***** ok\n");
  });
});

describe("LogPipeline", () => {
  test("property: phases in order, each phase's text masked exactly, whatever the read boundaries", async () => {
    const random = rng(42);
    const secrets = ["s3cret-value", "multi\nline\nsecret", "ab"];
    const pieces = ["plain output ", "s3cret-value", "multi\nline\nsecret", "a", "b", "\n", "x", "s3cret-", "value\n", "\x1e not a marker\n"];
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
      const got = sink.byPhase();
      expect(got.map((p) => p.phase)).toEqual(expected.map((p) => p.phase));
      got.forEach((p, i) => {
        // A read boundary right after a marker's leading newline may leave that newline in the log.
        const want = expected[i]!.text;
        if (p.text !== want) expect(p.text).toBe(`${want}\n`);
      });
      for (const chunk of sink.chunks()) for (const s of secrets) expect(dec.decode(chunk.data)).not.toContain(s);
      expect(sink.chunks().map((c) => c.seq)).toEqual(sink.chunks().map((_, i) => i + 1));
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
  test("chunks are at most maxBytes, seq starts at 1 without gaps, and the bytes are copied", async () => {
    const sink = new Sink();
    const chunker = new LogChunker("r", sink, 10, 1000);
    const buf = enc.encode("0123456789abcdefghijKLMNO");
    await chunker.push(buf);
    buf.fill(0x21);
    await chunker.flush();
    const chunks = sink.chunks();
    expect(chunks.map((c) => [c.seq, dec.decode(c.data)])).toEqual([[1, "0123456789"], [2, "abcdefghij"], [3, "KLMNO"]]);
    expect(chunker.lastSeq).toBe(3);
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
