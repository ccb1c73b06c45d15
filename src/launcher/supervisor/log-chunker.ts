/**
 * Turns a run's masked byte stream into sequenced chunks for the sink: a chunk goes out when it
 * reaches `maxBytes` or when its first byte has waited `maxDelayMs`, whichever comes first, so a busy
 * run sends few large chunks and a quiet one is still seen within a tenth of a second.
 *
 * Memory is bounded: at most `maxBytes` wait here plus one chunk in the sink's hands. `push` only
 * returns once the data is buffered below the limit, so a slow sink (its `log` promise) slows the
 * reader of the container's output, and through it the container itself (backpressure).
 * Chunks are handed to the sink one at a time, in seq order, seq counting from 0 without gaps - the
 * numbers the spool stores and the wire carries, unchanged.
 *
 * One allocation per chunk (docs/performance.md): pushed bytes are copied once, into a `maxBytes` buffer
 * that a full chunk hands to the sink as it is (the sink owns it; a new buffer is taken for the next one).
 * A small chunk (a quiet run's line, cut by the timer) goes out as a copy of just its bytes and the
 * buffer is kept, so a quiet run does not leave a mostly empty 64 KiB buffer behind per line.
 */
import type { RunSink } from "../run-executor.ts";

const MAX_CHUNK_BYTES = 64 * 1024;
const MAX_CHUNK_DELAY_MS = 100;
/** Below this share of `maxBytes` a chunk is copied out and the buffer kept. */
const SMALL_CHUNK_FRACTION = 4;

export class LogChunker {
  /** The chunk being filled (allocated on the first byte after a hand-off). */
  private buffer: Uint8Array | undefined;
  private size = 0;
  /** The seq of the next chunk. */
  private nextSeq = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** The flush in progress (flushes are serialized). */
  private flushing: Promise<void> = Promise.resolve();
  /** A sink failure seen by a timer-driven flush, rethrown to the next caller. */
  private failure: { error: unknown } | undefined;

  constructor(
    private readonly run: string,
    private readonly sink: RunSink,
    private readonly maxBytes = MAX_CHUNK_BYTES,
    private readonly maxDelayMs = MAX_CHUNK_DELAY_MS,
  ) {}

  /** The seq of the last chunk handed to the sink (-1 before the first). */
  get lastSeq(): number {
    return this.nextSeq - 1;
  }

  /** Bytes pushed but not yet handed to the sink (at most maxBytes; `flush` sends them). */
  heldBack(): number {
    return this.size;
  }

  async push(data: Uint8Array): Promise<void> {
    this.rethrow();
    for (let offset = 0; offset < data.length; ) {
      const take = Math.min(data.length - offset, this.maxBytes - this.size);
      // Copied: the caller's bytes may alias a read buffer that is reused after we return.
      this.buffer ??= new Uint8Array(this.maxBytes);
      this.buffer.set(take === data.length ? data : data.subarray(offset, offset + take), this.size);
      this.size += take;
      offset += take;
      if (this.size >= this.maxBytes) await this.flush();
    }
    if (this.size > 0 && this.timer === undefined) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.flush().catch((error: unknown) => (this.failure ??= { error }));
      }, this.maxDelayMs);
    }
  }

  /** Sends whatever is buffered and waits until the sink has taken every chunk so far. */
  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const data = this.takeChunk();
    const previous = this.flushing;
    const next = (async () => {
      await previous;
      if (data === undefined) return;
      await this.sink.log({ run: this.run, seq: this.nextSeq++, data });
    })();
    // Later flushes wait for this one but must not inherit its failure twice.
    this.flushing = next.catch(() => undefined);
    await next;
    this.rethrow();
  }

  /** The buffered bytes as a chunk the sink may keep (undefined when none); the chunker starts empty again. */
  private takeChunk(): Uint8Array | undefined {
    const { buffer, size } = this;
    this.size = 0;
    if (buffer === undefined || size === 0) return undefined;
    if (size * SMALL_CHUNK_FRACTION < this.maxBytes) return buffer.slice(0, size);
    this.buffer = undefined;
    return size === buffer.length ? buffer : buffer.subarray(0, size);
  }

  /** Stops the timer; buffered bytes are dropped (the run is being abandoned). */
  dispose(): void {
    this.buffer = undefined;
    this.size = 0;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private rethrow(): void {
    if (this.failure !== undefined) throw this.failure.error;
  }
}
