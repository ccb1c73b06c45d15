/**
 * A run's log path (DESIGN §7.6): container output frames and the launcher's own notes in, masked and
 * sequenced chunks and phase changes out.
 *
 *   stdout frames -> PhaseMarkerParser -> StreamMasker(stdout) -+
 *   stderr frames ---------------------> StreamMasker(stderr) -+-> LogChunker -> sink.log
 *   launcher notes -------------------> LogMasker(once) -------+         \-> stdout mirror (JSON lines)
 *
 * Markers are parsed BEFORE masking (a secret could otherwise hide one) and only on stdout, where the
 * worker writes them. Each stream has its own masker (stream-masker.ts), so a secret written in two pieces is masked
 * even when the other stream's output arrives in between. At a phase marker both maskers are flushed
 * and every chunk of the old phase reaches the sink before the phase change does, so the sink sees
 * each byte in the phase that printed it.
 *
 * Operations are serialized (notes come from timers while output is being read), and each one
 * returns only when its data is buffered within the chunker's bound: backpressure to the reader.
 */
import type { OutputFrame } from "../../docker/demux.ts";
import { type MarkerEvent, PhaseMarkerParser, encodePhaseMarker } from "../../protocol/phase-markers.ts";
import { LogMasker } from "../log-masker.ts";
import type { RunSink } from "../run-executor.ts";
import { LogChunker } from "./log-chunker.ts";
import { StreamMasker } from "./stream-masker.ts";

const NEWLINE = 0x0a;
const NEWLINE_BYTES = new Uint8Array([NEWLINE]);
/** Longest line mirrored to stdout in one JSON record; longer ones are split. */
const MAX_MIRROR_LINE = 16 * 1024;

export interface LogPipelineOptions {
  run: string;
  stackId: string;
  sink: RunSink;
  nonce: string;
  secrets: readonly string[];
  /** Writes one line to the launcher's stdout (SPACELIFT_RUN_LOGS_ON_STANDARD_OUTPUT_ENABLED); off when absent. */
  mirror?: ((line: string) => void) | undefined;
  maxChunkBytes?: number;
  maxChunkDelayMs?: number;
  now?: () => Date;
}

export class LogPipeline {
  private readonly parser: PhaseMarkerParser;
  private readonly maskers: { stdout: StreamMasker; stderr: StreamMasker };
  private readonly chunker: LogChunker;
  private readonly mirror: LineMirror | undefined;
  private queue: Promise<void> = Promise.resolve();
  /** stdout bytes given to the parser, and bytes it has returned as output or markers. */
  private stdoutIn = 0;
  private stdoutOut = 0;
  private lastStdoutByte = -1;
  private newlineReleased = false;

  constructor(private readonly options: LogPipelineOptions) {
    this.parser = new PhaseMarkerParser(options.nonce);
    this.maskers = { stdout: new StreamMasker(options.secrets), stderr: new StreamMasker(options.secrets) };
    this.chunker = new LogChunker(options.run, options.sink, options.maxChunkBytes, options.maxChunkDelayMs);
    this.mirror = options.mirror
      ? new LineMirror(options.mirror, { run_ulid: options.run, stack_id: options.stackId }, options.now ?? (() => new Date()))
      : undefined;
  }

  get lastSeq(): number {
    return this.chunker.lastSeq;
  }

  /** One frame of the container's output. */
  output(frame: OutputFrame): Promise<void> {
    return this.serial(async () => {
      if (frame.stream === "stderr") {
        await this.releaseHeldNewline();
        await this.emit(this.maskers.stderr.write(frame.data));
        return;
      }
      if (frame.stream !== "stdout") return;
      this.stdoutIn += frame.data.length;
      this.lastStdoutByte = frame.data[frame.data.length - 1] ?? this.lastStdoutByte;
      await this.parsed(this.parser.push(frame.data));
      await this.releaseHeldNewline();
    });
  }

  /** A line from the launcher itself (pull progress, debug output, why a run failed); masked like the rest. */
  note(line: string): Promise<void> {
    return this.serial(async () => {
      await this.releaseHeldNewline();
      const masker = new LogMasker(this.options.secrets);
      const bytes = new TextEncoder().encode(`[spacelift-launcher] ${line}\n`);
      await this.emit(masker.write(bytes));
      await this.emit(masker.end());
    });
  }

  /** The output ended: everything held back is masked and sent; resolves when the sink has it all. */
  finish(): Promise<void> {
    return this.serial(async () => {
      await this.parsed(this.parser.end());
      await this.flushMaskers();
      await this.chunker.flush();
      this.mirror?.end();
    });
  }

  /** Abandons buffered output (the run is over and its sink failed). */
  dispose(): void {
    this.chunker.dispose();
  }

  private async parsed(events: MarkerEvent[]): Promise<void> {
    for (const event of events) {
      if (event.kind === "phase") {
        this.stdoutOut += encodePhaseMarker(this.options.nonce, event.name).length;
        this.newlineReleased = false; // the marker began with it: it was a line break either way
        await this.changePhase(event.name);
        continue;
      }
      this.stdoutOut += event.data.length;
      let data = event.data;
      if (this.newlineReleased) {
        data = data.subarray(1);
        this.newlineReleased = false;
      }
      await this.emit(this.maskers.stdout.write(data));
    }
  }

  /**
   * The marker parser holds back a final "\n" of stdout (it could begin a marker) until more stdout
   * arrives — for a command that prints a line and then works quietly, that could be minutes, and
   * stderr output or a launcher note would get in front of it ("out" "err\n" "\n"). So the line break
   * is sent at once and dropped from the parser's next output; if a marker follows instead, it was
   * the marker's own leading newline, which is a line break either way. Longer held-back bytes (a
   * line break and the start of the marker head) are never released early: they could be part of
   * the nonce.
   */
  private async releaseHeldNewline(): Promise<void> {
    if (this.newlineReleased || this.stdoutIn - this.stdoutOut !== 1 || this.lastStdoutByte !== NEWLINE) return;
    this.newlineReleased = true;
    await this.emit(this.maskers.stdout.write(NEWLINE_BYTES));
  }

  private async changePhase(name: string): Promise<void> {
    await this.flushMaskers();
    await this.chunker.flush();
    this.options.sink.phase(this.options.run, name);
  }

  private async flushMaskers(): Promise<void> {
    await this.emit(this.maskers.stdout.end());
    await this.emit(this.maskers.stderr.end());
  }

  private async emit(masked: Uint8Array | Uint8Array[]): Promise<void> {
    for (const part of Array.isArray(masked) ? masked : [masked]) {
      if (part.length === 0) continue;
      this.mirror?.write(part);
      await this.chunker.push(part);
    }
  }

  private serial(step: () => Promise<void>): Promise<void> {
    const run = this.queue.then(step);
    this.queue = run.catch(() => undefined);
    return run;
  }
}

/** Masked output as JSON lines `{run_ulid, stack_id, ts, msg}` on the launcher's stdout. */
class LineMirror {
  private readonly decoder = new TextDecoder();
  private partial = "";

  constructor(
    private readonly writeLine: (line: string) => void,
    private readonly fields: { run_ulid: string; stack_id: string },
    private readonly now: () => Date,
  ) {}

  write(bytes: Uint8Array): void {
    this.partial += this.decoder.decode(bytes, { stream: true });
    let nl: number;
    while ((nl = this.partial.indexOf("\n")) >= 0) {
      this.line(this.partial.slice(0, nl));
      this.partial = this.partial.slice(nl + 1);
    }
    while (this.partial.length > MAX_MIRROR_LINE) {
      this.line(this.partial.slice(0, MAX_MIRROR_LINE));
      this.partial = this.partial.slice(MAX_MIRROR_LINE);
    }
  }

  end(): void {
    this.partial += this.decoder.decode();
    if (this.partial !== "") this.line(this.partial);
    this.partial = "";
  }

  private line(msg: string): void {
    try {
      this.writeLine(JSON.stringify({ ...this.fields, ts: this.now().toISOString(), msg: msg.replace(/\r$/, "") }));
    } catch {
      // The mirror is a convenience; it never fails a run.
    }
  }
}
