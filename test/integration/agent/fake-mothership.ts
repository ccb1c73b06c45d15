/**
 * A fake mothership for the HTTP long-poll transport, on plain HTTP on loopback: what an attacker
 * between a TLS-terminating proxy and the launcher, or at a plain-HTTP comms URL, could run. It takes
 * every uplink batch without checking signatures (it records them) and answers downlink polls from
 * a mailbox the test fills with whatever payloads it wants the launcher to see.
 */
import { POLL_DOWNLINK_PATH, POLL_UPLINK_PATH } from "../../../src/protocol/poll.ts";

export interface Uplinked {
  worker: string;
  message: Record<string, unknown>;
}

export class FakePollMothership {
  readonly uplink: Uplinked[] = [];
  private readonly mailbox: Array<{ cursor: number; message: unknown }> = [];
  private last = 0;
  private readonly server: ReturnType<typeof Bun.serve>;

  constructor() {
    this.server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      // Longer than a downlink poll waits.
      idleTimeout: 60,
      fetch: (req) => this.handle(req),
    });
  }

  get url(): string {
    return `http://127.0.0.1:${this.server.port}`;
  }

  /** The worker that said hello, once one has. */
  get worker(): string | undefined {
    return this.uplink.find((u) => u.message.type === "hello")?.worker;
  }

  /** Queues one payload for the launcher's next poll: a wire string (parsed, as the real mothership's answer carries values) or a value. */
  push(payload: string | object): void {
    this.mailbox.push({ cursor: ++this.last, message: typeof payload === "string" ? (JSON.parse(payload) as unknown) : payload });
  }

  /** Uplink messages of one type (and run). */
  sent(type: string, run?: string): Uplinked[] {
    return this.uplink.filter((u) => u.message.type === type && (run === undefined || u.message.run === run));
  }

  async stop(): Promise<void> {
    await this.server.stop(true);
  }

  private async handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const worker = req.headers.get("x-spacelift-worker") ?? "";
    if (req.method === "POST" && url.pathname === POLL_UPLINK_PATH) {
      const body = (await req.json()) as { messages: Array<Record<string, unknown>> };
      for (const message of body.messages) this.uplink.push({ worker, message });
      return Response.json({ accepted: body.messages.length });
    }
    if (req.method === "GET" && url.pathname === POLL_DOWNLINK_PATH) {
      const after = Number(url.searchParams.get("after") ?? "0");
      const deadline = Date.now() + Math.min(Number(url.searchParams.get("wait") ?? "0"), 5) * 1000;
      while (!this.mailbox.some((m) => m.cursor > after) && Date.now() < deadline && !req.signal.aborted) await Bun.sleep(25);
      const messages = this.mailbox.filter((m) => m.cursor > after);
      return Response.json({ messages, cursor: Math.max(after, this.last) });
    }
    return Response.json({ error: { code: "not-found", message: "no such route" } }, { status: 404 });
  }
}
