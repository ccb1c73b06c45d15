/**
 * Docker's multiplexed stream format (non-TTY attach and logs): frames of an 8-byte header
 * `[stream, 0, 0, 0, size(u32 BE)]` followed by `size` bytes. A frame may span reads; a read may hold
 * many frames. Memory is bounded by the largest frame Docker emits (it splits output into ≤ 32 KiB frames),
 * and backpressure passes through: nothing is read from the source until the consumer asks for more.
 */
export type StreamName = "stdin" | "stdout" | "stderr";

export interface OutputFrame {
  stream: StreamName;
  data: Uint8Array;
}

const NAMES: Record<number, StreamName> = { 0: "stdin", 1: "stdout", 2: "stderr" };

export async function* demultiplex(source: AsyncIterable<Uint8Array>): AsyncGenerator<OutputFrame> {
  let pending: Uint8Array = new Uint8Array(0);
  for await (const chunk of source) {
    let buf = pending.length ? concat(pending, chunk) : chunk;
    let offset = 0;
    while (buf.length - offset >= 8) {
      const size = ((buf[offset + 4]! << 24) >>> 0) + (buf[offset + 5]! << 16) + (buf[offset + 6]! << 8) + buf[offset + 7]!;
      if (buf.length - offset - 8 < size) break;
      const stream = NAMES[buf[offset]!];
      if (stream === undefined) throw new Error(`malformed Docker stream: unknown stream id ${buf[offset]}`);
      if (size > 0) yield { stream, data: buf.subarray(offset + 8, offset + 8 + size) };
      offset += 8 + size;
    }
    pending = offset === buf.length ? new Uint8Array(0) : buf.slice(offset);
    buf = pending;
  }
  if (pending.length > 0) throw new Error(`malformed Docker stream: ${pending.length} trailing bytes`);
}

/** A TTY container's raw stream: everything is stdout. */
export async function* raw(source: AsyncIterable<Uint8Array>): AsyncGenerator<OutputFrame> {
  for await (const chunk of source) if (chunk.length) yield { stream: "stdout", data: chunk };
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
