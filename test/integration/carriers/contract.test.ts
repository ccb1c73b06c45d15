// One contract, three carriers: the same conversation (registration, a run with its logs, cancel,
// drain, cycle, a launcher lost without goodbye) between the real agent and a real mothership, through
// the embedded broker, through a real Mosquitto configured only by `mothership broker-config
// mosquitto`, and over HTTP long-poll. The tests do not know which carrier they run on.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { hostCapability } from "../../support/env.ts";
import type { Transport } from "../../../src/transport/transport.ts";
import { waitFor } from "../mothership/harness.ts";
import { ShellExecutor } from "../agent/shell-executor.ts";
import { CARRIERS, CarrierWorld, HEARTBEAT_SECONDS, mosquittoInstalled } from "./carrier-world.ts";

setDefaultTimeout(60_000);

for (const carrier of CARRIERS) {
  const available = carrier !== "mosquitto" || hostCapability("Debian mosquitto (the mosquitto binary)", mosquittoInstalled());
  describe.skipIf(!available)(`the launcher contract over ${carrier}`, () => {
    const world = new CarrierWorld(carrier);
    beforeAll(() => world.start());
    afterAll(() => world.close());

    const live = async (worker: string) => (await world.workers()).find((w) => w.id === worker);

    test("registration: hello makes a live IDLE worker with its metadata", async () => {
      const a = await world.launch({ metadata: { carrier, zone: "a" } });
      expect(await live(a.worker)).toMatchObject({ status: "IDLE", metadata: { carrier, zone: "a" } });
      a.agent.stopSignal();
      expect(await a.exit).toBe(0);
      await waitFor("worker gone after a clean stop", async () => !(await live(a.worker)), 10_000);
    });

    test("a run: scheduled, executed, every log line stored in order, FINISHED, the worker IDLE again", async () => {
      const a = await world.launch();
      const run = await world.trigger(await world.stack("ok", { plan: ["echo planning"], apply: ["for i in $(seq 1 200); do echo line $i; done"] }));
      expect(await world.settled(run)).toMatchObject({ state: "FINISHED", reason: "ok", exit_code: 0, worker: a.worker });
      const logs = await waitFor("the whole log", async () => {
        const l = await world.logs(run);
        return l.done ? l : null;
      });
      const expected = ["planning", ...Array.from({ length: 200 }, (_, i) => `line ${i + 1}`)].join("\n") + "\n";
      expect(logs.text).toBe(expected);
      expect(logs.seqs).toEqual(logs.seqs.map((_, i) => i));
      expect((await live(a.worker))?.status).toBe("IDLE");
    });

    test("cancel: a running run is stopped by its launcher and ends CANCELED", async () => {
      await world.launch();
      const run = await world.trigger(await world.stack("long", { plan: ["echo started; sleep 60"] }));
      await waitFor("run RUNNING", async () => (await world.run(run)).state === "RUNNING", 20_000);
      await world.api("POST", `/runs/${run}/cancel`);
      expect(await world.settled(run, 20_000)).toMatchObject({ state: "CANCELED", reason: "cancelled" });
    });

    test("drain: a drained pool gets no runs; undrain hands the queued run out", async () => {
      const drained = await world.api<{ workers: Array<{ id: string; status: string }> }>("POST", `/pools/${world.pool}/drain`, {});
      expect(drained.workers.length).toBeGreaterThan(0);
      expect(drained.workers.every((w) => w.status === "DRAINED")).toBe(true);
      const run = await world.trigger(await world.stack("after-drain", { plan: ["echo undrained"] }));
      await Bun.sleep(HEARTBEAT_SECONDS * 1000);
      expect((await world.run(run)).state).toBe("QUEUED");
      await world.api("POST", `/pools/${world.pool}/undrain`, {});
      expect(await world.settled(run)).toMatchObject({ state: "FINISHED" });
    });

    test("cycle: every live launcher of the pool leaves once idle, orderly", async () => {
      const cycled = [...world.agents];
      await world.api("POST", `/pools/${world.pool}/cycle`);
      for (const a of cycled) expect(await Promise.race([a.exit, Bun.sleep(20_000).then(() => "still running")])).toBe(0);
      await waitFor("no live worker", async () => (await world.workers()).length === 0, 10_000);
      world.agents.length = 0;
    });

    test("loss: a launcher cut off without goodbye is declared gone and its run FAILS launcher-crashed", async () => {
      let transport: Transport | null = null;
      const executor = new ShellExecutor();
      const a = await world.launch({ executor, onTransport: (t) => (transport = t) });
      const run = await world.trigger(await world.stack("lost", { plan: ["echo started; sleep 60"] }));
      await waitFor("run RUNNING", async () => (await world.run(run)).state === "RUNNING", 20_000);
      // The host dies: the run's process and the connection, no goodbye (MQTT: the Last Will; poll: silence).
      executor.killAll();
      a.agent.stopSignal();
      a.agent.stopSignal();
      await (transport as Transport | null)?.close(false);
      expect(await world.settled(run, 30_000)).toMatchObject({ state: "FAILED", reason: "launcher-crashed" });
      expect(await live(a.worker)).toBeUndefined();
    });
  });
}
