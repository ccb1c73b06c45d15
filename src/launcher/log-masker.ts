/**
 * Streaming secret masking for run logs (DESIGN §7.6). Works on raw bytes, so secrets may contain
 * any UTF-8 (or binary) content, including newlines, and the stream may be cut anywhere - in the
 * middle of a secret or of a multibyte character.
 *
 * Semantics (and the reference the tests compare against): find every occurrence of every secret
 * in the whole stream, at every start position; occurrences that overlap form one group; each
 * group is replaced by one `*****`. So no byte of any occurrence ever leaves, even when two
 * secrets overlap ("abc" + "cde" in "abcde" -> "*****"), and the result does not depend on how
 * the stream was split into reads.
 *
 * Streaming: a byte can only be part of a not-yet-complete occurrence if it lies in the last
 * (longest secret - 1) bytes seen, so exactly that tail is held back between reads; everything
 * before it is final. Searching uses Buffer#indexOf per secret over the (tail + new chunk)
 * window - native code, no per-byte JavaScript loop. Returned bytes may alias the chunk passed in;
 * the held-back tail is always copied, so callers may reuse their read buffers once they consumed
 * the output.
 */

export const MASK = "*****";
const MASK_BYTES = new TextEncoder().encode(MASK);

export class LogMasker {
  private readonly secrets: Buffer[];
  private readonly holdBack: number;
  /** Bytes seen but not yet decided (at most holdBack of them). */
  private tail: Buffer = Buffer.alloc(0);
  /** How many leading bytes of `tail` belong to a group whose mask was already emitted. */
  private maskedPrefix = 0;
  private readonly starts: number[] = [];
  private readonly ends: number[] = [];

  /** Empty strings are ignored; duplicates are harmless. */
  constructor(secrets: Iterable<string>) {
    const unique = [...new Set(secrets)].filter((s) => s.length > 0);
    this.secrets = unique.map((s) => Buffer.from(s, "utf8")).sort((a, b) => b.length - a.length);
    this.holdBack = Math.max(0, (this.secrets[0]?.length ?? 0) - 1);
  }

  /** Masks the next read; returns the bytes that are now final (possibly empty). */
  write(chunk: Uint8Array): Uint8Array {
    if (chunk.length === 0) return chunk;
    if (this.secrets.length === 0) return chunk;
    const window = this.tail.length === 0 ? toBuffer(chunk) : Buffer.concat([this.tail, chunk]);
    return this.process(window, Math.max(0, window.length - this.holdBack));
  }

  /** The stream ended: masks and returns what was held back. */
  end(): Uint8Array {
    if (this.tail.length === 0) return new Uint8Array(0);
    return this.process(this.tail, this.tail.length);
  }

  /**
   * Emits window[0, cut) masked; keeps window[cut, ...) as the new tail. Occurrences that start
   * before `cut` are complete (they are at most holdBack + 1 long); those starting at or after it
   * are found again in the next window.
   */
  private process(window: Buffer, cut: number): Uint8Array {
    this.collect(window, cut);
    const { starts, ends } = this;
    const pieces: Uint8Array[] = [];
    let groupEnd = this.maskedPrefix;
    let next = this.maskedPrefix;
    for (let i = 0; i < starts.length; i++) {
      const start = starts[i] as number;
      const end = ends[i] as number;
      if (start < groupEnd) {
        // Overlaps the current group: it only grows; its mask is already out.
        if (end > groupEnd) groupEnd = next = end;
        continue;
      }
      if (start > next) pieces.push(window.subarray(next, start));
      pieces.push(MASK_BYTES);
      groupEnd = next = end;
    }
    if (next < cut) pieces.push(window.subarray(next, cut));
    this.maskedPrefix = Math.max(0, groupEnd - cut);
    // Copy the tail: the window may be the caller's buffer, which it may reuse after we return.
    this.tail = Buffer.from(window.subarray(cut));
    if (pieces.length === 1) return pieces[0] as Uint8Array;
    return Buffer.concat(pieces);
  }

  /** All occurrences starting before `cut`, sorted by start (then end). */
  private collect(window: Buffer, cut: number): void {
    const { starts, ends } = this;
    starts.length = 0;
    ends.length = 0;
    let sorted = true;
    for (const secret of this.secrets) {
      const before = starts.length;
      for (let at = window.indexOf(secret); at !== -1 && at < cut; at = window.indexOf(secret, at + 1)) {
        starts.push(at);
        ends.push(at + secret.length);
      }
      if (before > 0 && starts.length > before) sorted = false;
    }
    if (sorted) return;
    const order = starts.map((_, i) => i).sort((a, b) => starts[a]! - starts[b]! || ends[a]! - ends[b]!);
    const s = order.map((i) => starts[i]!);
    const e = order.map((i) => ends[i]!);
    for (let i = 0; i < order.length; i++) {
      starts[i] = s[i]!;
      ends[i] = e[i]!;
    }
  }
}

/** The masker as a web TransformStream of bytes (bounded: it holds back at most longest secret - 1 bytes). */
export function maskingStream(secrets: Iterable<string>): TransformStream<Uint8Array, Uint8Array> {
  const masker = new LogMasker(secrets);
  return new TransformStream({
    transform(chunk, controller) {
      const out = masker.write(chunk);
      if (out.length > 0) controller.enqueue(out);
    },
    flush(controller) {
      const out = masker.end();
      if (out.length > 0) controller.enqueue(out);
    },
  });
}

function toBuffer(chunk: Uint8Array): Buffer {
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}
