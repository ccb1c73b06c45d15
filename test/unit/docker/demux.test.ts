// Docker's multiplexed stream framing: frames split across reads at every position, many frames per read,
// empty frames, and malformed input (typed errors; a bad size is refused before it can grow memory).
import { describe, expect, test } from "bun:test";
import { demultiplex, MAX_FRAME_BYTES, type OutputFrame } from "../../../src/docker/demux.ts";
import { isDockerError } from "../../../src/docker/errors.ts";
import { pullErrorCode } from "../../../src/docker/pull.ts";
import { guarded } from "../../../src/docker/streams.ts";

function frame(stream: number, text: string | Uint8Array): Uint8Array {
  const data = typeof text === "string" ? new TextEncoder().encode(text) : text;
  const out = new Uint8Array(8 + data.length);
  out[0] = stream;
  new DataView(out.buffer).setUint32(4, data.length);
  out.set(data, 8);
  return out;
}

function header(stream: number, size: number): Uint8Array {
  const out = new Uint8Array(8);
  out[0] = stream;
  new DataView(out.buffer).setUint32(4, size);
  return out;
}

async function failure(p: Promise<unknown>): Promise<Error> {
  const err = await p.then(() => new Error("expected a failure"), (e: unknown) => e as Error);
  expect(isDockerError(err, "daemon-error")).toBe(true);
  return err;
}

async function* reads(bytes: Uint8Array, cuts: number[]): AsyncGenerator<Uint8Array> {
  let last = 0;
  for (const c of [...cuts, bytes.length]) {
    yield bytes.slice(last, c);
    last = c;
  }
}

async function decode(source: AsyncIterable<Uint8Array>, maxFrameBytes?: number): Promise<string[]> {
  const out: string[] = [];
  for await (const f of demultiplex(source, maxFrameBytes)) out.push(`${f.stream}:${new TextDecoder().decode(f.data)}`);
  return out;
}

describe("demultiplex", () => {
  const all = new Uint8Array([...frame(1, "hello "), ...frame(2, "warn\n"), ...frame(1, ""), ...frame(1, "wörld\n")]);
  const want = ["stdout:hello ", "stderr:warn\n", "stdout:wörld\n"];

  test("one read holding several frames", async () => expect(await decode(reads(all, []))).toEqual(want));

  test("split at every byte position", async () => {
    for (let i = 1; i < all.length; i++) expect(await decode(reads(all, [i]))).toEqual(want);
  });

  test("one byte per read", async () => {
    expect(await decode(reads(all, Array.from({ length: all.length - 1 }, (_, i) => i + 1)))).toEqual(want);
  });

  test("truncated streams, unknown stream ids and bad padding are daemon-error DockerErrors", async () => {
    expect((await failure(decode(reads(all.slice(0, all.length - 2), [])))).message).toContain("13 trailing bytes"); // header + 5 of 7
    expect((await failure(decode(reads(all.slice(0, 3), [])))).message).toContain("3 trailing bytes");
    expect((await failure(decode(reads(frame(7, "x"), [])))).message).toContain("unknown stream id 7");
    const padded = frame(1, "x");
    padded[2] = 1;
    expect((await failure(decode(reads(padded, [])))).message).toContain("non-zero padding");
  });

  test("a system-error frame (stream 3) is the daemon's error", async () => {
    const err = await failure(decode(reads(new Uint8Array([...frame(1, "ok\n"), ...frame(3, "container gone\n")]), [5])));
    expect(err.message).toBe("the daemon reported an error in the stream: container gone");
  });

  test("a frame larger than one read is assembled whole", async () => {
    const big = new Uint8Array(1_000_003).map((_, i) => (i * 7) & 0xff);
    const bytes = new Uint8Array([...frame(2, "a"), ...frame(1, big), ...frame(2, "z")]);
    const cuts = Array.from({ length: Math.floor(bytes.length / 4093) }, (_, i) => (i + 1) * 4093);
    const frames: OutputFrame[] = [];
    for await (const f of demultiplex(reads(bytes, cuts))) frames.push(f);
    expect(frames.map((f) => [f.stream, f.data.length])).toEqual([["stderr", 1], ["stdout", big.length], ["stderr", 1]]);
    expect(Buffer.from(frames[1]!.data).equals(Buffer.from(big))).toBe(true);
  });

  test("frames up to the size limit pass; one byte more is refused", async () => {
    expect(await decode(reads(frame(1, "x".repeat(64)), [3, 20]), 64)).toEqual([`stdout:${"x".repeat(64)}`]);
    const err = await failure(decode(reads(frame(1, "x".repeat(65)), [3, 20]), 64));
    expect(err.message).toContain("a frame of 65 bytes exceeds the 64-byte limit");
  });

  test("a header announcing more than 16 MiB is refused before more input is read", async () => {
    for (const size of [MAX_FRAME_BYTES + 1, 0xffffffff]) {
      let pulled = 0;
      async function* hostile(): AsyncGenerator<Uint8Array> {
        pulled++;
        yield header(1, size);
        for (;;) {
          pulled++;
          yield new Uint8Array(1 << 20); // would be buffered, 1 MiB at a time, if the size were trusted
        }
      }
      const err = await failure(decode(hostile()));
      expect(err.message).toContain(`a frame of ${size} bytes exceeds the ${MAX_FRAME_BYTES}-byte limit`);
      expect(pulled).toBe(1);
    }
  });
});

describe("guarded output streams", () => {
  async function* failing(err: unknown): AsyncGenerator<OutputFrame> {
    yield { stream: "stdout", data: new Uint8Array([1]) };
    throw err;
  }

  async function drain(frames: AsyncIterable<OutputFrame>): Promise<{ n: number; err: unknown }> {
    let n = 0;
    try {
      for await (const _ of frames) n++;
    } catch (err) {
      return { n, err };
    }
    return { n, err: undefined };
  }

  test("a socket error while reading becomes a DockerError with the error as cause", async () => {
    const reset = Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" });
    const { n, err } = await drain(guarded(failing(reset), "attach to container abc", "unix:///d.sock"));
    expect(n).toBe(1);
    expect(isDockerError(err, "daemon-unreachable")).toBe(true);
    expect((err as Error).cause).toBe(reset);
    expect((err as Error).message).toStartWith("attach to container abc: ");
  });

  test("an unclassified error is daemon-error, with cause", async () => {
    const odd = new Error("something odd");
    const { err } = await drain(guarded(failing(odd), "logs of container abc", "unix:///d.sock"));
    expect(isDockerError(err, "daemon-error")).toBe(true);
    expect((err as Error).cause).toBe(odd);
  });

  test("after an abort no buffered frame is handed out; the error is aborted, or timeout for a deadline", async () => {
    async function* many(): AsyncGenerator<OutputFrame> {
      for (let i = 0; i < 10; i++) yield { stream: "stdout", data: new Uint8Array([i]) };
    }
    for (const [reason, code] of [[undefined, "aborted"], [new DOMException("late", "TimeoutError"), "timeout"]] as const) {
      const ac = new AbortController();
      let n = 0;
      const err = await (async () => {
        for await (const _ of guarded(many(), "attach", "unix:///d.sock", ac.signal)) if (++n === 3) ac.abort(reason);
      })().then(() => undefined, (e: unknown) => e);
      expect(isDockerError(err, code)).toBe(true);
      expect(n).toBe(3);
    }
  });
});

describe("pull error classification", () => {
  test.each([
    [401, "whatever", "registry-auth-failed"],
    [403, "", "registry-auth-failed"],
    [500, 'Head "http://r/v2/a/manifests/t": no basic auth credentials', "registry-auth-failed"],
    [500, "unauthorized: authentication required", "registry-auth-failed"],
    [500, "denied: requested access to the resource is denied", "registry-auth-failed"],
    [404, "manifest for r/a:t not found: manifest unknown: manifest unknown", "pull-failed"],
    [500, "Get http://r/v2/: dial tcp 127.0.0.1:1: connect: connection refused", "pull-failed"],
    [undefined, "an image called unauthorized-tools:latest is missing", "pull-failed"],
  ] as const)("status %p, %p → %s", (status, message, code) => expect(pullErrorCode(status, message)).toBe(code));
});
