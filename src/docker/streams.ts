/**
 * The output streams of attach and logs, as handed to callers: whatever goes wrong while they are read
 * (a socket reset, an undici body error, the caller's abort) comes out as a DockerError with the original
 * failure as `cause`, classified by code (errorFromTransport), never as a bare socket error. After the
 * caller's abort no further frame is delivered, even one already decoded from the last read.
 */
import type { Duplex } from "node:stream";
import { errorFromTransport } from "./errors.ts";
import type { OutputFrame } from "./demux.ts";

export async function* guarded(
  frames: AsyncIterable<OutputFrame>,
  what: string,
  endpoint: string,
  signal?: AbortSignal,
): AsyncGenerator<OutputFrame> {
  try {
    for await (const frame of frames) {
      // Frames already read from the socket are not handed out once the caller has aborted.
      if (signal?.aborted) throw errorFromTransport(signal.reason, what, endpoint, signal);
      yield frame;
    }
  } catch (err) {
    throw errorFromTransport(err, what, endpoint, signal);
  }
}

/** A batch is handed out once it holds this much... */
const MIN_BATCH_BYTES = 64 * 1024;
/** ...or once the reader has waited this long with less (a quiet container's line is not held up longer). */
const BATCH_WAIT_MS = 5;
/** The socket is paused while this much waits for the reader (backpressure to the daemon, and memory bound). */
const MAX_BATCH_BYTES = 256 * 1024;

/**
 * A hijacked socket's bytes in batches of 64–256 KiB instead of one async-iterator step per read (a few KiB
 * each): every step costs a promise, closures and a read buffer until the next collection, which is most of
 * what a busy run's log path leaves behind (docs/performance.md). A batch is a view of one buffer reused for
 * every batch: the caller may rewrite it, and it is valid until the caller asks for the next one. The socket
 * ends the batches when it ends or is destroyed; its error is raised after the bytes that came before it. Leaving the loop early destroys the socket, as a stream's own async iterator does.
 */
export async function* batches(
  socket: Duplex,
  minBytes = MIN_BATCH_BYTES,
  maxBytes = MAX_BATCH_BYTES,
  waitMs = BATCH_WAIT_MS,
): AsyncGenerator<Uint8Array> {
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  let ended = false;
  let failure: { error: unknown } | undefined;
  let wake: (() => void) | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const ready = () => {
    clearTimeout(timer);
    timer = undefined;
    const w = wake;
    wake = undefined;
    w?.();
  };
  const onData = (chunk: Uint8Array) => {
    pending.push(chunk);
    pendingBytes += chunk.length;
    if (pendingBytes >= maxBytes) socket.pause();
    if (pendingBytes >= minBytes) ready();
    else if (wake && timer === undefined) timer = setTimeout(ready, waitMs);
  };
  const onEnd = () => {
    ended = true;
    ready();
  };
  const onError = (error: unknown) => {
    failure ??= { error };
    onEnd();
  };
  // The pending reads are copied into this one buffer when the caller asks for the next batch, which is when
  // it is done with the last one: no allocation per batch.
  const batch = new Uint8Array(maxBytes);
  const take = (): Uint8Array => {
    let size = 0;
    let used = 0;
    while (used < pending.length && size < maxBytes) {
      const read = pending[used]!;
      const n = Math.min(read.length, maxBytes - size);
      batch.set(n === read.length ? read : read.subarray(0, n), size);
      size += n;
      // A read larger than what is left of the batch: its rest opens the next batch.
      if (n < read.length) pending[used] = read.subarray(n);
      else used++;
    }
    pending = pending.slice(used);
    pendingBytes -= size;
    return batch.subarray(0, size);
  };
  socket.on("data", onData);
  socket.on("end", onEnd);
  socket.on("close", onEnd);
  socket.on("error", onError);
  socket.resume();
  try {
    for (;;) {
      if (pendingBytes < minBytes && !ended) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          if (pendingBytes > 0) timer = setTimeout(ready, waitMs);
        });
      }
      if (pendingBytes > 0) {
        // Paused while the caller works on the batch: the daemon's output gathers in the kernel's socket
        // buffer and is read in a few large reads when the caller asks again, not in many small ones.
        if (!ended) socket.pause();
        yield take();
        if (!ended && pendingBytes < maxBytes) socket.resume();
        continue;
      }
      if (failure) throw failure.error;
      if (ended) return;
    }
  } finally {
    clearTimeout(timer);
    socket.off("data", onData);
    socket.off("end", onEnd);
    socket.off("close", onEnd);
    socket.off("error", onError);
    if (!ended) socket.destroy();
  }
}
