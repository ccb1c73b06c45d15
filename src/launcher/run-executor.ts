/**
 * The contract between the agent loop (which talks to the mothership) and the run supervisor (which
 * drives one run in Docker). The agent hands a decrypted, validated run to `execute`; the supervisor reports
 * phases and log chunks to the sink as they happen and resolves with exactly one final result.
 * Cancellation arrives through the AbortSignal (its reason says why: cancel, drain's second signal, ...).
 */
import type { RunReason } from "../protocol/states.ts";
import type { RunSpec } from "../protocol/run-spec.ts";

/**
 * A piece of a run's log, as the supervisor produces it and the agent spools and sends it: the launcher's
 * one chunk type. `seq` counts from 0 per run, without gaps - the same numbers the spool stores and the
 * `log` message carries (src/protocol/README.md).
 */
export interface LogChunk {
  run: string;
  seq: number;
  data: Uint8Array;
}

export interface RunSink {
  /** The run entered a phase (e.g. "initializing", "planning"); also the launcher's own "preparing". */
  phase(run: string, name: string): void;
  /**
   * A log chunk, already masked. The promise resolves when the sink has taken responsibility for the chunk
   * (e.g. spooled it); the supervisor awaits it before reading more output, so a slow sink is backpressure,
   * never unbounded memory.
   */
  log(chunk: LogChunk): Promise<void>;
}

export interface RunResult {
  run: string;
  /** The container's exit code, or null when no container ran (policy denial, pull failure, ...). */
  exitCode: number | null;
  reason: RunReason;
  /** The seq of the last chunk sent to the sink (-1 when none): the `last_seq` of `run_finished`. */
  lastSeq: number;
  /** Human-readable lines explaining a failure (e.g. policy deny messages), also written to the log. */
  messages: string[];
}

/** Why the caller aborted a run; the supervisor maps it to the result's reason. */
export type AbortReason = "cancelled" | "launcher-stopping";

export interface RunExecutor {
  execute(spec: RunSpec, sink: RunSink, signal: AbortSignal): Promise<RunResult>;
}
