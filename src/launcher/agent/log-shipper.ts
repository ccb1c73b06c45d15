/**
 * Ships run output to the mothership: each chunk goes to the spool first (durable), then, when the
 * worker is registered, straight out over the transport. While it is not (broker away, hello not yet
 * answered) chunks only accumulate on disk, and `resend` after the next `registered` reads them back.
 * At most `windowBytes` of log data wait for the transport's acknowledgement at a time; beyond that the
 * run's output waits too, which is the backpressure that keeps memory bounded (the supervisor awaits `log`).
 * The window is counted in bytes, not chunks, because memory follows bytes: each chunk in flight is held
 * as its message's JSON bytes (4/3 of the chunk, built once: src/transport/log-message.ts) until the broker
 * acknowledges it, and the chunker cuts anything from a line to 64 KiB.
 */
import type { Logger } from "../../log/logger.ts";
import type { UplinkMessage } from "../../protocol/messages.ts";
import { logMessage } from "../../transport/log-message.ts";
import type { LogChunk } from "../run-executor.ts";
import type { LogSpool } from "./log-spool.ts";

export interface Outbox {
  send(message: UplinkMessage): Promise<void>;
}

/**
 * Log bytes in flight at most (docs/performance.md): 16 full chunks, enough to keep a loopback or LAN
 * broker busy, while the launcher's peak memory during a 200 MB run stays within a few MB of idle.
 */
const DEFAULT_WINDOW_BYTES = 1 << 20;
/**
 * A full garbage collection after every this many log bytes, and the allocators asked to give back what it
 * freed (Bun.shrink). Reading the container's output leaves read buffers and a few promises per batch behind,
 * which JavaScriptCore collects lazily, and a collection alone leaves the freed memory resident: a 200 MB run
 * peaks at ~92 MB collecting every 1 MiB, ~91 MB collecting and shrinking every 2 MiB, ~84 MB every 1 MiB
 * (docs/performance.md).
 */
const COLLECT_EVERY_BYTES = 1 << 20;

export class LogShipper {
  private online = false;
  /** Bytes of log data handed to the transport and not yet acknowledged. */
  private inFlightBytes = 0;
  private waiters: Array<() => void> = [];
  /** Log bytes published since the last collection. */
  private sinceCollection = 0;
  /** Bumped on every reconnect, so a resend started for an older connection stops. */
  private epoch = 0;
  /** A resend is under way (after `registered`, or of stalled runs): another would only duplicate it. */
  private resending = false;
  /** Per run with chunks outstanding: the acknowledged seq at the last check, checks since it moved, checks to wait. */
  private readonly stalls = new Map<string, { acked: number; quiet: number; wait: number }>();

  constructor(
    private readonly spool: LogSpool,
    private readonly outbox: Outbox,
    private readonly log: Logger,
    private readonly windowBytes = DEFAULT_WINDOW_BYTES,
  ) {}

  /** Registered with the mothership (true) or not (false). */
  setOnline(online: boolean): void {
    this.online = online;
    this.epoch++;
  }

  /** Spools the chunk, then sends it if online. Resolves when the chunk is durable and its send is under way. */
  async ship(chunk: LogChunk): Promise<void> {
    await this.spool.append(chunk);
    if (this.online) await this.publish(chunk);
  }

  /** Sends every unacknowledged chunk of every spooled run again (after `registered`). */
  async resend(): Promise<number> {
    return this.resendRuns(this.spool.list().map((r) => r.run), "spooled log chunks sent again");
  }

  /**
   * Called at every heartbeat while registered. A message can be lost without the connection
   * dropping (a broker killed between acknowledging a publish and delivering it, a mothership that
   * could not store a chunk), and then nothing else would ever send it again: a run whose outstanding
   * chunks saw no acknowledgement for two checks in a row gets them sent again. The mothership stores a
   * chunk once however often it comes. A run the mothership keeps refusing waits twice as long each
   * time, up to 64 checks.
   */
  async resendStalled(): Promise<number> {
    if (!this.online || this.resending) return 0;
    const stalled: string[] = [];
    const spooled = new Set<string>();
    for (const { run } of this.spool.list()) {
      spooled.add(run);
      const acked = this.spool.ackedSeq(run);
      const s = this.stalls.get(run);
      if (this.spool.lastSeq(run) <= acked) this.stalls.delete(run);
      else if (!s || s.acked !== acked) this.stalls.set(run, { acked, quiet: 0, wait: 2 });
      else if (++s.quiet >= s.wait) {
        s.quiet = 0;
        s.wait = Math.min(s.wait * 2, 64);
        stalled.push(run);
      }
    }
    for (const run of this.stalls.keys()) if (!spooled.has(run)) this.stalls.delete(run);
    return this.resendRuns(stalled, "log chunks without acknowledgement sent again");
  }

  private async resendRuns(runs: readonly string[], what: string): Promise<number> {
    if (runs.length === 0) return 0;
    const epoch = this.epoch;
    let sent = 0;
    this.resending = true;
    try {
      for (const run of runs) {
        for await (const chunk of this.spool.unacked(run)) {
          if (epoch !== this.epoch || !this.online) return sent;
          await this.publish(chunk);
          sent++;
        }
      }
    } finally {
      this.resending = false;
      if (sent > 0) this.log.info(what, { chunks: sent });
    }
    return sent;
  }

  /**
   * The chunk's seq goes on the wire as it is. The data is encoded straight from the chunk's bytes into the
   * message's JSON bytes (no base64 string, no JSON string); a chunk larger than the whole window goes out alone.
   */
  private async publish({ run, seq, data }: LogChunk): Promise<void> {
    const size = data.byteLength;
    while (this.inFlightBytes > 0 && this.inFlightBytes + size > this.windowBytes) {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    this.inFlightBytes += size;
    this.sinceCollection += size;
    if (this.sinceCollection >= COLLECT_EVERY_BYTES) {
      this.sinceCollection = 0;
      Bun.gc(true);
      // Marked deprecated in Bun's typings, but it is what returns the collected memory (docs/performance.md).
      Bun.shrink();
    }
    const message = logMessage(run, seq, data);
    this.outbox
      .send(message)
      .catch(() => {
        // Closed transport: the chunk stays in the spool for the next start.
      })
      .finally(() => {
        this.inFlightBytes -= size;
        // Every waiter checks again: what fits now goes, in the order they came.
        const waiting = this.waiters;
        this.waiters = [];
        for (const wake of waiting) wake();
      });
  }
}
