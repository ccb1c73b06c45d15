/**
 * How one mothership carries many launchers (targets in docs/performance.md, "Mothership fan-out").
 * Each setup: a real `mothership serve` (scripts/bench/lib/fanout-setup.ts: SQLite, the embedded broker,
 * one replica), then two on one PostgreSQL database and a Mosquitto (scripts/bench/lib/fanout-replicas.ts,
 * triggers through both APIs in turn); 10 pools of one stack each, and simulated launchers in this
 * process that speak the real protocol over the real broker (scripts/bench/lib/sim-launchers.ts),
 * spread evenly over the pools. For each fleet size (500 and 2,000, a fresh setup each):
 * - connect: all registered, and per launcher; the mothership's RSS per connected launcher;
 * - 300 instant runs, not measured: the mothership's JIT warms up on every path a run takes;
 * - 1,000 instant runs over the 10 pools, triggered over the API 16 at a time: assignment latency
 *   (trigger request sent -> `schedule` received by a sim, matched by run id) p50/p99, runs/s,
 *   distinct launchers used over those idle at the start, the mothership's CPU per run;
 * - 1,000 runs that hold their launcher 1 s: assignment p50/p99, runs/s.
 * Then the queue depth (another fresh mothership): 100 launchers of one pool connect, take 300 runs to
 * warm up and are drained,
 * the pool's queue is filled to 1,000, 3,000 and 10,000 runs, and at each depth the launchers are
 * undrained and take runs: the mothership's CPU per assignment over 300 assignments in steady state.
 *   bun scripts/bench.ts fanout    (or bun scripts/bench/fanout.ts inside the test environment)
 * BENCH_FANOUT_SETUPS=embedded,replicas BENCH_FANOUT_SIZES=500,2000 BENCH_FANOUT_DEPTHS=1000,3000,10000 BENCH_FANOUT_VERIFY=1 (check every
 * downlink signature as a launcher does), BENCH_MOTHERSHIP=path (another mothership, e.g. an older build).
 */
import { percentile } from "./lib/proc.ts";
import { report } from "./lib/report.ts";
import { AdminApi, cpuMs, createPools, openFilesLimit, rssKb, startEmbedded, type BenchPool, type FanoutSetup } from "./lib/fanout-setup.ts";
import { startReplicas } from "./lib/fanout-replicas.ts";
import { connectFleet, eachBounded, stopFleet, type RunBehaviour, type SimHooks, type SimLauncher } from "./lib/sim-launchers.ts";

/** A comma list of whole numbers from the environment; "" is none (e.g. no queue depths). */
const list = (v: string | undefined, d: number[]) => (v === undefined ? d : v.split(",").filter((x) => x.trim() !== "").map(Number));
/** A comma list of names from the environment. */
const names = (v: string | undefined, d: string[]) => (v === undefined ? d : v.split(",").map((x) => x.trim()).filter((x) => x !== ""));
const SIZES = list(process.env.BENCH_FANOUT_SIZES, [500, 2000]);
const DEPTHS = list(process.env.BENCH_FANOUT_DEPTHS, [1000, 3000, 10_000]);
const VERIFY = process.env.BENCH_FANOUT_VERIFY === "1";
const POOLS = 10;
const RUNS = 1000;
/** Instant runs before anything is measured, on each fresh mothership. */
const WARMUP = 300;
const CONNECT_CONCURRENCY = 50;
const TRIGGER_CONCURRENCY = 16;
const HOLD_MS = 1000;
const QUEUE_LAUNCHERS = 100;
const QUEUE_SAMPLE = 300;
/** The setups measured (BENCH_FANOUT_SETUPS=embedded,replicas picks some). */
const ALL_SETUPS: Record<string, () => Promise<FanoutSetup>> = { embedded: startEmbedded, replicas: startReplicas };
const SETUPS = names(process.env.BENCH_FANOUT_SETUPS, Object.keys(ALL_SETUPS)).map((name) => {
  const start = ALL_SETUPS[name];
  if (!start) throw new Error(`BENCH_FANOUT_SETUPS: no setup ${JSON.stringify(name)}; there are ${Object.keys(ALL_SETUPS).join(", ")}`);
  return start;
});

const started = performance.now();
const progress = (m: string) => console.error(`fanout [${((performance.now() - started) / 1000).toFixed(0)} s]: ${m}`);
const fmt = (n: number) => n.toLocaleString("en-US");

/** What the sims report goes to the scenario running now. */
interface Scenario {
  schedule(sim: SimLauncher, run: string, at: number): RunBehaviour;
  finished?(run: string): void;
}
let scenario: Scenario = { schedule: () => ({ kind: "instant" }) };
const problems = new Map<string, number>();
const hooks: SimHooks = {
  onSchedule: (sim, run, at) => scenario.schedule(sim, run, at),
  onFinished: (_sim, run) => scenario.finished?.(run),
  onProblem: (_sim, what) => problems.set(what, (problems.get(what) ?? 0) + 1),
};
const problemText = () => (problems.size ? [...problems].map(([k, n]) => `${n} x ${k}`).join(", ") : "no errors");

async function waitUntil(what: string, ok: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await ok())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await Bun.sleep(20);
  }
}

/** Until no run is held by a launcher (SCHEDULED or PREPARING; nothing here reaches RUNNING). */
async function settled(api: AdminApi, pool?: string): Promise<void> {
  const q = pool ? `&pool=${pool}` : "";
  await waitUntil("the runs to end", async () => {
    for (const state of ["SCHEDULED", "PREPARING"]) if ((await api.call<unknown[]>("GET", `/runs?state=${state}${q}`)).length > 0) return false;
    return true;
  }, 60_000);
}

/** `count` runs over the stacks in turn, TRIGGER_CONCURRENCY at a time; `sent` gets each run id with when its trigger request left. */
async function trigger(api: AdminApi, stacks: readonly string[], count: number, sent: (run: string, at: number) => void = () => {}): Promise<void> {
  await eachBounded(Array.from({ length: count }, (_, i) => stacks[i % stacks.length]!), TRIGGER_CONCURRENCY, async (stack) => {
    const at = performance.now();
    const run = await api.call<{ id: string }>("POST", "/runs", { stack });
    sent(run.id, at);
  });
}

/** One burst of `runs` runs over every pool: latencies, launchers used, CPU. */
async function burst(setup: FanoutSetup, api: AdminApi, pools: BenchPool[], sims: SimLauncher[], how: RunBehaviour, runs = RUNS) {
  const sentAt = new Map<string, number>();
  const scheduledAt = new Map<string, number>();
  const used = new Set<string>();
  let finished = 0;
  let lastSchedule = 0;
  let lastFinish = 0;
  scenario = {
    schedule: (sim, run, at) => {
      scheduledAt.set(run, at);
      used.add(sim.worker);
      lastSchedule = at;
      return how;
    },
    finished: () => {
      finished++;
      lastFinish = performance.now();
    },
  };
  const idleAtStart = sims.filter((s) => s.run === null).length;
  const cpu0 = cpuMs(setup.pids);
  const t0 = performance.now();
  await trigger(api, pools.map((p) => p.stack), runs, (run, at) => sentAt.set(run, at));
  await waitUntil(`${runs} runs scheduled and finished`, () => scheduledAt.size >= runs && finished >= runs, 120_000);
  await settled(api);
  const cpu = cpuMs(setup.pids) - cpu0;
  // Every run of a burst must end FINISHED: a failed one means the numbers are not of working runs.
  const failed = await api.call<Array<{ id: string; reason: string | null }>>("GET", "/runs?state=FAILED");
  if (failed.length > 0) throw new Error(`${failed.length} runs FAILED (first: ${failed[0]!.reason ?? "no reason"}); the simulated launchers saw ${problemText()}`);
  // From the trigger request leaving to the launcher holding its schedule: what an operator waits.
  const latencies = [...sentAt].map(([run, sent]) => (scheduledAt.get(run) ?? NaN) - sent);
  const end = how.kind === "instant" ? lastSchedule : lastFinish;
  return { latencies, used: used.size, idleAtStart, cpuPerRun: cpu / runs, runsPerSecond: runs / ((end - t0) / 1000) };
}

async function fleetScenario(start: () => Promise<FanoutSetup>, n: number): Promise<void> {
  const setup = await start();
  const tag = `(${setup.name})`;
  const api = new AdminApi(setup);
  let sims: SimLauncher[] = [];
  try {
    const fds = Math.min(openFilesLimit("self"), ...setup.pids.map(openFilesLimit));
    if (fds < n + 256) throw new Error(`the open-files limit is ${fds}, too low for ${n} TLS connections: raise it (ulimit -n ${n + 1024}) and run again`);
    progress(`N=${fmt(n)}: ${POOLS} pools on ${setup.apiUrls.join(", ")}, mothership ${setup.mothership}`);
    const pools = await createPools(api, POOLS, `fanout-${n}`);
    await Bun.sleep(1_000);
    const rss0 = rssKb(setup.pids);
    const t0 = performance.now();
    sims = await connectFleet(pools.map((p) => ({ token: p.token, keyPem: p.keyPem, brokerUrl: setup.brokerUrl })), n, hooks, { concurrency: CONNECT_CONCURRENCY, verify: VERIFY });
    const all = Math.max(...sims.map((s) => s.registeredAt)) - t0;
    const each = sims.map((s) => s.registeredAt - s.startedAt);
    progress(`N=${fmt(n)}: all registered in ${all.toFixed(0)} ms`);
    await Bun.sleep(2_000);
    const rss1 = rssKb(setup.pids);
    const connectNote = `${CONNECT_CONCURRENCY} connecting at a time, each TLS + subscribe + hello -> registered; open-files limit ${fds}; mothership ${setup.mothership}`;
    report({ name: `fanout N=${fmt(n)}: all registered ${tag}`, value: all, unit: "ms", note: connectNote });
    report({ name: `fanout N=${fmt(n)}: connect per launcher ${tag}`, value: all / n, unit: "ms", note: `all registered / N; one launcher's own connect -> registered: p50 ${percentile(each, 50).toFixed(0)} ms, p99 ${percentile(each, 99).toFixed(0)} ms` });
    report({ name: `fanout N=${fmt(n)}: mothership RSS per launcher ${tag}`, value: (rss1 - rss0) / n, unit: "kB", note: `(VmRSS with N registered, 2 s after - VmRSS before any connected) / N: ${fmt(rss0)} -> ${fmt(rss1)} kB` });

    // A warm mothership, as one that has been up for a while: its JIT has seen every path a run takes.
    await burst(setup, api, pools, sims, { kind: "instant" }, WARMUP);
    progress(`N=${fmt(n)}: ${fmt(RUNS)} instant runs`);
    const instant = await burst(setup, api, pools, sims, { kind: "instant" });
    const what = `${fmt(RUNS)} runs over ${POOLS} pools after ${WARMUP} unmeasured, ${TRIGGER_CONCURRENCY} triggers in flight; trigger request sent -> schedule received by the sim`;
    report({ name: `fanout N=${fmt(n)}: instant runs, assignment p50 ${tag}`, value: percentile(instant.latencies, 50), unit: "ms", note: what });
    report({ name: `fanout N=${fmt(n)}: instant runs, assignment p99 ${tag}`, value: percentile(instant.latencies, 99), unit: "ms", ...(n >= 2000 ? { target: { max: 50 } } : {}), note: what });
    report({ name: `fanout N=${fmt(n)}: instant runs per second ${tag}`, value: instant.runsPerSecond, unit: "runs/s", note: "first trigger sent -> last schedule received" });
    const wanted = Math.min(RUNS, instant.idleAtStart);
    report({
      name: `fanout N=${fmt(n)}: launchers used / idle at start ${tag}`,
      value: instant.used / wanted,
      unit: "x",
      target: { min: 1 },
      note: `${instant.used} distinct launchers got the ${fmt(RUNS)} runs, ${instant.idleAtStart} were idle at the start: 1.0 means no launcher got a second run while one sat idle (divided by min(runs, idle) = ${wanted})`,
    });
    report({ name: `fanout N=${fmt(n)}: mothership CPU per run ${tag}`, value: instant.cpuPerRun, unit: "ms", note: `utime+stime of the mothership from the first trigger until no run is held, / ${fmt(RUNS)}; includes the API calls, heartbeats of N launchers and ${problemText()}` });

    progress(`N=${fmt(n)}: ${fmt(RUNS)} runs holding ${HOLD_MS} ms`);
    const held = await burst(setup, api, pools, sims, { kind: "hold", ms: HOLD_MS });
    const heldNote = `${fmt(RUNS)} runs that hold their launcher ${HOLD_MS} ms; trigger request sent -> schedule received`;
    report({ name: `fanout N=${fmt(n)}: runs holding 1 s, assignment p50 ${tag}`, value: percentile(held.latencies, 50), unit: "ms", note: heldNote });
    report({ name: `fanout N=${fmt(n)}: runs holding 1 s, assignment p99 ${tag}`, value: percentile(held.latencies, 99), unit: "ms", note: heldNote + (n < RUNS ? ` (with ${n} launchers, runs past the first ${n} wait for one)` : "") });
    report({ name: `fanout N=${fmt(n)}: runs holding 1 s per second ${tag}`, value: held.runsPerSecond, unit: "runs/s", note: "first trigger sent -> last run_finished sent" });
  } catch (err) {
    console.error(setup.logTail(15));
    throw err;
  } finally {
    await stopFleet(sims, CONNECT_CONCURRENCY);
    await setup.stop();
  }
}

/** CPU per assignment with the pool's queue at each depth (100 launchers of the pool, drained while the queue fills). */
async function queueScenario(start: () => Promise<FanoutSetup>): Promise<void> {
  const setup = await start();
  const tag = `(${setup.name})`;
  const api = new AdminApi(setup);
  let sims: SimLauncher[] = [];
  try {
    progress(`queue: mothership ${setup.mothership}`);
    const [pool] = await createPools(api, 1, "fanout-queue");
    sims = await connectFleet([{ token: pool!.token, keyPem: pool!.keyPem, brokerUrl: setup.brokerUrl }], QUEUE_LAUNCHERS, hooks, { concurrency: CONNECT_CONCURRENCY, verify: VERIFY });
    let warm = 0;
    scenario = { schedule: () => (warm++, { kind: "instant" }) };
    await trigger(api, [pool!.stack], WARMUP);
    await waitUntil("the warm-up runs", () => warm >= WARMUP, 60_000);
    await settled(api, pool!.id);
    await api.call("POST", `/pools/${pool!.id}/drain`, {});
    let triggered = 0;
    let assigned = 0;
    let baseline: number | null = null;
    for (const depth of DEPTHS) {
      const queued = triggered - assigned;
      const t = performance.now();
      await trigger(api, [pool!.stack], depth - queued);
      triggered += depth - queued;
      progress(`queue: ${fmt(depth - queued)} runs queued in ${((performance.now() - t) / 1000).toFixed(1)} s (depth ${fmt(depth)})`);
      // Steady state: from the moment every launcher has had its first run, QUEUE_SAMPLE more.
      const from = QUEUE_LAUNCHERS;
      const to = QUEUE_LAUNCHERS + QUEUE_SAMPLE;
      let count = 0;
      let cpuFrom = NaN;
      let cpuTo = NaN;
      let draining = false;
      scenario = {
        schedule: () => {
          count++;
          if (count === from) cpuFrom = cpuMs(setup.pids);
          if (count === to) cpuTo = cpuMs(setup.pids);
          // Past the sample the launchers keep their runs, so the queue stops moving until the pool is drained;
          // a schedule still on its way then finishes at once.
          return count < to || draining ? { kind: "instant" } : { kind: "keep" };
        },
      };
      await api.call("POST", `/pools/${pool!.id}/undrain`, {});
      await waitUntil(`${to} assignments at depth ${depth}`, () => count >= to, 180_000);
      await api.call("POST", `/pools/${pool!.id}/drain`, {});
      draining = true;
      for (const sim of sims) sim.release();
      await settled(api, pool!.id);
      assigned += count;
      const perRun = (cpuTo - cpuFrom) / QUEUE_SAMPLE;
      baseline ??= perRun;
      report({
        name: `fanout queue ${fmt(depth)} deep: mothership CPU per assignment ${tag}`,
        value: perRun,
        unit: "ms",
        ...(depth === DEPTHS[0] ? {} : { baseline }),
        ...(depth >= 10_000 ? { target: { maxRatio: 1.5 } } : {}),
        note: `${QUEUE_LAUNCHERS} launchers of one pool, instant runs; utime+stime from the ${from}th to the ${to}th schedule received, / ${QUEUE_SAMPLE}; queue ${fmt(depth - from)} -> ${fmt(depth - to)} meanwhile${depth === DEPTHS[0] ? "" : `; baseline: ${fmt(DEPTHS[0]!)} deep`}`,
      });
    }
  } catch (err) {
    console.error(setup.logTail(15));
    throw err;
  } finally {
    await stopFleet(sims, CONNECT_CONCURRENCY);
    await setup.stop();
  }
}

let failed = false;
try {
  for (const start of SETUPS) {
    for (const n of SIZES) await fleetScenario(start, n);
    if (DEPTHS.length) await queueScenario(start);
  }
  if (problems.size) progress(`the simulated launchers saw ${problemText()}`);
  progress("done");
} catch (err) {
  failed = true;
  console.error(`fanout bench failed: ${err instanceof Error ? err.message : String(err)}`);
}
process.exit(failed ? 1 : 0);
