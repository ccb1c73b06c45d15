// The attach path's reader: a real socket's bytes in 64–256 KiB batches (not one step per read), the
// socket paused while a batch waits, a quiet line not held up, an error after the bytes before it; and
// merged demultiplexing, which must hand out exactly the bytes of each stream, in order, across any reads.
import { afterEach, describe, expect, test } from "bun:test";
import { createServer, type Server, type Socket, connect } from "node:net";
import { demultiplex } from "../../../src/docker/demux.ts";
import { batches } from "../../../src/docker/streams.ts";

function frame(stream: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + data.length);
  out[0] = stream;
  new DataView(out.buffer).setUint32(4, data.length);
  out.set(data, 8);
  return out;
}

let server: Server | undefined;
afterEach(() => server?.close());

/** A connected pair over loopback TCP: the server's end writes, `client` is what `batches` reads. */
async function pair(): Promise<{ writer: Socket; client: Socket }> {
  const accepted = new Promise<Socket>((resolve) => (server = createServer(resolve)));
  await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
  const { port } = server!.address() as { port: number };
  const client = connect(port, "127.0.0.1");
  await new Promise((resolve) => client.once("connect", resolve));
  return { writer: await accepted, client };
}

describe("batches", () => {
  test("many small writes arrive as few batches of at least 64 KiB, every byte in order", async () => {
    const { writer, client } = await pair();
    const total = 4 << 20;
    const sent = new Uint8Array(total).map((_, i) => (i * 31) & 0xff);
    void (async () => {
      for (let at = 0; at < total; at += 3000) {
        if (!writer.write(sent.subarray(at, Math.min(total, at + 3000)))) await new Promise((r) => writer.once("drain", r));
      }
      writer.end();
    })();
    const got: Uint8Array[] = [];
    for await (const b of batches(client)) got.push(Uint8Array.from(b)); // a batch is valid until the next is asked for
    expect(Buffer.concat(got).equals(Buffer.from(sent))).toBe(true);
    // All but the last are full batches: at most one per 64 KiB, far fewer than the ~1,400 writes.
    expect(got.length).toBeLessThanOrEqual(total / (64 << 10) + 1);
    for (const b of got.slice(0, -1)) expect(b.length).toBeGreaterThanOrEqual(64 << 10);
  });

  test("a quiet line comes out within milliseconds, not when 64 KiB have gathered", async () => {
    const { writer, client } = await pair();
    const it = batches(client)[Symbol.asyncIterator]();
    const t = performance.now();
    writer.write("one line\n");
    const first = await it.next();
    expect(new TextDecoder().decode(first.value as Uint8Array)).toBe("one line\n");
    expect(performance.now() - t).toBeLessThan(500);
    writer.end();
    expect((await it.next()).done).toBe(true);
  });

  test("a slow reader pauses the socket: the writer is held back, batches of at most 256 KiB, nothing lost", async () => {
    const { writer, client } = await pair();
    const it = batches(client)[Symbol.asyncIterator]();
    const first = it.next(); // starts reading
    const block = new Uint8Array(64 << 10).fill(1);
    const blocks = 1024; // 64 MiB: far more than the kernel's socket buffers hold
    let written = 0;
    const writing = (async () => {
      for (let i = 0; i < blocks; i++) {
        written += block.length;
        if (!writer.write(block)) await new Promise((r) => writer.once("drain", r));
      }
      writer.end();
    })();
    // The reader takes its first batch, then does not ask for 300 ms: unpaused, all 64 MiB would be read.
    let read = (await first).value!.length;
    await Bun.sleep(300);
    expect(written).toBeLessThan(32 << 20);
    for (let r = await it.next(); !r.done; r = await it.next()) {
      expect(r.value.length).toBeLessThanOrEqual(256 << 10);
      read += r.value.length;
    }
    await writing;
    expect(read).toBe(blocks * block.length);
  });

  test("a socket destroyed with an error raises it after the bytes before it; leaving early destroys the socket", async () => {
    const { writer, client } = await pair();
    const it = batches(client)[Symbol.asyncIterator]();
    writer.write("before\n");
    expect(new TextDecoder().decode((await it.next()).value as Uint8Array)).toBe("before\n");
    const boom = new Error("connection reset");
    client.destroy(boom);
    expect(await it.next().then(() => undefined, (e: unknown) => e)).toBe(boom);

    const second = await pair();
    const early = batches(second.client);
    second.writer.write("x");
    for await (const _ of early) break;
    expect(second.client.destroyed).toBe(true);
  });
});

describe("demultiplex with merge", () => {
  test("each stream's bytes exactly and in order, whatever the reads; system errors still raised", async () => {
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    for (let round = 0; round < 200; round++) {
      const frames: Array<{ stream: 1 | 2; data: Uint8Array }> = [];
      for (let i = 0, n = 1 + Math.floor(rand() * 40); i < n; i++) {
        const stream = rand() < 0.7 ? 1 : 2;
        frames.push({ stream, data: new Uint8Array(Math.floor(rand() * (rand() < 0.1 ? 70_000 : 300))).map(() => Math.floor(rand() * 256)) });
      }
      const bytes = Buffer.concat(frames.map((f) => frame(f.stream, f.data)));
      async function* reads(): AsyncGenerator<Uint8Array> {
        for (let at = 0; at < bytes.length; ) {
          const n = 1 + Math.floor(rand() * (rand() < 0.3 ? 16 : 100_000));
          yield Uint8Array.from(bytes.subarray(at, at + n)); // a fresh buffer per read, as batches() gives
          at += n;
        }
      }
      const out: Array<{ stream: string; data: Uint8Array }> = [];
      for await (const f of demultiplex(reads(), undefined, { merge: true })) out.push({ stream: f.stream, data: Uint8Array.from(f.data) });
      // Consecutive frames of one stream may be merged: compare the runs of each stream, in order.
      const runs = (list: Array<{ stream: string; data: Uint8Array }>) => {
        const merged: Array<{ stream: string; data: Buffer }> = [];
        for (const f of list) {
          if (f.data.length === 0) continue;
          const last = merged.at(-1);
          if (last?.stream === f.stream) last.data = Buffer.concat([last.data, f.data]);
          else merged.push({ stream: f.stream, data: Buffer.from(f.data) });
        }
        return merged;
      };
      const want = runs(frames.map((f) => ({ stream: f.stream === 1 ? "stdout" : "stderr", data: f.data })));
      expect(runs(out)).toEqual(want);
      expect(out.length).toBeLessThanOrEqual(frames.length);
    }
  });

  test("a read of many stdout frames is one frame; a system-error frame after them still fails the stream", async () => {
    const lines = Array.from({ length: 50 }, (_, i) => frame(1, new TextEncoder().encode(`line ${i}\n`)));
    async function* one(): AsyncGenerator<Uint8Array> {
      yield Buffer.concat([...lines, frame(3, new TextEncoder().encode("container gone\n"))]);
    }
    const out: string[] = [];
    const err = await (async () => {
      for await (const f of demultiplex(one(), undefined, { merge: true })) out.push(new TextDecoder().decode(f.data));
    })().then(() => undefined, (e: unknown) => e as Error);
    expect(out).toEqual([Array.from({ length: 50 }, (_, i) => `line ${i}\n`).join("")]);
    expect(err?.message).toBe("the daemon reported an error in the stream: container gone");
  });
});
