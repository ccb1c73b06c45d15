/**
 * What must hold when launchers misbehave or disappear: pool isolation on the broker, revoked
 * certificates, Last Will -> launcher-crashed, drain/undrain, cancel, and a mothership restart.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { RunningMothership } from "../../../src/mothership/serve.ts";
import { FakeLauncher, cli, cliJson, opensslKeyAndCsr, startServer, tempDir, waitFor } from "./harness.ts";

interface RunJson {
  id: string;
  state: string;
  reason: string | null;
  exit_code: number | null;
  worker: string | null;
}

setDefaultTimeout(30_000);

let dir: Awaited<ReturnType<typeof tempDir>>;
let server: RunningMothership;
let data = "";
const pools: Record<"a" | "b", { token: string; key: string; id: string; stack: string }> = {
  a: { token: "", key: "", id: "", stack: "" },
  b: { token: "", key: "", id: "", stack: "" },
};
const launchers: FakeLauncher[] = [];

async function launcher(p: "a" | "b", metadata: Record<string, string> = {}): Promise<FakeLauncher> {
  const l = await FakeLauncher.fromToken(pools[p].token, pools[p].key, server.brokerEndpoint);
  launchers.push(l);
  await l.connect();
  await l.hello(metadata);
  await l.next("registered");
  return l;
}

const show = (id: string) => cliJson<RunJson>(data, ["run", "show", id]);
const trigger = async (p: "a" | "b") => (await cli(data, ["run", "trigger", pools[p].stack])).stdout.trim();
const waitState = (id: string, state: string, timeoutMs = 10_000) =>
  waitFor(`run ${id} ${state}`, async () => ((await show(id)).state === state ? show(id) : null), timeoutMs);

beforeAll(async () => {
  dir = await tempDir("mothership-faults-");
  data = `${dir.path}/data`;
  server = await startServer(data);
  // Pool A from the documented RSA command, pool B from an EC key: both kinds of pool key.
  for (const [p, newkey] of [["a", ["rsa:4096"]], ["b", ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"]]] as const) {
    const op = opensslKeyAndCsr(dir.path, `pool-${p}`, [...newkey]);
    const token = (await cli(data, ["pool", "create", "--name", `pool-${p}`, "--csr", op.csrPath])).stdout.trim();
    const id = (JSON.parse(Buffer.from(token, "base64").toString()) as { pool: string }).pool;
    const stack = (await cli(data, ["stack", "create", "--name", `stack-${p}`, "--pool", id, "--image", "busybox", "--phase", "run=true"])).stdout.trim();
    pools[p] = { token, key: op.keyPath, id, stack };
  }
});

afterAll(async () => {
  for (const l of launchers) await l.stop();
  await server?.stop();
  await dir?.remove();
});

describe("pool isolation", () => {
  test("pool A's certificate cannot subscribe to B's readonly topic nor publish into B's writeonly topic", async () => {
    const b = await launcher("b");
    const a = await launcher("a");
    const runB = await trigger("b");
    await b.next("schedule", (m) => m.run === runB);
    await b.send("run_accepted", { run: runB });
    await waitState(runB, "PREPARING");

    // Subscribing outside its own subtree is refused in the SUBACK.
    const sub = await a.client.subscribeAsync(b.downlink, { qos: 1 }).then(
      (granted) => granted.map((g) => g.qos),
      () => "refused",
    );
    expect(sub === "refused" || (Array.isArray(sub) && sub.every((q) => q === 128))).toBe(true);
    // Whatever the mothership sends B's worker never reaches A.
    expect((await cli(data, ["run", "cancel", runB])).code).toBe(0);
    await b.next("cancel", (m) => m.run === runB);
    await Bun.sleep(200);
    expect(a.deliveries.filter((d) => d.topic === b.downlink)).toEqual([]);

    // A forged "finished" for B's run, published by A into B's writeonly topic, is refused and never applied.
    // The broker answers by dropping A's connection, so the publish never completes: do not wait for it.
    void a.send("run_finished", { run: runB, exit_code: 0, reason: "ok", last_seq: -1 }, b.uplink).catch(() => {});
    await Bun.sleep(300);
    const r = await show(runB);
    expect(r.state).toBe("PREPARING");
    // B itself ends its run as cancelled, as a real launcher would.
    await b.send("run_finished", { run: runB, exit_code: 143, reason: "cancelled", last_seq: -1 });
    expect((await waitState(runB, "CANCELED")).reason).toBe("cancelled");
  });

  test("a reset pool's old certificate is refused by the broker", async () => {
    const oldToken = pools.b.token;
    const op = opensslKeyAndCsr(dir.path, "pool-b2", ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
    const reset = await cli(data, ["pool", "reset", pools.b.id, "--csr", op.csrPath]);
    expect(reset.code).toBe(0);
    pools.b = { ...pools.b, token: reset.stdout.trim(), key: op.keyPath };
    const stale = await FakeLauncher.fromToken(oldToken, `${dir.path}/pool-b.key`, server.brokerEndpoint);
    launchers.push(stale);
    expect(await stale.connect().then(() => "connected", () => "refused")).toBe("refused");
    const fresh = await launcher("b");
    expect(fresh.received.some((m) => m.type === "registered")).toBe(true);
  });
});

describe("faults and operator controls", () => {
  test("Last Will: a launcher lost mid-run -> run FAILED launcher-crashed, worker gone", async () => {
    const l = await launcher("a");
    // Other idle workers of pool A would take the run; take them out first.
    for (const other of launchers.filter((x) => x !== l && x.token.pool === pools.a.id)) await other.stop();
    const run = await trigger("a");
    await l.next("schedule", (m) => m.run === run);
    await l.send("run_accepted", { run });
    await l.send("phase", { run, phase: "run" });
    await waitState(run, "RUNNING");
    l.crash();
    const failed = await waitState(run, "FAILED");
    expect(failed.reason).toBe("launcher-crashed");
    const workers = await cliJson<Array<{ id: string }>>(data, ["worker", "list", "--pool", pools.a.id]);
    expect(workers.map((w) => w.id)).not.toContain(l.worker);
  });

  test("drain: a DRAINED worker gets no run while one is queued; undrain and it starts", async () => {
    const l = await launcher("a");
    expect((await cliJson<{ status: string }>(data, ["worker", "drain", l.worker])).status).toBe("DRAINED");
    await l.next("drain");
    const run = await trigger("a");
    await Bun.sleep(300);
    expect((await show(run)).state).toBe("QUEUED");
    expect(l.received.some((m) => m.type === "schedule" && m.run === run)).toBe(false);
    await cli(data, ["worker", "undrain", l.worker]);
    await l.next("undrain");
    await l.next("schedule", (m) => m.run === run);
    expect((await show(run)).state).toBe("SCHEDULED");
    await l.send("run_accepted", { run });
    await l.send("run_finished", { run, exit_code: 0, reason: "ok", last_seq: -1 });
    await waitState(run, "FINISHED");
  });

  test("cancel: a queued run is CANCELED at once; a running one when its launcher reports it", async () => {
    const l = launchers.at(-1)!;
    await cli(data, ["worker", "drain", l.worker]);
    const queued = await trigger("a");
    const c = await cliJson<RunJson>(data, ["run", "cancel", queued]);
    expect(c).toMatchObject({ state: "CANCELED", reason: "cancelled" });
    await cli(data, ["worker", "undrain", l.worker]);
    const running = await trigger("a");
    await l.next("schedule", (m) => m.run === running);
    await l.send("run_accepted", { run: running });
    await l.send("phase", { run: running, phase: "run" });
    await waitState(running, "RUNNING");
    await cli(data, ["run", "cancel", running]);
    await l.next("cancel", (m) => m.run === running);
    await l.send("run_finished", { run: running, exit_code: 143, reason: "cancelled", last_seq: -1 });
    expect(await waitState(running, "CANCELED")).toMatchObject({ reason: "cancelled", exit_code: 143 });
  });

  test("pool cycle asks every live worker of the pool to exit when idle", async () => {
    const l = launchers.at(-1)!;
    const r = await cli(data, ["pool", "cycle", pools.a.id]);
    expect(r.stdout).toContain("1 worker");
    await l.next("cycle");
    // A cycling worker gets no new runs; its clean goodbye removes it from the list.
    await l.send("gone", { crashed: false });
    await waitFor("worker gone", async () => (await cliJson<unknown[]>(data, ["worker", "list", "--pool", pools.a.id])).length === 0);
  });

  test("mothership restart mid-run with the same data dir: state survives and the run completes", async () => {
    const l = await launcher("a");
    const run = await trigger("a");
    await l.next("schedule", (m) => m.run === run);
    await l.send("run_accepted", { run });
    await l.send("phase", { run, phase: "run" });
    await l.send("log", { run, seq: 0, data: Buffer.from("before restart\n").toString("base64") });
    await l.next("log_ack", (m) => m.run === run && m.seq === 0);
    const ports = { http: server.httpPort, mqtt: server.mqttPort };
    await server.stop();
    await l.stop();
    server = await startServer(data, ports);
    expect((await show(run)).state).toBe("RUNNING");
    // The launcher reconnects (same worker id) and says what it is doing.
    const again = new FakeLauncher(l.token, await Bun.file(pools.a.key).text(), server.brokerEndpoint);
    Object.defineProperty(again, "worker", { value: l.worker });
    launchers.push(again);
    await again.connect();
    await again.hello({}, run);
    await again.next("registered");
    await again.send("log", { run, seq: 1, data: Buffer.from("after restart\n").toString("base64") });
    await again.send("run_finished", { run, exit_code: 0, reason: "ok", last_seq: 1 });
    expect(await waitState(run, "FINISHED")).toMatchObject({ reason: "ok", exit_code: 0, worker: l.worker });
    expect((await cli(data, ["run", "logs", run])).stdout).toBe("before restart\nafter restart\n");
  });
});
