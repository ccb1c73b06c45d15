// Two `mothership serve` processes on one PostgreSQL database and one Mosquitto (./replica-world.ts)
// serve one pool: runs triggered through both at once are each assigned once and all finish; a
// long-poll launcher whose requests alternate between the replicas loses nothing and no message of
// its is applied twice; a launcher that dies without goodbye is declared gone once, its run failed once.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { hostCapability, postgresTestEnv } from "../../support/env.ts";
import { ShellExecutor } from "../agent/shell-executor.ts";
import { waitFor } from "../mothership/harness.ts";
import { mosquittoInstalled } from "../carriers/carrier-world.ts";
import { HEARTBEAT_SECONDS, ReplicaWorld } from "./replica-world.ts";

setDefaultTimeout(180_000);

const pg = postgresTestEnv();
const available = hostCapability("Debian mosquitto (the mosquitto binary)", mosquittoInstalled()) && pg !== undefined;

describe.skipIf(!available)("two replicas on one PostgreSQL and one Mosquitto", () => {
  const world = new ReplicaWorld(pg?.url ?? "");
  beforeAll(() => world.start());
  afterAll(() => world.close());

  /** Each run's transitions as both replicas logged them: none twice. */
  const noTransitionTwice = (runs: string[]) => {
    const twice = runs.flatMap((run) => {
      const seen = world.transitions(run);
      return seen.filter((t, i) => seen.indexOf(t) !== i).map((t) => `${run} ${t}`);
    });
    expect(twice).toEqual([]);
  };

  test("200 runs triggered through both APIs at once over 20 launchers: each scheduled to one launcher once, all FINISHED", async () => {
    const launchers = await Promise.all([...Array.from({ length: 16 }, () => world.launch("mqtt")), ...Array.from({ length: 4 }, () => world.launch("poll"))]);
    const stack = await world.stack("burst", ["echo ok"]);
    const [a, b] = world.replicas;
    const through = (via: typeof a) => Promise.all(Array.from({ length: 100 }, () => world.trigger(stack, via)));
    const [viaA, viaB] = await Promise.all([through(a), through(b)]);
    const runs = [...viaA, ...viaB];
    expect(new Set(runs).size).toBe(200);

    const ended = await Promise.all(runs.map((r) => world.settled(r, 120_000)));
    expect(ended.filter((r) => r.state !== "FINISHED").map((r) => `${r.id} ${r.state} ${r.reason}`)).toEqual([]);
    // Exactly one schedule per run, received by the launcher the run names.
    const wrong = runs.filter((r, i) => (world.schedules.get(r) ?? []).join() !== ended[i]!.worker);
    expect(wrong.map((r) => `${r}: ${(world.schedules.get(r) ?? []).join(" ")}`)).toEqual([]);
    // Each run went QUEUED -> SCHEDULED once (a schedule lost and requeued would show twice), to one worker.
    noTransitionTwice(runs);
    const scheduledTo = new Map(runs.map((r) => [r, new Set<unknown>()]));
    for (const l of world.logged("run scheduled")) scheduledTo.get(String(l.run))?.add(l.worker);
    expect(runs.filter((r, i) => [...scheduledTo.get(r)!].join() !== ended[i]!.worker)).toEqual([]);
    // Both replicas took part: each scheduled some of the runs.
    const byReplica = new Set(world.logged("run scheduled").map((l) => l.replica));
    expect([...byReplica].sort()).toEqual(["a", "b"]);
    expect(new Set(ended.map((r) => r.worker)).size).toBe(launchers.length);
    for (const l of launchers) {
      l.agent.stopSignal();
      expect(await l.exit).toBe(0);
    }
  });

  test("a long-poll launcher whose connections alternate between the replicas: every line stored once, in order, every run FINISHED, nothing applied twice", async () => {
    const executors = [new ShellExecutor(), new ShellExecutor()];
    const launchers = [await world.launch("poll", executors[0]), await world.launch("poll", executors[1])];
    for (const w of await world.workers()) if (!launchers.some((l) => l.worker === w.id)) await world.api("POST", `/workers/${w.id}/drain`);
    const served = new Map(world.forwarder.served);
    const lines = 300;
    const stack = await world.stack("poll-lines", [`i=0; while [ $i -lt ${lines} ]; do echo "line $i"; i=$((i+1)); sleep 0.005; done`]);
    // Every new connection goes to the other replica; the balancer drops them all every 700 ms.
    world.forwarder.cutEvery(700);
    const runs: string[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const batch = await Promise.all(launchers.map(() => world.trigger(stack)));
        runs.push(...batch);
        for (const run of batch) expect(await world.settled(run, 90_000)).toMatchObject({ state: "FINISHED", reason: "ok" });
      }
    } finally {
      world.forwarder.stopCutting();
    }
    const expected = Array.from({ length: lines }, (_, i) => `line ${i}`).join("\n") + "\n";
    for (const run of runs) {
      const stored = await waitFor(`the whole log of ${run}`, async () => {
        const l = await world.logs(run);
        return l.done ? l : null;
      });
      expect(stored.text).toBe(expected);
      expect(stored.seqs).toEqual(stored.seqs.map((_, i) => i));
      // A schedule may come again (a poll answer cut on its way is asked for again, a hello after a
      // reconnect gets the pending one resent), always to the one worker, and the run executes once.
      const worker = (await world.run(run)).worker;
      expect([...new Set(world.schedules.get(run))]).toEqual([worker!]);
      expect(executors.flatMap((e) => e.executed).filter((id) => id === run).length).toBe(1);
    }
    noTransitionTwice(runs);
    // Both replicas answered this launcher's requests.
    const fresh = world.replicas.map((r) => (world.forwarder.served.get(r.httpPort) ?? 0) - (served.get(r.httpPort) ?? 0));
    expect(fresh.every((n) => n >= 3)).toBe(true);
    for (const l of launchers) l.agent.stopSignal();
    for (const w of await world.workers()) await world.api("POST", `/workers/${w.id}/undrain`);
  });

  test("a launcher SIGKILLed mid-run (MQTT and long-poll) with both replicas sweeping: declared gone once, its run FAILED launcher-crashed once", async () => {
    const stack = await world.stack("sleeper", ["echo started; sleep 30"]);
    for (const carrier of ["mqtt", "poll"] as const) {
      const l = await world.launchProcess(carrier);
      for (const w of await world.workers()) if (w.id !== l.worker) await world.api("POST", `/workers/${w.id}/drain`);
      const run = await world.trigger(stack);
      await waitFor("run RUNNING", async () => (await world.run(run)).state === "RUNNING", 30_000);
      l.proc.kill("SIGKILL");
      await l.proc.exited;
      expect(await world.settled(run, 60_000)).toMatchObject({ state: "FAILED", reason: "launcher-crashed" });
      await waitFor("worker gone", async () => !(await world.workers()).some((w) => w.id === l.worker), 30_000);
      // Several sweeps of both replicas later, still once.
      await Bun.sleep(HEARTBEAT_SECONDS * 3 * 1000);
      const gone = [...world.logged("worker gone"), ...world.logged("worker silent, declared gone")].filter((g) => g.worker === l.worker);
      expect(gone.length).toBe(1);
      expect(world.transitions(run).filter((t) => t.endsWith("->FAILED"))).toEqual(["RUNNING->FAILED"]);
      for (const w of await world.workers()) await world.api("POST", `/workers/${w.id}/undrain`);
    }
  });
});
