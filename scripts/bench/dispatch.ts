/**
 * The run supervisor's costs (targets in docs/performance.md), against Docker's own in the same run:
 * - dispatch overhead: execute() -> container running, minus a raw create+start of the same image,
 *   p50 over 30 runs (target <= 25 ms);
 * - log throughput: 200 MB of output through attach, marker parsing, masking of 20 secrets, chunking and
 *   a sink, against `docker logs -f` (our client's containerLogs follow) on the same output (target >= 0.7x),
 *   with the launcher's peak RSS during the burst.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadLauncherConfig } from "../../src/config/launcher-config.ts";
import { createDockerClient } from "../../src/docker/client.ts";
import type { Fields, Logger } from "../../src/log/logger.ts";
import type { LogChunk, RunSink } from "../../src/launcher/run-executor.ts";
import { createRunSupervisor } from "../../src/launcher/supervisor/run-supervisor.ts";
import { parseRunSpec } from "../../src/protocol/run-spec.ts";
import { percentile } from "./lib/proc.ts";
import { report } from "./lib/report.ts";

const root = join(import.meta.dir, "../..");
const host = process.env.DOCKER_HOST ?? "unix:///var/run/docker.sock";
const image = process.env.TEST_BUSYBOX_IMAGE ?? "spacelift-test/busybox:latest";
const arch = process.arch === "arm64" ? "aarch64" : "x86_64";
const launcher = join(root, "dist", `spacelift-launcher-${arch}`);
const RUNS = 30;
const BURST_BYTES = 200 * 1024 * 1024;
const LABEL = { "io.spacelift-bench": "dispatch" };

if (!existsSync(launcher)) {
  const r = spawnSync(process.execPath, ["build/build.ts", "--target", arch], { cwd: root, stdio: "inherit" });
  if (r.status !== 0) throw new Error("building the launcher failed");
}

/** A logger that only remembers when the last container started (the supervisor logs that event). */
let lastStarted = 0;
const recorder: Logger = {
  debug: () => {},
  info: (msg: string) => {
    if (msg === "container started") lastStarted = performance.now();
  },
  warn: (msg: string, fields?: Fields) => console.error(msg, fields),
  error: (msg: string, fields?: Fields) => console.error(msg, fields),
  child: () => recorder,
};

const secrets = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`BENCH_SECRET_${i}`, `secret-${i}-${crypto.randomUUID()}`]));
const scratch = mkdtempSync(join(tmpdir(), "bench-dispatch-"));
const docker = createDockerClient({ host });
const config = loadLauncherConfig(
  { DOCKER_HOST: host, SPACELIFT_LAUNCHER_SCRATCH_DIR: scratch, SPACELIFT_MASK_ENVS: Object.keys(secrets).join(","), ...secrets },
  { requireCredentials: false },
);
const supervisor = createRunSupervisor({ docker, config, logger: recorder, workerId: "bench", poolId: "bench", selfExecutable: launcher });

let counter = 0;
function spec(commands: string[]) {
  counter++;
  return parseRunSpec({
    id: `01HZY8Q3V6X9J2K4M5N6P7${String(counter).padStart(4, "0")}`,
    type: "TRACKED",
    stack: { id: "bench", name: "Bench", branch: "main", repository: "org/repo" },
    commit: { hash: "abc", branch: "main", author: "bench", message: "bench" },
    runner_image: image,
    phases: [{ name: "planning", commands }],
  });
}

class CountingSink implements RunSink {
  bytes = 0;
  phase(): void {}
  async log(chunk: LogChunk): Promise<void> {
    this.bytes += chunk.data.length;
  }
}

const p50 = (values: number[]) => percentile(values, 50);

const never = new AbortController().signal;
try {
  await supervisor.ready();
  // Warm-up: image, bundle, daemon caches.
  await supervisor.execute(spec(["true"]), new CountingSink(), never);

  const ours: number[] = [];
  const raw: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    const result = await supervisor.execute(spec(["true"]), new CountingSink(), never);
    if (result.reason !== "ok") throw new Error(`bench run failed: ${result.reason} ${result.messages.join("; ")}`);
    ours.push(lastStarted - t0);

    const t1 = performance.now();
    const id = await docker.containerCreate({ image, entrypoint: ["/bin/true"], labels: LABEL });
    await docker.containerStart(id);
    raw.push(performance.now() - t1);
    await docker.containerWait(id);
    await docker.containerRemove(id, { force: true });
  }
  const overheads = ours.map((o, i) => o - raw[i]!);
  report({
    name: "dispatch overhead over Docker's create+start",
    value: p50(overheads),
    unit: "ms",
    baseline: p50(raw),
    target: { max: 25 },
    note: `p50 of ${RUNS}: execute -> running (${p50(ours).toFixed(1)} ms) minus a raw create+start of the same image (the baseline)`,
  });

  // Log throughput: the same output through the supervisor and through `docker logs -f`.
  const burst = `yes 'a log line of terraform-ish output, with words and numbers 0123456789' | head -c ${BURST_BYTES}`;
  Bun.gc(true);
  const rssBefore = process.memoryUsage.rss();
  let peakRss = 0;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), 20);
  const sink = new CountingSink();
  const t2 = performance.now();
  const result = await supervisor.execute(spec([burst]), sink, never);
  const oursMs = performance.now() - t2;
  clearInterval(sampler);
  if (result.reason !== "ok" || sink.bytes < BURST_BYTES) throw new Error(`burst run: ${result.reason}, ${sink.bytes} bytes`);

  const t3 = performance.now();
  const id = await docker.containerCreate({ image, entrypoint: ["/bin/sh", "-c", burst], labels: LABEL });
  await docker.containerStart(id);
  let logged = 0;
  for await (const frame of docker.containerLogs(id, { follow: true })) logged += frame.data.length;
  const logsMs = performance.now() - t3;
  await docker.containerRemove(id, { force: true });
  if (logged < BURST_BYTES) throw new Error(`docker logs -f gave ${logged} bytes`);

  const mbps = (bytes: number, ms: number) => bytes / 1048576 / (ms / 1000);
  const oursRate = mbps(sink.bytes, oursMs);
  const logsRate = mbps(logged, logsMs);
  report({
    name: "log path, 200 MB with 20 secrets masked",
    value: oursRate,
    unit: "MB/s",
    baseline: logsRate,
    target: { minRatio: 0.7 },
    note: "attach, markers, masking, chunking into a counting sink; baseline: `docker logs -f` of the same output with our client",
  });
  report({ name: "log path: RSS growth of the supervisor's process", value: (peakRss - rssBefore) / 1048576, unit: "MB", note: `peak during the 200 MB burst minus ${(rssBefore / 1048576).toFixed(0)} MB before it, in this bench's own process (from source)` });
} finally {
  for (const c of await docker.containerList({ labels: LABEL })) await docker.containerRemove(c.id, { force: true });
  await docker.close();
  rmSync(scratch, { recursive: true, force: true });
}
