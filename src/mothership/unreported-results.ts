/**
 * Runs a worker still holds in the store while the worker itself says it holds none (or another):
 * the launcher is the same process (a worker id is made at each start), so it finished the run, and
 * its `run_finished` either follows (queued behind a reconnect's hello, or carried by another replica)
 * or was lost on the way (a broker or mothership killed between acknowledging a message and acting on
 * it). The control plane waits `waitMs` from the first time it notices before it gives up on the result
 * and fails the run, so the worker is never kept from new runs for ever.
 *
 * Kept per process: with several replicas, each counts from the first heartbeat it sees, which only
 * delays the verdict by up to a heartbeat. Bounded: the oldest entry goes first past `max`.
 */
export class UnreportedResults {
  private readonly since = new Map<string, number>();

  constructor(
    private readonly waitMs: number,
    private readonly max = 10_000,
  ) {}

  /** Starts the clock for `run` (when not running already); true once `waitMs` has passed since it started. */
  overdue(run: string, now: number): boolean {
    const first = this.since.get(run);
    if (first === undefined) {
      if (this.since.size >= this.max) this.since.delete(this.since.keys().next().value as string);
      this.since.set(run, now);
      return false;
    }
    if (now - first < this.waitMs) return false;
    this.since.delete(run);
    return true;
  }

  /** The run's result came (or the run ended otherwise). */
  forget(run: string): void {
    this.since.delete(run);
  }
}
