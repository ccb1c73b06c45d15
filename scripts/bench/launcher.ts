/**
 * The compiled launcher as an operator runs it, against a real mothership and Docker, with baselines measured
 * in the same run (targets and levers in docs/performance.md):
 * - start to registered (median of ROUNDS starts), against starting the same binary for `version`;
 * - resident memory when idle (MQTT, and long-poll), against the same Bun compiling an empty program;
 * - peak resident memory while a run prints 200 MB that goes all the way to the mothership's store;
 * - trigger to the run's first log line stored, against `docker run` of the same image printing one line.
 *   bun scripts/bench/launcher.ts     BENCH_LAUNCHER=path (a built launcher, else `make build`'s), BENCH_BURST_MB=200,
 *   BENCH_LAUNCHER_ENV='{"NAME":"value"}' (more environment for every launcher started: to measure a lever)
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { buildBinaries, DemoWorld, type LauncherProcess } from "../demo/world.ts";
import { compiledFloor, median, residentSplit } from "./lib/proc.ts";
import { report } from "./lib/report.ts";

const dockerHost = process.env.DOCKER_HOST ?? "unix:///var/run/docker.sock";
const image = process.env.TEST_BUSYBOX_IMAGE ?? "spacelift-test/busybox:latest";
const ROUNDS = 5;
const BURST_MB = Number(process.env.BENCH_BURST_MB ?? 200);
const LAUNCHER_ENV = JSON.parse(process.env.BENCH_LAUNCHER_ENV ?? "{}") as Record<string, string>;

const built = buildBinaries(() => undefined);
const bin = { ...built, launcher: process.env.BENCH_LAUNCHER ?? built.launcher };
let apiUrl = "";
const world = new DemoWorld(bin, dockerHost, (m) => (apiUrl = /api (https:\/\/\S+),/.exec(m)?.[1] ?? apiUrl));

/** Polls the launcher's log every 10 ms for a record; its own timestamp says when it happened. */
async function logged(launcher: LauncherProcess, msg: string, timeoutMs = 20_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const hit = launcher.records().find((r) => r.msg === msg);
    if (hit) return Date.parse(String(hit.ts));
    if (launcher.proc.exitCode !== null || Date.now() > deadline) throw new Error(`launcher never logged "${msg}":\n${launcher.log().slice(-2000)}`);
    await Bun.sleep(10);
  }
}

/** Starts a launcher, waits for it to register and settle; its start-to-registered time and idle memory. */
async function startIdle(env: Record<string, string> = {}): Promise<{ launcher: LauncherProcess; registerMs: number; idle: { rss: number; anon: number; file: number } }> {
  const spawned = Date.now();
  const launcher = world.startLauncher({ ...LAUNCHER_ENV, ...env });
  const registered = await logged(launcher, "registered");
  await logged(launcher, "worker bundle ready");
  await Bun.sleep(3_000);
  return { launcher, registerMs: registered - spawned, idle: residentSplit(launcher.pid) ?? { rss: NaN, anon: NaN, file: NaN } };
}

/** API GET with the admin token (the data dir's) and the mothership's CA. */
async function api<T>(path: string): Promise<T> {
  const res = await fetch(`${apiUrl}/api/v1${path}`, {
    headers: { authorization: `Bearer ${readFileSync(join(world.data, "admin-token"), "utf8").trim()}` },
    tls: { ca: readFileSync(join(world.data, "ca", "ca.crt"), "utf8") },
  });
  if (!res.ok) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

/** `docker run --rm IMAGE echo ...` until it has printed its line (the CLI's own round trip to the daemon). */
function dockerRunOneLine(): number {
  const t = performance.now();
  const r = spawnSync("docker", ["run", "--rm", "--network", "none", image, "echo", "first line"], { encoding: "utf8", env: { ...process.env, DOCKER_HOST: dockerHost } });
  if (r.status !== 0 || !r.stdout.includes("first line")) throw new Error(`docker run failed: ${r.stderr}`);
  return performance.now() - t;
}

let failed = false;
try {
  await world.startMothership();
  await world.createPool("bench-pool");
  const floor = await compiledFloor();

  // Baseline for start-up: the same binary started for `version` (process start and Bun's own start-up).
  const versionMs: number[] = [];
  const versionRss: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const t = performance.now();
    const p = Bun.spawn([bin.launcher, "version"], { stdio: ["ignore", "ignore", "ignore"] });
    await p.exited;
    versionMs.push(performance.now() - t);
    versionRss.push((p.resourceUsage()?.maxRSS ?? NaN) / 1048576);
  }

  // Start to registered: the launcher's "registered" record, timed from the spawn; the last one stays, idle.
  const registerMs: number[] = [];
  let idle = { rss: NaN, anon: NaN, file: NaN };
  let launcher: LauncherProcess | undefined;
  for (let i = 0; i < ROUNDS; i++) {
    const started = await startIdle();
    registerMs.push(started.registerMs);
    if (i < ROUNDS - 1) await started.launcher.stop();
    else ({ launcher, idle } = started);
  }
  const note = `median of ${ROUNDS} starts on a shared machine`;
  report({ name: "launcher start to registered (MQTT)", value: median(registerMs), unit: "ms", baseline: median(versionMs), target: { max: 200 }, note: `${note}; baseline: the same binary running \`version\`` });
  report({ name: "launcher RSS idle (MQTT)", value: idle.rss, unit: "MB", baseline: floor.rss, target: { max: 45 }, note: "baseline: an empty program compiled by the same Bun, idle" });
  report({ name: "launcher RSS idle: anonymous", value: idle.anon, unit: "MB", note: "smaps_rollup Anonymous" });
  report({ name: "launcher RSS idle: executable and other files", value: idle.file, unit: "MB", note: "smaps_rollup Rss - Anonymous" });
  report({ name: "launcher `version` peak RSS", value: median(versionRss), unit: "MB", baseline: floor.rss, note: "the floor of this binary: it loads nothing but the entry" });

  // Trigger to the first log line in the mothership's store, against docker run printing one line.
  const oneLine = await world.stack("first-line", image, ["hello=echo first line of the run"]);
  const firstLineMs: number[] = [];
  const dockerMs: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    const run = await world.trigger(oneLine);
    await world.waitFor("the first log line", async () => {
      const page = await api<{ chunks: { data: string }[] }>(`/runs/${run}/logs?after=-1`);
      return page.chunks.some((c) => Buffer.from(c.data, "base64").toString("utf8").includes("first line of the run"));
    });
    firstLineMs.push(performance.now() - t);
    await world.runEnded(run);
    dockerMs.push(dockerRunOneLine());
  }
  report({ name: "trigger to first log line stored", value: median(firstLineMs), unit: "ms", baseline: median(dockerMs), target: { maxRatio: 3 }, note: "median of 3; baseline: `docker run --rm` of the same image echoing one line; includes the CLI's trigger" });

  // A run that prints BURST_MB; its log goes through masking, the spool and MQTT into the store.
  const burst = await world.stack("burst", image, [`burst=yes 'spacelift launcher burst benchmark line 0123456789' | head -c ${BURST_MB * 1024 * 1024}`], ["--secret", "BENCH_SECRET=bench-secret-value"]);
  const run = await world.trigger(burst);
  const t = performance.now();
  let peak = 0;
  let peakAnon = NaN;
  let shown = { state: "", reason: "", messages: [] as string[] };
  while (!["FINISHED", "FAILED", "CANCELED"].includes(shown.state)) {
    for (let i = 0; i < 25; i++) {
      const now = residentSplit(launcher!.pid);
      if (now && now.rss > peak) ({ rss: peak, anon: peakAnon } = now);
      await Bun.sleep(20);
    }
    shown = await world.showRun<typeof shown>(run);
  }
  const seconds = (performance.now() - t) / 1000;
  if (shown.state !== "FINISHED") throw new Error(`the burst run ended ${shown.state} (${shown.reason}): ${shown.messages.join("; ")}`);
  report({ name: `launcher RSS peak, ${BURST_MB} MB run log`, value: peak, unit: "MB", baseline: idle.rss, target: { max: 90 }, note: "sampled every 20 ms; baseline: the same launcher idle" });
  report({ name: `launcher RSS peak: anonymous`, value: peakAnon, unit: "MB", note: "smaps_rollup Anonymous at the peak sample" });
  report({ name: "run log to the store", value: BURST_MB / seconds, unit: "MB/s", note: `${seconds.toFixed(1)} s for ${BURST_MB} MB, trigger to FINISHED` });
  await launcher!.stop();

  // The other transport: long-poll loads neither MQTT.js nor its packet code.
  const poll = await startIdle({ SPACELIFT_WORKER_COMMS_PROTOCOL: "poll" });
  report({ name: "launcher RSS idle (long-poll)", value: poll.idle.rss, unit: "MB", baseline: floor.rss, target: { max: 45 }, note: "baseline: an empty program compiled by the same Bun, idle" });
  await poll.launcher.stop();
} catch (err) {
  failed = true;
  console.error(`launcher bench failed: ${err instanceof Error ? err.message : String(err)}`);
  for (const l of world.launchers.slice(-1)) console.error(l.log().split("\n").slice(-10).join("\n"));
  console.error(readFileSync(`${world.dir}/mothership.log`, "utf8").split("\n").slice(-15).join("\n"));
} finally {
  await world.close();
}
process.exit(failed ? 1 : 0);
