/**
 * A run's log path: container output frames and the launcher's own notes in, masked and sequenced
 * chunks and phase changes out.
 *
 *   stdout frames -> PhaseMarkerParser -> LogMasker(stdout) -+
 *   stderr frames ---------------------> LogMasker(stderr) -+-> LogChunker -> sink.log
 *   launcher notes -------------------> LogMasker(once) ----+         \-> stdout mirror (JSON lines)
 *
 * Markers are parsed BEFORE masking (a secret could otherwise hide one) and only on stdout, where the
 * worker writes them. Each stream has its own masker, so a secret written in two pieces is masked even
 * when the other stream's output arrives in between. At a phase marker both maskers are ended and every
 * chunk of the old phase reaches the sink before the phase change does, so the sink sees each byte in
 * the phase that printed it.
 *
 * The parser and the maskers are log stages (../log-stage.ts): each decides alone what it must keep
 * back between reads and releases it as soon as that is safe (the parser a lone line break, a masker a
 * tail that cannot begin a secret), so a line is not delayed until its stream's next output. The
 * pipeline only passes each stage's output on and ends the stages at a phase change or the end.
 *
 * Operations are serialized (notes come from timers while output is being read), and each one
 * returns only when its data is buffered within the chunker's bound: backpressure to the reader.
 */
import type { OutputFrame } from "../../docker/demux.ts";
import { type MarkerEvent, PhaseMarkerParser } from "../../protocol/phase-markers.ts";
import { LogMasker } from "../log-masker.ts";
import type { LogStage } from "../log-stage.ts";
import type { RunSink } from "../run-executor.ts";
import { LogChunker } from "./log-chunker.ts";

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
  private readonly parser: LogStage<MarkerEvent>;
  private readonly maskers: { stdout: LogStage; stderr: LogStage };
  private readonly chunker: LogChunker;
  private readonly mirror: LineMirror | undefined;
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly options: LogPipelineOptions) {
    this.parser = new PhaseMarkerParser(options.nonce, { releaseLineBreak: true });
    this.maskers = { stdout: new LogMasker(options.secrets), stderr: new LogMasker(options.secrets) };
    this.chunker = new LogChunker(options.run, options.sink, options.maxChunkBytes, options.maxChunkDelayMs);
    this.mirror = options.mirror
      ? new LineMirror(options.mirror, { run_ulid: options.run, stack_id: options.stackId }, options.now ?? (() => new Date()))
      : undefined;
  }

  /** The seq of the last chunk handed to the sink (-1 when none). */
  get lastSeq(): number {
    return this.chunker.lastSeq;
  }

  /** Bytes some stage has taken and not yet passed on (0 once `finish` resolved). */
  heldBack(): number {
    return this.parser.heldBack() + this.maskers.stdout.heldBack() + this.maskers.stderr.heldBack() + this.chunker.heldBack();
  }

  /** One frame of the container's output. */
  output(frame: OutputFrame): Promise<void> {
    return this.serial(async () => {
      if (frame.stream === "stderr") await this.emit(this.maskers.stderr.write(frame.data));
      else if (frame.stream === "stdout") await this.parsed(this.parser.write(frame.data));
    });
  }

  /** A line from the launcher itself (pull progress, debug output, why a run failed); masked like the rest. */
  note(line: string): Promise<void> {
    return this.serial(async () => {
      const masker = new LogMasker(this.options.secrets);
      await this.emit(masker.write(new TextEncoder().encode(`[spacelift-launcher] ${line}\n`)));
      await this.emit(masker.end());
    });
  }

  /** The output ended: everything held back is masked and sent; resolves when the sink has it all. */
  finish(): Promise<void> {
    return this.serial(async () => {
      await this.parsed(this.parser.end());
      await this.endMaskers();
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
      if (event.kind === "output") {
        await this.emit(this.maskers.stdout.write(event.data));
        continue;
      }
      await this.endMaskers();
      await this.chunker.flush();
      this.options.sink.phase(this.options.run, event.name);
    }
  }

  private async endMaskers(): Promise<void> {
    await this.emit(this.maskers.stdout.end());
    await this.emit(this.maskers.stderr.end());
  }

  private async emit(masked: Uint8Array[]): Promise<void> {
    for (const part of masked) {
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
