/**
 * The mothership's `/metrics` (Prometheus text format) on its API port, behind the admin token as
 * `Authorization: Bearer <token>` (Prometheus' `authorization` / `bearer_token_file` scrape setting):
 * the numbers name pools and workers, and the API port is the one the operator already exposes.
 *
 * Everything but the assignment latency is read from the store at scrape time (a few aggregate
 * queries, read before the registry renders, since its gauges are read synchronously), so nothing
 * here has to be kept in step with the control plane. The latency is observed by
 * the control plane as runs are assigned (`observeAssignment`), in one histogram per process.
 */
import { timingSafeEqual } from "node:crypto";
import { EXPOSITION_CONTENT_TYPE, Histogram, LATENCY_BUCKETS_SECONDS, Registry } from "../metrics/prometheus.ts";
import { RUN_STATES, WORKER_STATUSES } from "../protocol/states.ts";
import type { PollMailboxes } from "./poll-mailbox.ts";
import { workerStatus, type Store, type Worker } from "./store/index.ts";

export const METRICS_PATH = "/metrics";

const assignmentLatency = new Histogram(
  "spacelift_mothership_assignment_latency_seconds",
  "Time from a run's trigger to its assignment to a worker (time in the queue).",
  [],
  LATENCY_BUCKETS_SECONDS,
);

/** A run was assigned to a worker: how long it waited since it was triggered. */
export function observeAssignment(createdAt: string, now: Date): void {
  const waited = (now.getTime() - Date.parse(createdAt)) / 1000;
  if (Number.isFinite(waited)) assignmentLatency.observe(Math.max(0, waited));
}

export interface MothershipMetricsOptions {
  store: Store;
  /** Which live workers talk long-poll (they have a mailbox); the others talk MQTT. */
  mailboxes: Pick<PollMailboxes, "has">;
  adminToken: string;
}

/** The `/metrics` handler for serve.ts. */
export function createMetricsEndpoint(o: MothershipMetricsOptions): (req: Request) => Promise<Response> {
  const { registry, refresh } = metricsRegistry(o.store, o.mailboxes);
  const want = Buffer.from(o.adminToken);
  return async (req) => {
    if (req.method !== "GET" && req.method !== "HEAD") return error(405, "method-not-allowed", "use GET /metrics", { allow: "GET, HEAD" });
    const header = req.headers.get("authorization") ?? "";
    const given = Buffer.from(header.startsWith("Bearer ") ? header.slice(7) : "");
    if (given.length !== want.length || !timingSafeEqual(given, want)) {
      return error(401, "unauthorized", "missing or wrong admin token (Authorization: Bearer <the data dir's admin-token>)", { "www-authenticate": "Bearer" });
    }
    await refresh();
    return new Response(registry.render(), { headers: { "content-type": EXPOSITION_CONTENT_TYPE } });
  };
}

interface Counts {
  queued: Array<{ pool: string; n: number }>;
  runs: Map<string, number>;
  pools: string[];
  live: Worker[];
  logBytes: number;
}

/** What the gauges show, all read at once. PostgreSQL gives COUNT and SUM as bigint text: hence Number(). */
async function readCounts(store: Store): Promise<Counts> {
  const { sql } = store;
  const [queued, runs, pools, live, logBytes] = await Promise.all([
    sql.all<{ pool: string; n: number | string }>("SELECT p.id AS pool, COUNT(r.id) AS n FROM pools p LEFT JOIN runs r ON r.pool = p.id AND r.state = 'QUEUED' GROUP BY p.id ORDER BY p.id"),
    sql.all<{ state: string; n: number | string }>("SELECT state, COUNT(*) AS n FROM runs GROUP BY state"),
    store.pools.list(),
    store.workers.listLive(),
    sql.get<{ n: number | string | null }>("SELECT SUM(log_bytes) AS n FROM runs"),
  ]);
  return {
    queued: queued.map((row) => ({ pool: row.pool, n: Number(row.n) })),
    runs: new Map(runs.map((row) => [row.state, Number(row.n)])),
    pools: pools.map((p) => p.id),
    live,
    logBytes: Number(logBytes?.n ?? 0),
  };
}

function metricsRegistry(store: Store, mailboxes: Pick<PollMailboxes, "has">): { registry: Registry; refresh(): Promise<void> } {
  const r = new Registry();
  let c: Counts = { queued: [], runs: new Map(), pools: [], live: [], logBytes: 0 };
  r.gauge("spacelift_mothership_queued_runs", "Runs waiting in the queue, by pool.", ["pool"], () => c.queued.map((row) => ({ labels: { pool: row.pool }, value: row.n })));
  r.gauge("spacelift_mothership_runs", "Runs by state (every run the store holds).", ["state"], () => RUN_STATES.map((state) => ({ labels: { state }, value: c.runs.get(state) ?? 0 })));
  r.gauge("spacelift_mothership_workers", "Live workers by pool and status.", ["pool", "status"], () => {
    const counts = new Map<string, Map<string, number>>();
    for (const pool of c.pools) counts.set(pool, new Map(WORKER_STATUSES.map((s) => [s, 0])));
    for (const w of c.live) {
      const byStatus = counts.get(w.pool);
      byStatus?.set(workerStatus(w), (byStatus.get(workerStatus(w)) ?? 0) + 1);
    }
    return [...counts].flatMap(([pool, byStatus]) => [...byStatus].map(([status, value]) => ({ labels: { pool, status }, value })));
  });
  r.gauge("spacelift_mothership_connected_launchers", "Live workers by the carrier they talk (mqtt or poll).", ["transport"], () => {
    const poll = c.live.filter((w) => mailboxes.has(w.pool, w.id)).length;
    return [
      { labels: { transport: "mqtt" }, value: c.live.length - poll },
      { labels: { transport: "poll" }, value: poll },
    ];
  });
  r.gauge("spacelift_mothership_log_stored_bytes", "Bytes of run output in the store.", [], () => [{ labels: {}, value: c.logBytes }]);
  r.add(assignmentLatency);
  // Read before each render (the gauges read `c` synchronously).
  return { registry: r, refresh: async () => void (c = await readCounts(store)) };
}

function error(status: number, code: string, message: string, headers: Record<string, string>): Response {
  return Response.json({ error: { code, message } }, { status, headers });
}
