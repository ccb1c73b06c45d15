// Docker's multiplexed stream framing: frames split across reads at every position, many frames per read,
// empty frames, and malformed input.
import { describe, expect, test } from "bun:test";
import { demultiplex } from "../../../src/docker/demux.ts";
import { pullErrorCode } from "../../../src/docker/pull.ts";

function frame(stream: number, text: string): Uint8Array {
  const data = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + data.length);
  out[0] = stream;
  new DataView(out.buffer).setUint32(4, data.length);
  out.set(data, 8);
  return out;
}

async function* reads(bytes: Uint8Array, cuts: number[]): AsyncGenerator<Uint8Array> {
  let last = 0;
  for (const c of [...cuts, bytes.length]) {
    yield bytes.slice(last, c);
    last = c;
  }
}

async function decode(source: AsyncIterable<Uint8Array>): Promise<string[]> {
  const out: string[] = [];
  for await (const f of demultiplex(source)) out.push(`${f.stream}:${new TextDecoder().decode(f.data)}`);
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

  test("truncated stream and unknown stream ids are errors", async () => {
    expect(decode(reads(all.slice(0, all.length - 2), []))).rejects.toThrow("trailing bytes");
    expect(decode(reads(frame(7, "x"), []))).rejects.toThrow("unknown stream id 7");
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
