/**
 * The output streams of attach and logs, as handed to callers: whatever goes wrong while they are read
 * (a socket reset, an undici body error, the caller's abort) comes out as a DockerError with the original
 * failure as `cause`, classified by code (errorFromTransport), never as a bare socket error. After the
 * caller's abort no further frame is delivered, even one already decoded from the last read.
 */
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
