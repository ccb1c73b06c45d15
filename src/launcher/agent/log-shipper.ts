/**
 * Ships run output to the mothership: each chunk goes to the spool first (durable), then, when the
 * worker is registered, straight out over the transport. While it is not (broker away, hello not yet
 * answered) chunks only accumulate on disk, and `resend` after the next `registered` reads them back.
 * At most `maxInFlight` chunks wait for the broker at a time; beyond that the run's output waits too,
 * which is the backpressure that keeps memory bounded (the supervisor awaits `log`).
 */
import type { Logger } from "../../log/logger.ts";
import { makeMessage, type UplinkMessage } from "../../protocol/messages.ts";
import type { LogChunk } from "../run-executor.ts";
import type { LogSpool } from "./log-spool.ts";

export interface Outbox {
  send(message: UplinkMessage): Promise<void>;
}

export class LogShipper {
  private online = false;
  private inFlight = 0;
  private readonly waiters: Array<() => void> = [];
  /** Bumped on every reconnect, so a resend started for an older connection stops. */
  private epoch = 0;

  constructor(
    private readonly spool: LogSpool,
    private readonly outbox: Outbox,
    private readonly log: Logger,
    private readonly maxInFlight = 256,
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

  /** The chunk's seq goes on the wire as it is: producer, spool and wire all count from 0. */
  private async publish({ run, seq, data }: LogChunk): Promise<void> {
    while (this.inFlight >= this.maxInFlight) await new Promise<void>((resolve) => this.waiters.push(resolve));
    this.inFlight++;
    const message = makeMessage("log", { run, seq, data: Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("base64") });
    this.outbox
      .send(message)
      .catch(() => {
        // Closed transport: the chunk stays in the spool for the next start.
      })
      .finally(() => {
        this.inFlight--;
        this.waiters.shift()?.();
      });
  }
}
