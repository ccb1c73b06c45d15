/**
 * What the mothership takes of a run's log from its launcher. The launcher is a peer: whoever holds
 * a pool's key can send anything a launcher can, so every chunk is checked before it is stored:
 *
 * - `seq` is a whole number in 0..MAX_SEQ (the wire schema says so too);
 * - a run that ended takes only chunks up to its `last_seq` (a launcher resends what was not
 *   acknowledged, also after the end); one that ended without a known `last_seq` takes none;
 * - a chunk is at most `chunkBytes` decoded bytes, counted from the base64 before decoding;
 * - a run keeps at most `runBytes`, counted as the chunk is stored (with the run's row locked, so replicas
 *   storing chunks of one run at once never pass it together); the chunk that would pass it is refused
 *   and the run is stopped (the control plane ends it FAILED `log-limit-exceeded` and tells the launcher to cancel).
 *
 * A chunk already stored under (run, seq) is a resend: acknowledged again, never counted twice.
 * Refusals are logged at warn once per run, so a peer cannot flood the log either.
 */
import type { Logger } from "../log/logger.ts";
import { MAX_SEQ } from "../protocol/messages.ts";
import { isTerminalRunState } from "../protocol/states.ts";
import type { Run, Store } from "./store/index.ts";

export interface LogLimits {
  /** Decoded bytes of one chunk (launchers send at most 64 KiB). */
  chunkBytes: number;
  /** Bytes of log stored for one run. */
  runBytes: number;
}

export const DEFAULT_LOG_LIMITS: LogLimits = { chunkBytes: 256 * 1024, runBytes: 512 * 1024 * 1024 };

export type LogVerdict =
  /** Stored (or already there): acknowledge up to `acked`. */
  | { kind: "stored"; acked: number }
  /** Not stored; answer with an `error` carrying this code and message. */
  | { kind: "refused"; code: "log-refused"; message: string }
  /** Not stored, and the run is over its cap: stop it with `note` in its log. */
  | { kind: "over-limit"; code: "log-refused"; message: string; note: string };

/** How many runs' refusals are remembered for the once-per-run warning before the memory starts over. */
const WARNED_RUNS = 10_000;

/** Bytes that `b64` decodes to, from its length alone. @testSeam */
export function decodedLength(b64: string): number {
  const padding = b64.endsWith("==") ? 2 : b64.endsWith("=") ? 1 : 0;
  return Math.max(0, Math.floor((b64.length * 3) / 4) - padding);
}

/** 536870912 -> "512 MiB", 131072 -> "128 KiB", 100 -> "100 bytes": as an operator would write the flag. */
const size = (n: number) => (n % 1024 ** 2 === 0 ? `${n / 1024 ** 2} MiB` : n % 1024 === 0 ? `${n / 1024} KiB` : `${n} bytes`);

export class RunLogIntake {
  private readonly warned = new Set<string>();
  private readonly log: Logger;

  constructor(
    private readonly store: Store,
    private readonly limits: LogLimits,
    logger: Logger,
  ) {
    this.log = logger.child({ component: "log-intake" });
  }

  /** Checks one chunk of `run` (already known to belong to the sending worker) and stores it if it may be. */
  async receive(run: Run, seq: number, data: string, worker: string): Promise<LogVerdict> {
    const verdict = await this.check(run, seq, data);
    if (verdict) {
      this.warnOnce(run.id, worker, seq, verdict.message);
      return verdict;
    }
    // The cap again with the run's row locked: chunks stored meanwhile by another replica count too.
    const acked = await this.store.runs.appendLog(run.id, seq, Buffer.from(data, "base64"), this.limits.runBytes);
    if (acked !== null) return { kind: "stored", acked };
    const over = this.overLimit(run.id);
    this.warnOnce(run.id, worker, seq, over.message);
    return over;
  }

  private overLimit(run: string): Extract<LogVerdict, { kind: "over-limit" }> {
    const limit = size(this.limits.runBytes);
    return {
      kind: "over-limit",
      code: "log-refused",
      message: `run ${run} has reached its log limit of ${limit} (mothership serve --max-run-log-bytes); the run is stopped`,
      note: `mothership: the run's log reached the limit of ${limit} per run, so the run was stopped and later output was not kept; start the mothership with a larger --max-run-log-bytes to allow more`,
    };
  }

  private async check(run: Run, seq: number, data: string): Promise<Exclude<LogVerdict, { kind: "stored" }> | null> {
    const refuse = (message: string) => ({ kind: "refused" as const, code: "log-refused" as const, message });
    if (!Number.isSafeInteger(seq) || seq < 0 || seq > MAX_SEQ) return refuse(`seq must be a whole number from 0 to ${MAX_SEQ}`);
    if (isTerminalRunState(run.state) && (run.last_seq === null || seq > run.last_seq)) {
      const until = run.last_seq === null ? "it takes no more output" : `it takes only chunks up to its last seq ${run.last_seq}`;
      return refuse(`run ${run.id} has ended (${run.state}); ${until}`);
    }
    if (await this.store.runs.hasLog(run.id, seq)) return null;
    const bytes = decodedLength(data);
    if (bytes > this.limits.chunkBytes) {
      return refuse(`chunk ${seq} of run ${run.id} is ${bytes} bytes, more than the ${this.limits.chunkBytes} a chunk may have (mothership serve --max-log-chunk-bytes)`);
    }
    if (run.log_bytes + bytes > this.limits.runBytes) return this.overLimit(run.id);
    return null;
  }

  private warnOnce(run: string, worker: string, seq: number, reason: string): void {
    if (this.warned.has(run)) return;
    if (this.warned.size >= WARNED_RUNS) this.warned.clear();
    this.warned.add(run);
    this.log.warn("log chunk refused (further refusals for this run are not logged)", { run, worker, seq, reason });
  }
}
