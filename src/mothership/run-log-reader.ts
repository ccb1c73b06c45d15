/**
 * Pages of a run's stored log for `GET /runs/:id/logs`, and whether the log is complete: the run
 * ended and every chunk up to the launcher's `last_seq` is stored (a launcher lost with unsent
 * output resends it when it comes back, so an ended run is not yet a complete log).
 */
import { SpaceliftError } from "../errors.ts";
import { isTerminalRunState, type RunState } from "../protocol/states.ts";
import type { Store } from "./store/index.ts";

export interface LogPage {
  run: string;
  state: RunState;
  chunks: Array<{ seq: number; data: string }>;
  /** The `after` of the next request: the last seq of this page, else the one asked for. */
  next: number;
  /** Nothing more will ever come after `next`. */
  done: boolean;
  last_seq: number | null;
}

export class RunLogReader {
  constructor(private readonly store: Store) {}

  async page(runId: string, after: number, limit: number): Promise<LogPage> {
    const run = await this.store.runs.get(runId);
    if (!run) throw new SpaceliftError("not-found", `run ${runId} does not exist`);
    const chunks = await this.store.runs.logs(runId, after, limit);
    const complete = isTerminalRunState(run.state) && (run.last_seq === null || run.log_acked >= run.last_seq);
    const next = chunks.at(-1)?.seq ?? after;
    return {
      run: runId,
      state: run.state,
      chunks: chunks.map((c) => ({ seq: c.seq, data: Buffer.from(c.data).toString("base64") })),
      next,
      done: complete && (await this.store.runs.logs(runId, next, 1)).length === 0,
      last_seq: run.last_seq,
    };
  }
}
