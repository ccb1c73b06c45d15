/**
 * The two clocks of a run (see src/launcher/supervisor/README.md): the wall clock (SPACELIFT_LAUNCHER_RUN_TIMEOUT, from the
 * moment the launcher takes the run) and the logs clock (SPACELIFT_LAUNCHER_LOGS_TIMEOUT, reset by
 * every byte of output, armed once the container runs). Each fires at most once; the owner decides
 * what expiring means (stop the container with the matching reason).
 *
 * The logs clock is one timer re-armed lazily: output only records a timestamp, and the timer, when
 * it fires early, sleeps again for the remainder — no timer churn per chunk of output.
 */
export type TimeoutReason = "timeout-logs" | "timeout-run";

export class RunTimeouts {
  private runTimer: ReturnType<typeof setTimeout> | undefined;
  private logsTimer: ReturnType<typeof setTimeout> | undefined;
  private lastOutput = 0;
  private fired = false;
  private disposed = false;

  constructor(
    private readonly limits: { readonly logsMs: number; readonly runMs: number },
    private readonly onExpire: (reason: TimeoutReason, limitMs: number) => void,
    private readonly now: () => number = () => performance.now(),
  ) {}

  startRun(): void {
    if (this.disposed || this.runTimer !== undefined) return;
    this.runTimer = setTimeout(() => this.expire("timeout-run", this.limits.runMs), this.limits.runMs);
  }

  startLogs(): void {
    if (this.disposed || this.logsTimer !== undefined) return;
    this.lastOutput = this.now();
    this.armLogs(this.limits.logsMs);
  }

  /** The run printed something. */
  touch(): void {
    this.lastOutput = this.now();
  }

  dispose(): void {
    this.disposed = true;
    clearTimeout(this.runTimer);
    clearTimeout(this.logsTimer);
  }

  private armLogs(ms: number): void {
    this.logsTimer = setTimeout(() => {
      if (this.disposed) return;
      const idle = this.now() - this.lastOutput;
      if (idle >= this.limits.logsMs) this.expire("timeout-logs", this.limits.logsMs);
      else this.armLogs(this.limits.logsMs - idle);
    }, Math.max(1, Math.ceil(ms)));
  }

  private expire(reason: TimeoutReason, limitMs: number): void {
    if (this.fired || this.disposed) return;
    this.fired = true;
    this.onExpire(reason, limitMs);
  }
}
