/**
 * SPACELIFT_LAUNCHER_METRICS_ADDR: the launcher's `/metrics` (Prometheus text format) and `/healthz`
 * on a plain HTTP listener. Opt-in and loaded only when the variable is set (launch.ts imports this
 * file dynamically), so a launcher without it pays nothing. The agent reports events through the
 * `AgentMetrics` interface; what is a state (worker status, Docker, the spool) is read at scrape time.
 *
 * `/healthz` answers 200 only while the launcher is registered with the mothership and its Docker
 * answers, else 503 with the reasons, one per line: for a load balancer or a systemd watchdog.
 */
import { errorMessage, SpaceliftError } from "../../errors.ts";
import type { Logger } from "../../log/logger.ts";
import { EXPOSITION_CONTENT_TYPE, Registry } from "../../metrics/prometheus.ts";
import type { DockerHealthReport } from "../../protocol/messages.ts";
import { RUN_REASONS, WORKER_STATUSES, type RunReason } from "../../protocol/states.ts";
import type { AgentMetrics } from "./agent.ts";
import { reportedStatus, type WorkerState } from "./worker-state.ts";

export interface LauncherProbes {
  workerState(): WorkerState;
  docker(): DockerHealthReport;
  /** Runs in the spool and their chunks the mothership has not acknowledged yet. */
  spool(): { runs: number; chunks: number };
  /** The carrier in use: `mqtt` or `poll`. */
  transport: string;
}

class LauncherMetrics implements AgentMetrics {
  readonly registry = new Registry();
  private readonly runs = this.registry.counter("spacelift_launcher_runs_total", "Runs this launcher reported finished, by final reason.", ["reason"]);
  private readonly scheduleToRunning = this.registry.histogram(
    "spacelift_launcher_schedule_to_running_seconds",
    "Time from a run's schedule message to its first phase in the container (decrypt, policy, image pull, container start).",
  );
  private readonly logBytes = this.registry.counter("spacelift_launcher_log_sent_bytes_total", "Bytes of run output sent to the mothership, resends included.");
  private readonly logChunks = this.registry.counter("spacelift_launcher_log_sent_chunks_total", "Log chunks sent to the mothership, resends included.");
  private readonly reconnects = this.registry.counter("spacelift_launcher_reconnects_total", "Connections to the mothership made again after one dropped.");
  private readonly pending = new Map<string, number>();
  private isConnected = false;
  private isRegistered = false;

  constructor(private readonly probes: LauncherProbes) {
    const r = this.registry;
    for (const reason of RUN_REASONS) this.runs.inc({ reason }, 0);
    r.gauge("spacelift_launcher_connected", "1 while the connection to the mothership is up, by carrier.", ["transport"], () => [
      { labels: { transport: probes.transport }, value: this.isConnected ? 1 : 0 },
    ]);
    r.gauge("spacelift_launcher_registered", "1 once the mothership answered hello on the current connection.", [], () => [{ labels: {}, value: this.isRegistered ? 1 : 0 }]);
    r.gauge("spacelift_launcher_worker_status", "1 for the status this worker reports to the mothership, 0 for the others.", ["status"], () => {
      const now = reportedStatus(probes.workerState());
      return WORKER_STATUSES.map((status) => ({ labels: { status }, value: status === now ? 1 : 0 }));
    });
    r.gauge("spacelift_launcher_docker_up", "1 while the Docker Engine answers /_ping.", [], () => [{ labels: {}, value: probes.docker().ok ? 1 : 0 }]);
    r.gauge("spacelift_launcher_spool_runs", "Runs in the log spool (output or a result not yet acknowledged).", [], () => [{ labels: {}, value: probes.spool().runs }]);
    r.gauge("spacelift_launcher_spool_chunks", "Log chunks in the spool the mothership has not acknowledged.", [], () => [{ labels: {}, value: probes.spool().chunks }]);
  }

  scheduled(run: string): void {
    // A rejected schedule never runs: keep the map bounded rather than track every way a run can end.
    if (this.pending.size >= 64) this.pending.delete(this.pending.keys().next().value!);
    this.pending.set(run, performance.now());
  }

  running(run: string): void {
    const since = this.pending.get(run);
    if (since === undefined) return;
    this.pending.delete(run);
    this.scheduleToRunning.observe((performance.now() - since) / 1000);
  }

  runFinished(run: string, reason: RunReason): void {
    this.pending.delete(run);
    this.runs.inc({ reason });
  }

  logSent(bytes: number): void {
    this.logChunks.inc();
    this.logBytes.inc({}, bytes);
  }

  connection(up: boolean, reconnect: boolean): void {
    this.isConnected = up;
    if (!up) this.isRegistered = false;
    if (up && reconnect) this.reconnects.inc();
  }

  registered(): void {
    this.isRegistered = true;
  }

  /** Why the launcher is not ready, one reason a line; empty when it is. */
  notReady(): string[] {
    const reasons: string[] = [];
    if (!this.isConnected) reasons.push("not connected to the mothership");
    else if (!this.isRegistered) reasons.push("connected, but the mothership has not answered hello yet");
    const docker = this.probes.docker();
    if (!docker.ok) reasons.push(`Docker does not answer: ${docker.message}`);
    return reasons;
  }
}

export interface MetricsServer {
  readonly metrics: LauncherMetrics;
  readonly url: string;
  stop(): Promise<void>;
}

/** Listens on `host:port` (SPACELIFT_LAUNCHER_METRICS_ADDR, checked by the configuration). */
export function startMetricsServer(addr: { host: string; port: number }, probes: LauncherProbes, logger: Logger): MetricsServer {
  const metrics = new LauncherMetrics(probes);
  let server: ReturnType<typeof Bun.serve>;
  try {
    server = Bun.serve({ hostname: addr.host, port: addr.port, fetch: (req) => answer(req, metrics) });
  } catch (err) {
    const where = `${addr.host.includes(":") ? `[${addr.host}]` : addr.host}:${addr.port}`;
    throw new SpaceliftError("config-invalid", `SPACELIFT_LAUNCHER_METRICS_ADDR: cannot listen on ${where} (${errorMessage(err)}); give a free port of an address of this host`);
  }
  const host = addr.host.includes(":") ? `[${addr.host}]` : addr.host;
  const url = `http://${host}:${server.port}`;
  logger.info("metrics listening", { url: `${url}/metrics`, healthz: `${url}/healthz` });
  return { metrics, url, stop: () => server.stop(true) };
}

function answer(req: Request, metrics: LauncherMetrics): Response {
  const { pathname } = new URL(req.url);
  if (pathname !== "/metrics" && pathname !== "/healthz") return text(404, "not found: the launcher serves /metrics and /healthz\n");
  if (req.method !== "GET" && req.method !== "HEAD") return text(405, "method not allowed: use GET\n", { allow: "GET, HEAD" });
  if (pathname === "/metrics") return new Response(metrics.registry.render(), { headers: { "content-type": EXPOSITION_CONTENT_TYPE } });
  const reasons = metrics.notReady();
  return reasons.length === 0 ? text(200, "ok\n") : text(503, reasons.join("\n") + "\n");
}

function text(status: number, body: string, headers: Record<string, string> = {}): Response {
  return new Response(body, { status, headers: { "content-type": "text/plain; charset=utf-8", ...headers } });
}
