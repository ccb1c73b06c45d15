/**
 * Streaming secret masking for run logs. Works on bytes end to end: every secret is compared as its
 * UTF-8 byte sequence, the stream may be cut anywhere (inside a secret, inside a multibyte character),
 * and every length below is a byte count - a one-character secret such as "€" is three bytes, and its
 * first byte alone is already held back.
 *
 * Semantics (and the reference the tests compare against): find every occurrence of every secret
 * in the whole stream, at every start position; occurrences that overlap form one group; each
 * group is replaced by one `*****`. So no byte of any occurrence ever leaves, even when two
 * secrets overlap ("abc" + "cde" in "abcde" -> "*****"), and the result does not depend on how
 * the stream was split into reads.
 *
 * Streaming: a byte can only be part of a not-yet-complete occurrence if it lies in the last
 * (longest secret - 1) bytes seen, so at most that tail is held back between reads; everything
 * before it is final. The tail is released at once when no suffix of it is the beginning of any
 * secret - then nothing seen can be part of a future occurrence - so a stream's last line does not
 * wait for the stream's next output. Searching uses Buffer#indexOf per secret over the (tail + new
 * chunk) window: native code, no per-byte JavaScript loop. Returned bytes may alias the chunk passed
 * in; the held-back tail is always copied, so callers may reuse their read buffers once they
 * consumed the output. After `end()` the masker is as new and may be used again.
 */
import type { LogStage } from "./log-stage.ts";

export const MASK = "*****";
const MASK_BYTES = new TextEncoder().encode(MASK);

export class LogMasker implements LogStage {
  /** The secrets as UTF-8 bytes, longest first. */
  private readonly secrets: Buffer[];
  readonly maxHeldBack: number;
  /** Bytes seen but not yet decided (at most maxHeldBack of them). */
  private tail: Buffer = Buffer.alloc(0);
  /** How many leading bytes of `tail` belong to a group whose mask was already emitted. */
  private maskedPrefix = 0;
  private readonly starts: number[] = [];
  private readonly ends: number[] = [];

  /** Empty strings are ignored; duplicates are harmless. */
  constructor(secrets: Iterable<string>) {
    const unique = [...new Set(secrets)].filter((s) => s !== "");
    this.secrets = unique.map((s) => Buffer.from(s, "utf8")).sort((a, b) => b.length - a.length);
    this.maxHeldBack = Math.max(0, (this.secrets[0]?.length ?? 0) - 1);
  }

  /** Masks the next read; returns the bytes that are now final (possibly none). */
  write(chunk: Uint8Array): Uint8Array[] {
    if (chunk.length === 0) return [];
    if (this.secrets.length === 0) return [chunk];
    const window = this.tail.length === 0 ? toBuffer(chunk) : Buffer.concat([this.tail, chunk]);
    const out = this.process(window, Math.max(0, window.length - this.maxHeldBack));
    if (this.tail.length === 0 || this.mayContinue()) return nonEmpty(out);
    return nonEmpty(out, this.process(this.tail, this.tail.length));
  }

  /** The stream ended: masks and returns what was held back. */
  end(): Uint8Array[] {
    if (this.tail.length === 0) return [];
    return nonEmpty(this.process(this.tail, this.tail.length));
  }

  heldBack(): number {
    return this.tail.length;
  }

  /**
   * Emits window[0, cut) masked; keeps window[cut, ...) as the new tail. Occurrences that start
   * before `cut` are complete (they are at most maxHeldBack + 1 long); those starting at or after it
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

  /** True when some suffix of the tail is a proper prefix of some secret (compared as bytes). */
  private mayContinue(): boolean {
    const tail = this.tail;
    for (const secret of this.secrets) {
      const first = secret[0]!;
      const from = Math.max(0, tail.length - secret.length + 1);
      for (let at = tail.indexOf(first, from); at !== -1; at = tail.indexOf(first, at + 1)) {
        if (tail.subarray(at).equals(secret.subarray(0, tail.length - at))) return true;
      }
    }
    return false;
  }
}

/** The masker as a web TransformStream of bytes (bounded: it holds back at most longest secret - 1 bytes). @testSeam */
export function maskingStream(secrets: Iterable<string>): TransformStream<Uint8Array, Uint8Array> {
  const masker = new LogMasker(secrets);
  return new TransformStream({
    transform(chunk, controller) {
      for (const out of masker.write(chunk)) controller.enqueue(out);
    },
    flush(controller) {
      for (const out of masker.end()) controller.enqueue(out);
    },
  });
}

function nonEmpty(...parts: Uint8Array[]): Uint8Array[] {
  return parts.filter((part) => part.length > 0);
}

function toBuffer(chunk: Uint8Array): Buffer {
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}
