/**
 * The log masker (src/launcher/log-masker.ts) for one output stream, releasing its held-back tail
 * as soon as that is safe. The masker always keeps the last (longest secret - 1) bytes, because a
 * secret could continue in the next read; but when no suffix of the stream so far is the beginning
 * of any secret, nothing seen can be part of a future occurrence, and the tail is final. Releasing it
 * then keeps a stream's last line from waiting for that stream's next output — which would put it
 * after later output of the other stream, or after the phase ends.
 *
 * The masker is reused after `end()`: ending leaves it with no tail and no open mask group, which is
 * exactly a fresh masker's state (the unit tests compare the result against one-shot masking).
 */
import { LogMasker } from "../log-masker.ts";

export class StreamMasker {
  private readonly masker: LogMasker;
  private readonly secrets: Buffer[];
  private readonly keep: number;
  /** The last `keep` input bytes since the masker was last ended. */
  private tail: Buffer = Buffer.alloc(0);

  constructor(secrets: readonly string[]) {
    this.masker = new LogMasker(secrets);
    this.secrets = [...new Set(secrets)].filter((s) => s.length > 1).map((s) => Buffer.from(s, "utf8"));
    this.keep = Math.max(0, ...this.secrets.map((s) => s.length - 1));
  }

  /** Masks the next read; returns the bytes that are final now (possibly none). */
  write(chunk: Uint8Array): Uint8Array[] {
    const out = this.masker.write(chunk);
    this.remember(chunk);
    if (this.mayContinue()) return out.length > 0 ? [out] : [];
    this.tail = Buffer.alloc(0);
    return [out, this.masker.end()].filter((part) => part.length > 0);
  }

  /** The stream ended (or a phase did): masks and returns what was held back. */
  end(): Uint8Array[] {
    this.tail = Buffer.alloc(0);
    const rest = this.masker.end();
    return rest.length > 0 ? [rest] : [];
  }

  private remember(chunk: Uint8Array): void {
    if (this.keep === 0) return;
    const bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (bytes.length >= this.keep) this.tail = Buffer.from(bytes.subarray(bytes.length - this.keep));
    else {
      const joined = Buffer.concat([this.tail, bytes]);
      this.tail = joined.length > this.keep ? joined.subarray(joined.length - this.keep) : joined;
    }
  }

  /** True when some suffix of the tail is a proper prefix of some secret. */
  private mayContinue(): boolean {
    const tail = this.tail;
    for (const secret of this.secrets) {
      const first = secret[0]!;
      for (let at = tail.indexOf(first, Math.max(0, tail.length - secret.length + 1)); at !== -1; at = tail.indexOf(first, at + 1)) {
        if (tail.subarray(at).equals(secret.subarray(0, tail.length - at))) return true;
      }
    }
    return false;
  }
}
