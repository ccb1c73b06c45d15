/**
 * Live updates for the web UI as server-sent events. One ticker for all streams: every `tickMs` it
 * asks SQLite whether anything was written since the last tick (`total_changes()` of the
 * mothership's one connection) and only then recomputes each watched view (snapshots.ts) once,
 * sending it to the streams that watch it when it differs from what they were sent. A `run:` stream
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
  openedAt: number;
  lastWrite: number;
  write(text: string): boolean;
  close(): void;
}

const encoder = new TextEncoder();

export class EventHub {
  private readonly streams = new Set<Stream>();
  private timer: ReturnType<typeof setInterval> | null = null;
  private changes = -1;
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
            openedAt: Date.now(),
            lastWrite: Date.now(),
            write: (text) => {
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
          this.send(s, true);
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
    this.timer ??= setInterval(() => this.tick(), this.limits.tickMs);
  }

  private stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.changes = -1;
  }

  private tick(): void {
    try {
      const now = Date.now();
      const { n } = this.store.db.query("SELECT total_changes() AS n").get() as { n: number };
      const changed = n !== this.changes;
      this.changes = n;
      const computed = new Map<string, string>();
      for (const s of [...this.streams]) {
        if (!this.sessions.alive(s.session) || now - s.openedAt >= this.limits.maxStreamMs) {
          s.close();
          continue;
        }
        if (changed) this.send(s, false, computed);
        // A log bigger than one tick's share goes on without new writes.
        else if (s.topic.startsWith("run:")) this.sendLog(s, s.topic.slice(4));
        if (this.streams.has(s) && now - s.lastWrite >= this.limits.heartbeatMs) s.write(": keep-alive\n\n");
      }
    } catch (err) {
      this.log.error("live update failed", { error: err });
    }
  }

  /** Sends the stream's view when it changed (always on `first`), then any new log of its run. */
  private send(s: Stream, first: boolean, computed = new Map<string, string>()): void {
    let text = computed.get(s.topic);
    if (text === undefined) {
      text = JSON.stringify(snapshot(this.store, s.topic));
      computed.set(s.topic, text);
    }
    if (first || text !== s.sent) {
      if (!s.write(`event: snapshot\ndata: ${text}\n\n`)) return;
      s.sent = text;
    }
    if (s.topic.startsWith("run:")) this.sendLog(s, s.topic.slice(4));
  }

  private sendLog(s: Stream, run: string): void {
    let budget = this.limits.maxLogBytesPerTick;
    while (budget > 0) {
      const chunks = this.store.runs.logs(run, s.logSeq, 64);
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
