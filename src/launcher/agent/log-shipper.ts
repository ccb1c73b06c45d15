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
    const epoch = this.epoch;
    let sent = 0;
    for (const { run } of this.spool.list()) {
      for await (const chunk of this.spool.unacked(run)) {
        if (epoch !== this.epoch || !this.online) return sent;
        await this.publish(chunk);
        sent++;
      }
    }
    if (sent > 0) this.log.info("spooled log chunks sent again", { chunks: sent });
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
