// Fault suite: seeded fuzzing of the Docker stream demultiplexer (what dockerd sends on attach and logs):
// valid streams split at random read boundaries come out frame for frame; damaged ones (flipped
// bits, truncation, huge announced sizes, random bytes) end in a DockerError with a stable code,
// never another exception, a hang or a buffer of the announced size beyond the limit.
import { describe, expect, test } from "bun:test";
import { demultiplex, type OutputFrame } from "../../src/docker/demux.ts";
import { DockerError } from "../../src/docker/errors.ts";
import { expectClearRejection, fuzz, randomBytes, type Rand } from "./fuzz.ts";

const LIMIT = 64 * 1024;

interface Case {
  bytes: Uint8Array;
  /** Where the reads end. */
  cuts: number[];
  /** The frames a valid stream holds; null once damaged. */
  frames: Array<{ stream: number; data: Uint8Array }> | null;
}

function stream(rand: Rand): Case {
  const frames: Array<{ stream: number; data: Uint8Array }> = [];
  for (let n = Math.floor(rand() * 6); n > 0; n--) frames.push({ stream: 1 + Math.floor(rand() * 2), data: randomBytes(rand, Math.floor(rand() * (rand() < 0.1 ? 5000 : 40))) });
  const parts = frames.flatMap((f) => {
    const h = new Uint8Array(8);
    h[0] = f.stream;
    new DataView(h.buffer).setUint32(4, f.data.length);
    return [h, f.data];
  });
  return { bytes: Buffer.concat(parts), cuts: [], frames };
}

function damage(rand: Rand, c: Case): Case {
  const b = Uint8Array.from(c.bytes);
  switch (Math.floor(rand() * 5)) {
    case 0:
      if (b.length > 0) {
        const at = Math.floor(rand() * b.length);
        b[at] = b[at]! ^ (1 << Math.floor(rand() * 8));
      }
      return { ...c, bytes: b, frames: null };
    case 1:
      return { ...c, bytes: b.subarray(0, Math.floor(rand() * b.length)), frames: null };
    case 2: {
      // A header announcing a huge frame (up to 4 GiB).
      const h = new Uint8Array(8);
      h[0] = 1;
      new DataView(h.buffer).setUint32(4, Math.floor(rand() * 2 ** 32));
      return { ...c, bytes: Buffer.concat([b, h, randomBytes(rand, 16)]), frames: null };
    }
    case 3:
      return { ...c, bytes: randomBytes(rand, Math.floor(rand() * 200)), frames: null };
    default: {
      // Stream 3: the daemon's own error, as it sends one mid-stream.
      const text = new TextEncoder().encode("error from daemon");
      const h = new Uint8Array(8);
      h[0] = 3;
      new DataView(h.buffer).setUint32(4, text.length);
      return { ...c, bytes: Buffer.concat([b, h, text]), frames: null };
    }
  }
}

async function* reads(c: Case, rand: Rand): AsyncGenerator<Uint8Array> {
  let at = 0;
  while (at < c.bytes.length) {
    const n = 1 + Math.floor(rand() * (rand() < 0.5 ? 9 : 4096));
    yield c.bytes.subarray(at, at + n);
    at += n;
  }
}

describe("fuzz: Docker stream frames", () => {
  test("demultiplex: valid streams exactly, damaged ones a DockerError", async () => {
    let splitter: Rand = Math.random;
    const r = await fuzz(
      "docker-demux",
      (rand) => {
        splitter = rand;
        const c = stream(rand);
        return rand() < 0.3 ? c : damage(rand, c);
      },
      async (c) => {
        const out: OutputFrame[] = [];
        try {
          for await (const f of demultiplex(reads(c, splitter), LIMIT)) out.push({ stream: f.stream, data: Uint8Array.from(f.data) });
        } catch (err) {
          if (c.frames) throw new Error(`a valid stream was refused: ${String(err)}`);
          return expectClearRejection(err, DockerError);
        }
        if (c.frames) {
          const want = c.frames.filter((f) => f.data.length > 0).map((f): OutputFrame => ({ stream: f.stream === 1 ? "stdout" : "stderr", data: f.data }));
          expect(out).toEqual(want);
        }
        return false;
      },
      (c) => `${c.bytes.length} bytes ${Buffer.from(c.bytes.subarray(0, 400)).toString("hex")}`,
    );
    expect(r.rejected).toBeGreaterThan(0);
  });
});
