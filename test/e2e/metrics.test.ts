// Prometheus metrics with the compiled binaries, a real mothership, real launchers and the real dockerd:
// the launcher's SPACELIFT_LAUNCHER_METRICS_ADDR and the mothership's /metrics (admin token) are scraped
// and parsed by a strict exposition reader (HELP/TYPE, names, units, label syntax, cumulative buckets);
// a run moves runs_total{reason="ok"}, the latency histograms and the log counters; /healthz is 200 for a
// registered launcher whose Docker answers and 503 naming Docker for one whose Docker does not.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { buildBinaries, DemoWorld, type Binaries } from "../../scripts/demo/world.ts";
import { freePort } from "../../scripts/testenv/util.ts";
import { dockerTestEnv } from "../support/env.ts";
import { parseExposition, sampleValue, type PromFamily } from "../support/prometheus.ts";

setDefaultTimeout(120_000);
const docker = dockerTestEnv();

interface RunJson { id: string; state: string; reason: string | null }

const quiet = () => {};

describe.skipIf(!docker)("metrics", () => {
  let bin: Binaries;
  let world: DemoWorld;

  beforeAll(async () => {
    bin = buildBinaries(quiet);
    world = new DemoWorld(bin, docker!.host, quiet);
    await world.startMothership();
    await world.createPool("e2e-metrics");
  });

  afterAll(async () => {
    await world?.close();
  });

  const mothershipUrl = () => (JSON.parse(readFileSync(join(world.data, "endpoint.json"), "utf8")) as { http_url: string }).http_url;
  const adminToken = () => readFileSync(join(world.data, "admin-token"), "utf8").trim();
  const tls = () => ({ ca: readFileSync(join(world.data, "ca", "ca.crt"), "utf8") });

  async function scrapeLauncher(port: number): Promise<Map<string, PromFamily>> {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    return parseExposition(await res.text());
  }

  async function scrapeMothership(): Promise<Map<string, PromFamily>> {
    const res = await fetch(`${mothershipUrl()}/metrics`, { headers: { authorization: `Bearer ${adminToken()}` }, tls: tls() });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    return parseExposition(await res.text());
  }

  test("a launcher's /metrics and /healthz, and the mothership's /metrics, before and after a run", async () => {
    const port = await freePort();
    const launcher = world.startLauncher({ SPACELIFT_LAUNCHER_METRICS_ADDR: `127.0.0.1:${port}` });
    await world.waitFor("worker registered", async () => ((await world.workers()).length === 1 ? true : null));
    await world.waitFor("healthz ready", async () => (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => null))?.status === 200);
    expect(launcher.records().some((r) => r.msg === "metrics listening")).toBe(true);

    const before = await scrapeLauncher(port);
    for (const f of before.keys()) expect(f).toStartWith("spacelift_launcher_");
    expect(sampleValue(before, "spacelift_launcher_runs_total", { reason: "ok" })).toBe(0);
    expect(sampleValue(before, "spacelift_launcher_connected", { transport: "mqtt" })).toBe(1);
    expect(sampleValue(before, "spacelift_launcher_registered")).toBe(1);
    expect(sampleValue(before, "spacelift_launcher_docker_up")).toBe(1);
    expect(sampleValue(before, "spacelift_launcher_worker_status", { status: "IDLE" })).toBe(1);
    expect(sampleValue(before, "spacelift_launcher_worker_status", { status: "BUSY" })).toBe(0);
    expect(sampleValue(before, "spacelift_launcher_log_sent_bytes_total")).toBe(0);
    expect(before.get("spacelift_launcher_schedule_to_running_seconds")?.type).toBe("histogram");

    const stack = await world.stack("metrics", docker!.image, ["plan=echo one line of output"]);
    const run = await world.trigger(stack);
    expect(await world.runEnded<RunJson>(run)).toMatchObject({ state: "FINISHED", reason: "ok" });
    const after = await world.waitFor("the run counted and its spool emptied", async () => {
      const m = await scrapeLauncher(port);
      return sampleValue(m, "spacelift_launcher_runs_total", { reason: "ok" }) === 1 && sampleValue(m, "spacelift_launcher_spool_runs") === 0 ? m : null;
    });
    expect(sampleValue(after, "spacelift_launcher_runs_total", { reason: "failed" })).toBe(0);
    expect(sampleValue(after, "spacelift_launcher_schedule_to_running_seconds_count")).toBe(1);
    expect(sampleValue(after, "spacelift_launcher_schedule_to_running_seconds_sum")).toBeGreaterThan(0);
    expect(sampleValue(after, "spacelift_launcher_log_sent_bytes_total")).toBeGreaterThanOrEqual("one line of output\n".length);
    expect(sampleValue(after, "spacelift_launcher_log_sent_chunks_total")).toBeGreaterThanOrEqual(1);
    expect(sampleValue(after, "spacelift_launcher_spool_chunks")).toBe(0);
    expect(sampleValue(after, "spacelift_launcher_reconnects_total")).toBe(0);

    // The mothership: the admin token is required, then the store's view of the same facts.
    const anonymous = await fetch(`${mothershipUrl()}/metrics`, { tls: tls() });
    expect(anonymous.status).toBe(401);
    expect(((await anonymous.json()) as { error: { code: string } }).error.code).toBe("unauthorized");
    expect((await fetch(`${mothershipUrl()}/metrics`, { headers: { authorization: "Bearer wrong" }, tls: tls() })).status).toBe(401);
    const m = await scrapeMothership();
    for (const f of m.keys()) expect(f).toStartWith("spacelift_mothership_");
    expect(sampleValue(m, "spacelift_mothership_queued_runs", { pool: world.pool })).toBe(0);
    expect(sampleValue(m, "spacelift_mothership_workers", { pool: world.pool, status: "IDLE" })).toBe(1);
    expect(sampleValue(m, "spacelift_mothership_workers", { pool: world.pool, status: "BUSY" })).toBe(0);
    expect(sampleValue(m, "spacelift_mothership_connected_launchers", { transport: "mqtt" })).toBe(1);
    expect(sampleValue(m, "spacelift_mothership_connected_launchers", { transport: "poll" })).toBe(0);
    expect(sampleValue(m, "spacelift_mothership_runs", { state: "FINISHED" })).toBe(1);
    expect(sampleValue(m, "spacelift_mothership_assignment_latency_seconds_count")).toBe(1);
    expect(sampleValue(m, "spacelift_mothership_log_stored_bytes")).toBeGreaterThanOrEqual("one line of output\n".length);

    await launcher.stop();
    await world.waitFor("no live worker", async () => (await world.workers()).length === 0);
  });

  test("a poll launcher whose Docker does not answer: /healthz 503 naming Docker, docker_up 0; the mothership counts it under poll", async () => {
    const port = await freePort();
    const launcher = world.startLauncher({
      SPACELIFT_LAUNCHER_METRICS_ADDR: `127.0.0.1:${port}`,
      SPACELIFT_WORKER_COMMS_PROTOCOL: "poll",
      DOCKER_HOST: `unix://${join(world.dir, "no-docker.sock")}`,
      SPACELIFT_LAUNCHER_SCRATCH_DIR: join(world.dir, "scratch-no-docker"),
    });
    await world.waitFor("worker registered", async () => ((await world.workers()).length === 1 ? true : null));
    const health = await world.waitFor("healthz answers", async () => {
      const res = await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => null);
      return res ? { status: res.status, body: await res.text() } : null;
    });
    expect(health.status).toBe(503);
    expect(health.body).toContain("Docker does not answer");
    expect(health.body).not.toContain("not connected");
    const l = await scrapeLauncher(port);
    expect(sampleValue(l, "spacelift_launcher_docker_up")).toBe(0);
    expect(sampleValue(l, "spacelift_launcher_connected", { transport: "poll" })).toBe(1);
    const m = await world.waitFor("the mothership sees a poll launcher", async () => {
      const s = await scrapeMothership();
      return sampleValue(s, "spacelift_mothership_connected_launchers", { transport: "poll" }) === 1 ? s : null;
    });
    expect(sampleValue(m, "spacelift_mothership_connected_launchers", { transport: "mqtt" })).toBe(0);
    // Anything but the two paths is a 404 that says what is served.
    const other = await fetch(`http://127.0.0.1:${port}/`);
    expect(other.status).toBe(404);
    expect(await other.text()).toContain("/metrics and /healthz");
    await launcher.stop();
  });

  test("an address the launcher cannot listen on stops it at start with one line naming the variable", async () => {
    const taken = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("") });
    try {
      const launcher = world.startLauncher({ SPACELIFT_LAUNCHER_METRICS_ADDR: `127.0.0.1:${taken.port}`, SPACELIFT_LAUNCHER_SCRATCH_DIR: join(world.dir, "scratch-taken") });
      expect(await launcher.proc.exited).not.toBe(0);
      expect(launcher.log()).toContain(`SPACELIFT_LAUNCHER_METRICS_ADDR: cannot listen on 127.0.0.1:${taken.port}`);
    } finally {
      await taken.stop(true);
    }
  });
});
