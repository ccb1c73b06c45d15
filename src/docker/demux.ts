/**
 * Docker's multiplexed stream format (non-TTY attach and logs): frames of an 8-byte header
 * `[stream, 0, 0, 0, size(u32 BE)]` followed by `size` bytes. A frame may span reads; a read may hold
 * many frames. Docker splits output into small frames (≤ 32 KiB for attach), so a header announcing more than
 * `maxFrameBytes` (16 MiB by default) means the stream is not what we think it is (a TTY stream read as
 * multiplexed, a corrupted connection): it is refused before anything is allocated, so a bad header can never
 * grow memory. Backpressure passes through: nothing is read from the source until the consumer asks for more.
 * Stream id 3 is Docker's "system error" frame: the daemon's own error, raised as a DockerError.
 */
import { DockerError } from "./errors.ts";

export type StreamName = "stdin" | "stdout" | "stderr";

export interface OutputFrame {
  stream: StreamName;
  data: Uint8Array;
}

/** @testSeam */
export const MAX_FRAME_BYTES = 16 * 1024 * 1024;

const NAMES: Record<number, StreamName> = { 0: "stdin", 1: "stdout", 2: "stderr" };
const SYSTEM_ERROR = 3;

interface Header {
  stream: number;
  size: number;
}

function parseHeader(b: Uint8Array, at: number, maxFrameBytes: number): Header {
  const stream = b[at]!;
  if (NAMES[stream] === undefined && stream !== SYSTEM_ERROR) malformed(`unknown stream id ${stream}`);
  if (b[at + 1] !== 0 || b[at + 2] !== 0 || b[at + 3] !== 0) malformed("non-zero padding in a frame header");
  const size = ((b[at + 4]! << 24) >>> 0) + (b[at + 5]! << 16) + (b[at + 6]! << 8) + b[at + 7]!;
  if (size > maxFrameBytes) malformed(`a frame of ${size} bytes exceeds the ${maxFrameBytes}-byte limit`);
  return { stream, size };
}

function malformed(detail: string): never {
  throw new DockerError("daemon-error", `malformed Docker stream: ${detail}`);
}

function frameOf(h: Header, data: Uint8Array): OutputFrame {
  const stream = NAMES[h.stream];
  if (stream === undefined) throw new DockerError("daemon-error", `the daemon reported an error in the stream: ${new TextDecoder().decode(data).trim()}`);
  return { stream, data };
}

export interface DemuxOptions {
  /**
   * Hand out the consecutive whole frames of one stream found in one read as one frame, their bodies moved
   * together over the headers in place: the attach path reads in batches of 64–256 KiB (streams.ts), and a
   * frame per ~3 KiB write would cost a promise and a closure per frame downstream (docs/performance.md).
   * Only for a source whose reads are the demultiplexer's to rewrite and are not reused.
   */
  merge?: boolean;
}

export async function* demultiplex(
  source: AsyncIterable<Uint8Array>,
  maxFrameBytes = MAX_FRAME_BYTES,
  { merge = false }: DemuxOptions = {},
): AsyncGenerator<OutputFrame> {
  const header = new Uint8Array(8);
  let headerBytes = 0; // bytes of a header split across reads
  let current: Header | undefined; // a frame whose body spans reads...
  let body = new Uint8Array(0); // ...filled here (allocated once, at its announced size)
  let bodyBytes = 0;
  for await (const chunk of source) {
    let at = 0;
    // merge: whole frames of `run` already moved together into chunk[runStart, runEnd), not yet handed out.
    let run: Header | undefined;
    let runStart = 0;
    let runEnd = 0;
    while (at < chunk.length) {
      if (current) {
        const n = Math.min(current.size - bodyBytes, chunk.length - at);
        body.set(chunk.subarray(at, at + n), bodyBytes);
        bodyBytes += n;
        at += n;
        if (bodyBytes === current.size) {
          const h = current;
          current = undefined;
          yield frameOf(h, body);
        }
        continue;
      }
      let h: Header;
      if (headerBytes === 0 && chunk.length - at >= 8) {
        h = parseHeader(chunk, at, maxFrameBytes);
        at += 8;
        if (chunk.length - at >= h.size) {
          if (h.size > 0 && merge && h.stream !== SYSTEM_ERROR) {
            if (run?.stream === h.stream) {
              chunk.copyWithin(runEnd, at, at + h.size);
              runEnd += h.size;
            } else {
              if (run) yield frameOf(run, chunk.subarray(runStart, runEnd));
              run = h;
              runStart = at;
              runEnd = at + h.size;
            }
          } else if (h.size > 0) {
            if (run) yield frameOf(run, chunk.subarray(runStart, runEnd));
            run = undefined;
            // The common case: the whole frame is in this read; hand out a view, no copy.
            yield frameOf(h, chunk.subarray(at, at + h.size));
          }
          at += h.size;
          continue;
        }
      } else {
        const n = Math.min(8 - headerBytes, chunk.length - at);
        header.set(chunk.subarray(at, at + n), headerBytes);
        headerBytes += n;
        at += n;
        if (headerBytes < 8) continue;
        headerBytes = 0;
        h = parseHeader(header, 0, maxFrameBytes);
        if (h.size === 0) continue;
      }
      current = h;
      body = new Uint8Array(h.size);
      bodyBytes = 0;
    }
    // Whatever this read completed goes out before the next read is asked for (a frame begun here follows it).
    if (run) yield frameOf(run, chunk.subarray(runStart, runEnd));
  }
  if (headerBytes > 0 || current) malformed(`${current ? 8 + bodyBytes : headerBytes} trailing bytes`);
}

/** A TTY container's raw stream: everything is stdout. */
export async function* raw(source: AsyncIterable<Uint8Array>): AsyncGenerator<OutputFrame> {
  for await (const chunk of source) if (chunk.length) yield { stream: "stdout", data: chunk };
}
