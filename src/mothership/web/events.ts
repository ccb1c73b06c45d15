/**
 * Live updates for the web UI as server-sent events. One ticker for all streams: every `tickMs` it
 * asks the database whether anything was written since the last tick (changeMark) and only then
 * recomputes each watched view (snapshots.ts) once, sending it to the streams that watch it when it
 * differs from what they were sent. A tick starts only after the last one ended. A `run:` stream
 * also gets the run's log as it is stored (`log` events, id = seq, so a reconnecting browser resumes
 * after its Last-Event-ID), at most `maxLogBytesPerTick` per tick and only while the browser keeps up.
 *
 * Every stream is bounded: per session (sessions.ts), in lifetime (`maxStreamMs`, then the browser
 * reconnects, which also checks its session again), and by the session itself, whose end closes it.
 */
import type { Logger } from "../../log/logger.ts";
import type { Store } from "../store/index.ts";
import type { Session, WebSessions } from "./sessions.ts";
import { snapshot } from "./snapshots.ts";

export interface EventLimits {
  tickMs: number;
  heartbeatMs: number;
  maxStreamMs: number;
  maxLogBytesPerTick: number;
}

export const DEFAULT_EVENT_LIMITS: EventLimits = { tickMs: 400, heartbeatMs: 15_000, maxStreamMs: 5 * 60_000, maxLogBytesPerTick: 1024 * 1024 };

interface Stream {
  topic: string;
  session: Session;
  /** The seq of the last log chunk sent (run topics). */
  logSeq: number;
  sent: string | null;
  /** A write happened since the view was last sent (true at first: a new stream is sent its view). */
  stale: boolean;
  /** Its view or log is being read and sent; a tick that finds it so leaves it for the next one. */
  busy: boolean;
  openedAt: number;
  lastWrite: number;
  write(text: string): boolean;
  close(): void;
}

const encoder = new TextEncoder();

/**
 * A value that changes whenever anything is written. SQLite: the changes made through the
 * mothership's one connection. PostgreSQL: the WAL insert position, which also moves with writes of
 * other mothership replicas (and of other databases of the cluster: a view is then computed again
 * and, being the same, not sent).
 */
async function changeMark(store: Store): Promise<string> {
  const query = store.sql.dialect === "sqlite" ? "SELECT total_changes() AS n" : "SELECT pg_current_wal_insert_lsn()::text AS n";
  const row = await store.sql.get<{ n: number | string }>(query);
  return String(row?.n);
}

export class EventHub {
  private readonly streams = new Set<Stream>();
  private timer: ReturnType<typeof setInterval> | null = null;
  private mark: string | null = null;
  private ticking = false;
  private readonly log: Logger;

  constructor(
    private readonly store: Store,
    private readonly sessions: WebSessions,
    logger: Logger,
    private readonly limits: EventLimits = DEFAULT_EVENT_LIMITS,
  ) {
    this.log = logger.child({ component: "web-events" });
  }

  /** A text/event-stream Response for `topic`, or null when the session holds its maximum of streams. */
  open(session: Session, topic: string, lastEventId: string | null, signal: AbortSignal): Response | null {
    if (session.streams.size >= this.sessions.limits.maxStreamsPerSession) return null;
    const resumeAfter = lastEventId !== null && /^\d{1,10}$/.test(lastEventId) ? Number(lastEventId) : -1;
    let stream: Stream | null = null;
    const body = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          const s: Stream = {
            topic,
            session,
            logSeq: resumeAfter,
            sent: null,
            stale: true,
            busy: false,
            openedAt: Date.now(),
            lastWrite: Date.now(),
            write: (text) => {
              if (!this.streams.has(s)) return false;
              // A browser that stopped reading is not buffered for: it is dropped and reconnects.
              if ((controller.desiredSize ?? 0) < -256) {
                s.close();
                return false;
              }
              controller.enqueue(encoder.encode(text));
              s.lastWrite = Date.now();
              return true;
            },
            close: () => {
              if (!this.streams.delete(s)) return;
              session.streams.delete(s.close);
              try {
                controller.close();
              } catch {
                // already closed by the browser
              }
              if (this.streams.size === 0) this.stop();
            },
          };
          stream = s;
          this.streams.add(s);
          session.streams.add(s.close);
          s.write(`retry: 2000\n: ${topic}\n\n`);
          this.serve(s).catch((err: unknown) => this.log.error("live update failed", { error: err }));
          this.start();
        },
        cancel: () => stream?.close(),
      },
      { highWaterMark: 64 },
    );
    signal.addEventListener("abort", () => stream?.close(), { once: true });
    return new Response(body, {
      headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store", "x-accel-buffering": "no" },
    });
  }

  get openStreams(): number {
    return this.streams.size;
  }

  closeAll(): void {
    for (const s of [...this.streams]) s.close();
  }

  private start(): void {
    this.timer ??= setInterval(() => {
      if (this.ticking) return;
      this.ticking = true;
      this.tick()
        .catch((err: unknown) => this.log.error("live update failed", { error: err }))
        .finally(() => (this.ticking = false));
    }, this.limits.tickMs);
  }

  private stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.mark = null;
  }

  private async tick(): Promise<void> {
    const mark = await changeMark(this.store);
    if (mark !== this.mark) for (const s of this.streams) s.stale = true;
    this.mark = mark;
    const computed = new Map<string, string>();
    for (const s of [...this.streams]) {
      if (!this.sessions.alive(s.session) || Date.now() - s.openedAt >= this.limits.maxStreamMs) {
        s.close();
        continue;
      }
      // A view that did not change is not computed; a log bigger than one tick's share goes on without new writes.
      await this.serve(s, computed);
      if (Date.now() - s.lastWrite >= this.limits.heartbeatMs) s.write(": keep-alive\n\n");
    }
  }

  /** Sends the stream's view when it is stale and differs from what it was sent, then any new log of its run. */
  private async serve(s: Stream, computed = new Map<string, string>()): Promise<void> {
    if (s.busy) return;
    s.busy = true;
    try {
      if (s.stale) {
        let text = computed.get(s.topic);
        if (text === undefined) {
          text = JSON.stringify(await snapshot(this.store, s.topic));
          computed.set(s.topic, text);
        }
        s.stale = false;
        if (text !== s.sent) {
          if (!s.write(`event: snapshot\ndata: ${text}\n\n`)) return;
          s.sent = text;
        }
      }
      if (s.topic.startsWith("run:")) await this.sendLog(s, s.topic.slice(4));
    } finally {
      s.busy = false;
    }
  }

  private async sendLog(s: Stream, run: string): Promise<void> {
    let budget = this.limits.maxLogBytesPerTick;
    while (budget > 0) {
      const chunks = await this.store.runs.logs(run, s.logSeq, 64);
      if (chunks.length === 0) return;
      for (const c of chunks) {
        const data = Buffer.from(c.data).toString("base64");
        if (!s.write(`id: ${c.seq}\nevent: log\ndata: {"seq":${c.seq},"data":"${data}"}\n\n`)) return;
        s.logSeq = c.seq;
        budget -= c.data.byteLength;
        if (budget <= 0) return;
      }
    }
  }
}
