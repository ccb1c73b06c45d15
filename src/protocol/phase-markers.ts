/**
 * Phase markers: how the worker (PID 1 in the run container) tells the launcher that a phase
 * begins, in-band on the container's stdout, without a side channel the runtime may not offer.
 *
 * Wire form, written by the worker in one write(2) of < PIPE_BUF bytes (so it is never torn apart
 * by other writers of the same pipe):
 *
 *     "\n" + "\x1e" + <nonce> + " phase " + <name> + "\n"
 *
 * The leading newline belongs to the marker: it puts the record at the start of a line whatever
 * the previous command printed last, and the parser removes it again, so the output stream is
 * exactly what the commands wrote. The nonce is random per run and known only to the launcher and
 * the worker (it is in the deleted instructions file, never in the commands' environment), so a
 * command that prints something marker-shaped - by accident or from untrusted input - produces
 * plain output. The launcher must parse markers BEFORE masking secrets, on the stdout stream.
 */

/** What a nonce looks like: letters and digits only, so it needs no escaping anywhere. */
export const NONCE_PATTERN = /^[A-Za-z0-9]{16,128}$/;

const NEWLINE = 0x0a;
const PHASE_BODY = /^phase ([a-z][a-z0-9_-]{0,63})$/;
/** "phase " + the longest phase name; anything longer before a newline is not ours. */
const MAX_BODY = 6 + 64;

/** A fresh random nonce (128 bits, hex). */
export function newMarkerNonce(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function markerHead(nonce: string): Uint8Array {
  if (!NONCE_PATTERN.test(nonce)) throw new TypeError("marker nonce must be 16-128 letters and digits");
  return new TextEncoder().encode(`\n\x1e${nonce} `);
}

/** The bytes the worker writes to stdout when phase `name` begins. */
export function encodePhaseMarker(nonce: string, name: string): Uint8Array {
  const body = `phase ${name}`;
  if (!PHASE_BODY.test(body)) throw new TypeError(`not a phase name: ${JSON.stringify(name)}`);
  const head = markerHead(nonce);
  const out = new Uint8Array(head.length + body.length + 1);
  out.set(head, 0);
  out.set(new TextEncoder().encode(body), head.length);
  out[out.length - 1] = NEWLINE;
  return out;
}

export type MarkerEvent = { kind: "phase"; name: string } | { kind: "output"; data: Uint8Array };

export interface MarkerParserOptions {
  /**
   * Return a lone held-back line break at once instead of keeping it until the next read. A command
   * that prints a line and then works quietly would otherwise have that line break wait - for minutes,
   * and behind the other stream's output. If a marker follows, the returned line break stands for the
   * marker's own leading newline (a line break either way); if output follows, it is not returned
   * twice. The output then differs from what the commands wrote only when a read ended right after a
   * marker's leading newline: it keeps that newline. Longer held-back bytes (the line break and the
   * start of the marker head) are never returned early: they could be part of the nonce.
   */
  releaseLineBreak?: boolean;
}

/**
 * Splits a byte stream into output and phase events, for any split of the stream into reads.
 * It holds back at most one incomplete marker (< 100 bytes + nonce, `maxHeldBack`) between reads;
 * `end()` returns whatever was held back as output. Output slices may alias the written chunks;
 * they are not copied. Shaped as a log stage (src/launcher/log-stage.ts) whose output is events.
 */
export class PhaseMarkerParser {
  readonly maxHeldBack: number;
  private readonly head: Uint8Array;
  private readonly maxMarker: number;
  private readonly releaseLineBreak: boolean;
  private pending: Uint8Array = new Uint8Array(0);
  /** `pending` begins with a line break that was already returned as output. */
  private released = false;

  constructor(nonce: string, options: MarkerParserOptions = {}) {
    this.head = markerHead(nonce);
    this.maxMarker = this.head.length + MAX_BODY + 1;
    this.maxHeldBack = this.maxMarker - 1;
    this.releaseLineBreak = options.releaseLineBreak ?? false;
  }

  write(chunk: Uint8Array): MarkerEvent[] {
    if (chunk.length === 0) return [];
    const buf = this.pending.length === 0 ? chunk : concat(this.pending, chunk);
    const events: MarkerEvent[] = [];
    let emitted = this.released ? 1 : 0;
    let from = 0;
    for (;;) {
      const at = indexOf(buf, this.head, from);
      if (at === -1) {
        this.hold(events, buf, emitted, this.partialHeadAt(buf, Math.max(from, buf.length - this.head.length + 1)));
        return events;
      }
      const bodyStart = at + this.head.length;
      const newline = buf.indexOf(NEWLINE, bodyStart);
      if (newline === -1 && buf.length - at < this.maxMarker) {
        // A marker cut by the read boundary: keep it for the next read.
        this.hold(events, buf, emitted, at);
        return events;
      }
      const name = newline === -1 || newline - bodyStart > MAX_BODY ? null : phaseName(buf.subarray(bodyStart, newline));
      if (name === null) {
        // The head with a body that is not ours (cannot happen with our worker): plain output.
        from = at + 1;
        continue;
      }
      // A released line break at `at` was this marker's own: nothing more to return for it.
      pushOutput(events, buf.subarray(emitted, at));
      events.push({ kind: "phase", name });
      emitted = from = newline + 1;
    }
  }

  /** The stream ended: anything held back was output after all. */
  end(): MarkerEvent[] {
    const rest = this.pending.subarray(this.released ? 1 : 0);
    this.pending = new Uint8Array(0);
    this.released = false;
    return rest.length > 0 ? [{ kind: "output", data: rest }] : [];
  }

  heldBack(): number {
    return this.pending.length - (this.released ? 1 : 0);
  }

  /** Returns buf[emitted, hold) as output and keeps buf[hold, ...) for the next read. */
  private hold(events: MarkerEvent[], buf: Uint8Array, emitted: number, hold: number): void {
    pushOutput(events, buf.subarray(emitted, Math.max(emitted, hold)));
    this.pending = buf.slice(hold);
    // Only a released line break can lie before `emitted` and still be kept.
    this.released = emitted > hold;
    if (this.releaseLineBreak && !this.released && this.pending.length === 1 && this.pending[0] === NEWLINE) {
      pushOutput(events, this.pending);
      this.released = true;
    }
  }

  /**
   * The first position >= `start` where the rest of `buf` is a proper prefix of the head (only a
   * newline can start one), or buf.length when there is none.
   */
  private partialHeadAt(buf: Uint8Array, start: number): number {
    for (let i = buf.indexOf(NEWLINE, start); i !== -1; i = buf.indexOf(NEWLINE, i + 1)) {
      if (isPrefixOf(buf.subarray(i), this.head)) return i;
    }
    return buf.length;
  }
}

function phaseName(body: Uint8Array): string | null {
  const match = PHASE_BODY.exec(new TextDecoder().decode(body));
  return match?.[1] ?? null;
}

function pushOutput(events: MarkerEvent[], data: Uint8Array): void {
  if (data.length > 0) events.push({ kind: "output", data });
}

function isPrefixOf(part: Uint8Array, whole: Uint8Array): boolean {
  if (part.length >= whole.length) return false;
  for (let i = 0; i < part.length; i++) if (part[i] !== whole[i]) return false;
  return true;
}

function indexOf(haystack: Uint8Array, needle: Uint8Array, from: number): number {
  return Buffer.from(haystack.buffer, haystack.byteOffset, haystack.byteLength).indexOf(needle, from);
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
