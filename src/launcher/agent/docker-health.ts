/**
 * Whether this launcher's Docker Engine answers: `/_ping` with a short timeout at start, every
 * interval, and at once when asked (after a run failed with a system error, or before refusing a
 * schedule). The agent sends the result in `hello` and `heartbeat`, and a heartbeat at once when it
 * changes, so the mothership schedules only to workers that can run something and `worker list`
 * says why one does not (src/protocol/README.md). A probe never throws: a failure is a status.
 */
import { isDockerError } from "../../docker/errors.ts";
import { errorMessage } from "../../errors.ts";
import type { Logger } from "../../log/logger.ts";
import type { DockerHealthReport } from "../../protocol/messages.ts";

/** How often Docker is asked while nothing else asks. */
const DEFAULT_INTERVAL_MS = 10_000;
/** A daemon that has not answered `/_ping` in this long counts as not answering. */
const DEFAULT_TIMEOUT_MS = 3_000;
/** The report travels in every heartbeat: one line, bounded (the protocol allows 1024 characters). */
const MAX_MESSAGE_CHARS = 300;

export interface DockerHealthOptions {
  ping(signal: AbortSignal): Promise<unknown>;
  /** DOCKER_HOST, for the message of a daemon that does not answer in time. */
  endpoint: string;
  logger: Logger;
  intervalMs?: number;
  timeoutMs?: number;
}

export class DockerHealth {
  private current: DockerHealthReport = { ok: true, message: "" };
  private probing: Promise<DockerHealthReport> | null = null;
  private timer: ReturnType<typeof setInterval> | null = null;
  private readonly listeners: Array<(status: DockerHealthReport) => void> = [];

  constructor(private readonly opts: DockerHealthOptions) {}

  /** The last probe's result (ok until the first probe says otherwise). */
  get status(): DockerHealthReport {
    return { ...this.current };
  }

  /** Called with the new status each time it changes (ok to not ok, back, or another reason). */
  onChange(listener: (status: DockerHealthReport) => void): void {
    this.listeners.push(listener);
  }

  /** Asks Docker now; a probe already on its way is shared. */
  probe(): Promise<DockerHealthReport> {
    this.probing ??= this.ask().finally(() => (this.probing = null));
    return this.probing;
  }

  /** Probes every interval until stop(). */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.probe(), this.opts.intervalMs ?? DEFAULT_INTERVAL_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private async ask(): Promise<DockerHealthReport> {
    let next: DockerHealthReport;
    const timeoutMs = this.opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    try {
      await this.opts.ping(AbortSignal.timeout(timeoutMs));
      next = { ok: true, message: "" };
    } catch (err) {
      const text = isDockerError(err, "timeout") ? `Docker at ${this.opts.endpoint} did not answer /_ping within ${timeoutMs / 1000} s` : errorMessage(err);
      next = { ok: false, message: oneLine(text) };
    }
    const before = this.current;
    this.current = next;
    if (before.ok !== next.ok || before.message !== next.message) {
      if (next.ok) this.opts.logger.info("Docker answers again; taking runs");
      else this.opts.logger.warn("Docker does not answer; taking no runs until it does", { problem: next.message });
      for (const listener of this.listeners) listener({ ...next });
    }
    return { ...next };
  }
}

/** The client's message without its "ping Docker: " prefix, on one bounded line. */
function oneLine(message: string): string {
  const text = message.replace(/^ping Docker: /, "").replace(/\s+/g, " ").trim() || "Docker did not answer";
  return text.length > MAX_MESSAGE_CHARS ? `${text.slice(0, MAX_MESSAGE_CHARS - 1)}…` : text;
}
