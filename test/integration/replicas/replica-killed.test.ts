// Two replicas on one PostgreSQL and one Mosquitto (./replica-world.ts); one is SIGKILLed while runs
// print lines on launchers of both carriers: the other carries every run to its end, with every line
// stored once and in order, and none left holding a launcher.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { hostCapability, postgresTestEnv } from "../../support/env.ts";
import { waitFor } from "../mothership/harness.ts";
import { mosquittoInstalled } from "../carriers/carrier-world.ts";
import { ReplicaWorld } from "./replica-world.ts";

setDefaultTimeout(180_000);

const pg = postgresTestEnv();
const available = hostCapability("Debian mosquitto (the mosquitto binary)", mosquittoInstalled()) && pg !== undefined;

describe.skipIf(!available)("a replica SIGKILLed mid-run", () => {
  const world = new ReplicaWorld(pg?.url ?? "");
  beforeAll(() => world.start());
  afterAll(() => world.close());

  test("every run finishes through the other replica, every log line stored exactly once and in order", async () => {
    const launchers = await Promise.all([...Array.from({ length: 6 }, () => world.launch("mqtt")), ...Array.from({ length: 2 }, () => world.launch("poll"))]);
    const lines = 400;
    // About 8 s of output per run, so the kill lands in the middle of every one.
    const stack = await world.stack("printer", [`i=0; while [ $i -lt ${lines} ]; do echo "line $i"; i=$((i+1)); sleep 0.02; done`]);
    const [a, b] = world.replicas;
    const runs = await Promise.all(launchers.map((_, i) => world.trigger(stack, i % 2 === 0 ? a : b)));
    await waitFor("every run RUNNING", async () => (await Promise.all(runs.map((r) => world.run(r)))).every((r) => r.state === "RUNNING"), 30_000);
    await Bun.sleep(2_000);
    await a!.kill();

    const ended = await Promise.all(runs.map((r) => world.settled(r, 120_000)));
    expect(ended.map((r) => `${r.state} ${r.reason}`)).toEqual(runs.map(() => "FINISHED ok"));
    expect(new Set(ended.map((r) => r.worker)).size).toBe(launchers.length);
    for (const run of runs) {
      const stored = await waitFor(`the whole log of ${run}`, async () => {
        const l = await world.logs(run);
        return l.done ? l : null;
      }, 30_000);
      const expected = Array.from({ length: lines }, (_, i) => `line ${i}`).join("\n") + "\n";
      expect(stored.text).toBe(expected);
      expect(stored.seqs).toEqual(stored.seqs.map((_, i) => i));
      expect(world.schedules.get(run)?.length).toBe(1);
    }
    // Nothing is left holding a launcher: each is idle and takes the next run through the survivor.
    const active = await world.api<Array<{ id: string }>>("GET", `/runs?pool=${world.pool}&active=true`, undefined, b);
    expect(active).toEqual([]);
    const after = await world.trigger(stack, b);
    expect(await world.settled(after, 60_000)).toMatchObject({ state: "FINISHED", reason: "ok" });
  });
});
