/**
 * The launcher's memory of what the agent loop sent recently, by message id. The mothership answers a
 * message it cannot take with `error {in_reply_to}`; with this the agent knows what was refused: a run
 * message refused because the worker was unknown goes out again after the next hello; a spooled run the
 * mothership does not know is dropped. Log chunks are not here: the log shipper sends them beside the
 * loop, and the spool, not this memory, is what resends them. Bounded: the oldest entries are forgotten.
 */
import type { UplinkMessage } from "../../protocol/messages.ts";

export class SentMessages {
  private readonly byId = new Map<string, UplinkMessage>();
  private resends: UplinkMessage[] = [];
  private helloSentAt = 0;

  constructor(private readonly capacity = 2048) {}

  remember(message: UplinkMessage): void {
    this.byId.set(message.id, message);
    if (this.byId.size > this.capacity) this.byId.delete(this.byId.keys().next().value as string);
  }

  get(id: string): UplinkMessage | undefined {
    return this.byId.get(id);
  }

  resendAfterHello(message: UplinkMessage): void {
    if (!this.resends.some((m) => m.id === message.id)) this.resends.push(message);
  }

  takeResends(): UplinkMessage[] {
    this.helloSentAt = 0;
    return this.resends.splice(0);
  }

  /** One hello per burst of errors: several refused messages arrive together after a gap. */
  helloPending(now = Date.now()): boolean {
    return now - this.helloSentAt < 5_000;
  }

  markHello(now = Date.now()): void {
    this.helloSentAt = now;
  }
}
