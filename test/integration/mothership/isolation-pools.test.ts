/**
 * Two pools on one mothership over its embedded broker (real mutual TLS): pool A holds its own token
 * and key and knows pool B's worker ids (they are in lists and logs). Whatever A says in the name of
 * B's worker — hello, heartbeat, run messages, gone, its Last Will — is refused to A alone with
 * `worker-pool-mismatch`, and B's worker row, status and runs do not change. A cannot take over B's
 * MQTT session by client id, cannot set a Last Will for another worker, and an oversized packet cuts
 * off only the client that sent it.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import mqtt from "mqtt";
import { readFile } from "node:fs/promises";
import { decodeToken } from "../../../src/pki/token.ts";
import { encodeMessage, makeMessage } from "../../../src/protocol/messages.ts";
import { mqttClientId, writeonlyTopic } from "../../../src/protocol/topics.ts";
import type { RunningMothership } from "../../../src/mothership/serve.ts";
import { FakeLauncher, cli, cliJson, opensslKeyAndCsr, startServer, tempDir, waitFor } from "./harness.ts";

setDefaultTimeout(45_000);

interface RunJson {
  id: string;
  state: string;
  reason: string | null;
  worker: string | null;
}
interface WorkerJson {
  id: string;
  pool: string;
  status: string;
  metadata: Record<string, string>;
  gone_at?: string | null;
}

let dir: Awaited<ReturnType<typeof tempDir>>;
let server: RunningMothership;
let data = "";
const pools: Record<"a" | "b", { token: string; key: string; id: string; stack: string }> = {
  a: { token: "", key: "", id: "", stack: "" },
  b: { token: "", key: "", id: "", stack: "" },
};
const launchers: FakeLauncher[] = [];

/** A launcher of pool `p` that uses the worker id `worker` (pool A's key, pool B's worker id). */
class Impostor extends FakeLauncher {
  constructor(token: FakeLauncher["token"], keyPem: string, brokerUrl: string, override readonly worker: string) {
    super(token, keyPem, brokerUrl);
  }
}

async function launcher(p: "a" | "b", metadata: Record<string, string> = {}): Promise<FakeLauncher> {
  const l = await FakeLauncher.fromToken(pools[p].token, pools[p].key, server.brokerEndpoint);
  launchers.push(l);
  await l.connect();
  await l.hello(metadata);
  await l.next("registered");
  return l;
}

async function impostor(worker: string): Promise<Impostor> {
  const l = new Impostor(decodeToken(pools.a.token), await readFile(pools.a.key, "utf8"), server.brokerEndpoint, worker);
  launchers.push(l);
  await l.connect();
  return l;
}

const show = (id: string) => cliJson<RunJson>(data, ["run", "show", id]);
const workerJson = async (id: string) => (await (await fetch(`${server.httpUrl}/api/v1/workers/${id}`, { headers: { authorization: `Bearer ${server.adminToken}` }, tls: { ca: server.caPem } })).json()) as WorkerJson;
const liveIds = async (pool: string) =>
  ((await (await fetch(`${server.httpUrl}/api/v1/workers?pool=${pool}`, { headers: { authorization: `Bearer ${server.adminToken}` }, tls: { ca: server.caPem } })).json()) as WorkerJson[]).map((w) => w.id);
const trigger = async (p: "a" | "b") => (await cli(data, ["run", "trigger", pools[p].stack])).stdout.trim();
const waitState = (id: string, state: string) => waitFor(`run ${id} ${state}`, async () => ((await show(id)).state === state ? true : null));

/** Connects with pool A's certificate and the given client id and will; resolves with the CONNACK outcome. */
async function rawConnect(clientId: string, willTopic?: string): Promise<{ outcome: "connected" | "refused" | "closed"; client: mqtt.MqttClient }> {
  const token = decodeToken(pools.a.token);
  const client = mqtt.connect(server.brokerEndpoint, {
    key: await readFile(pools.a.key, "utf8"),
    cert: token.certificate,
    ca: token.ca,
    clientId,
    reconnectPeriod: 0,
    connectTimeout: 5000,
    ...(willTopic ? { will: { topic: willTopic, payload: Buffer.from(encodeMessage(makeMessage("gone", { crashed: true }))), qos: 1 as const, retain: false } } : {}),
  });
  const outcome = await new Promise<"connected" | "refused" | "closed">((resolve) => {
    client.once("connect", () => resolve("connected"));
    client.once("error", (err) => resolve((err as { code?: number }).code === 5 ? "refused" : "closed"));
    client.once("close", () => resolve("closed"));
  });
  return { outcome, client };
}

beforeAll(async () => {
  dir = await tempDir("mothership-pools-");
  data = `${dir.path}/data`;
  server = await startServer(data);
  for (const p of ["a", "b"] as const) {
    const op = opensslKeyAndCsr(dir.path, `pool-${p}`, ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
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

describe("a worker id belongs to its pool", () => {
  test("hello, heartbeat, run messages, gone and Last Will from pool A in the name of B's worker: refused to A, B untouched", async () => {
    const b = await launcher("b", { team: "b" });
    const runB = await trigger("b");
    await b.next("schedule", (m) => m.run === runB);
    await b.send("run_accepted", { run: runB });
    await b.send("phase", { run: runB, phase: "run" });
    await waitState(runB, "RUNNING");

    const a = await impostor(b.worker);
    await a.hello({ team: "a" }, null);
    const refusal = await a.next("error");
    expect(refusal).toMatchObject({ code: "worker-pool-mismatch" });
    await a.send("heartbeat", { state: "IDLE", run: null });
    await a.send("log", { run: runB, seq: 0, data: Buffer.from("forged\n").toString("base64") });
    await a.send("run_finished", { run: runB, exit_code: 0, reason: "ok", last_seq: 0 });
    await a.send("gone", { crashed: true });
    await waitFor("five refusals", () => a.received.filter((m) => m.type === "error" && m.code === "worker-pool-mismatch").length === 5 || null);
    expect(a.received.map((m) => m.type)).not.toContain("registered");
    // Its Last Will (its own topic, B's worker id) changes nothing either.
    a.crash();
    await Bun.sleep(500);

    const row = await workerJson(b.worker);
    expect(row).toMatchObject({ id: b.worker, pool: pools.b.id, status: "BUSY", metadata: { team: "b" } });
    expect(await liveIds(pools.b.id)).toContain(b.worker);
    expect(await show(runB)).toMatchObject({ state: "RUNNING", worker: b.worker, reason: null });
    expect((await cli(data, ["run", "logs", runB])).stdout).not.toContain("forged");
    expect(b.received.filter((m) => m.type === "error")).toEqual([]);

    // B carries on as if nothing happened.
    await b.send("run_finished", { run: runB, exit_code: 0, reason: "ok", last_seq: -1 });
    await waitState(runB, "FINISHED");
  });

  test("a B worker that left cannot be revived by pool A, and B's next run does not go to it", async () => {
    const left = await launcher("b");
    await left.send("gone", { crashed: false });
    await waitFor("worker gone", async () => !(await liveIds(pools.b.id)).includes(left.worker) || null);

    const a = await impostor(left.worker);
    await a.hello({}, null);
    expect(await a.next("error")).toMatchObject({ code: "worker-pool-mismatch" });
    expect(await liveIds(pools.b.id)).not.toContain(left.worker);
    expect(await liveIds(pools.a.id)).not.toContain(left.worker);

    const run = await trigger("b");
    await Bun.sleep(500);
    expect((await show(run)).worker).not.toBe(left.worker);
    expect(a.received.map((m) => m.type)).not.toContain("schedule");
    expect((await cli(data, ["run", "cancel", run])).code).toBe(0);
  });
});

describe("MQTT client ids and Last Wills carry the pool", () => {
  test("pool A cannot take over B's connection by client id; B stays connected and live", async () => {
    const b = await launcher("b");
    for (const clientId of [b.worker, mqttClientId(pools.b.id, b.worker), `${pools.a.id}`, `${pools.a.id}.`]) {
      const { outcome, client } = await rawConnect(clientId);
      await client.endAsync(true).catch(() => {});
      expect(`${clientId}: ${outcome}`).toBe(`${clientId}: refused`);
    }
    await Bun.sleep(300);
    expect(b.client.connected).toBe(true);
    expect(await workerJson(b.worker)).toMatchObject({ status: "IDLE" });
    expect(await liveIds(pools.b.id)).toContain(b.worker);
    expect((await cli(data, ["worker", "drain", b.worker])).code).toBe(0);
    await b.next("drain");
  });

  test("a Last Will must be the client's own writeonly topic for its own worker", async () => {
    const victim = await launcher("b");
    const own = "01JWORKEROWN0000000000000A";
    for (const will of [writeonlyTopic("spacelift", pools.a.id, "01JWORKEROTHER000000000000"), writeonlyTopic("spacelift", pools.b.id, victim.worker), `spacelift/readonly/${pools.a.id}/${own}`]) {
      const { outcome, client } = await rawConnect(mqttClientId(pools.a.id, own), will);
      await client.endAsync(true).catch(() => {});
      expect(`${will}: ${outcome}`).toBe(`${will}: refused`);
    }
    const fine = await rawConnect(mqttClientId(pools.a.id, own), writeonlyTopic("spacelift", pools.a.id, own));
    expect(fine.outcome).toBe("connected");
    // Publishing for another worker of its own pool is refused too (the broker drops the client).
    const closed = new Promise<void>((resolve) => fine.client.once("close", () => resolve()));
    fine.client.publish(writeonlyTopic("spacelift", pools.a.id, "01JWORKEROTHER000000000000"), encodeMessage(makeMessage("heartbeat", { state: "IDLE", run: null })), { qos: 1 });
    await closed;
    await fine.client.endAsync(true).catch(() => {});
    expect(await liveIds(pools.b.id)).toContain(victim.worker);
  });

  test("a PUBLISH larger than the packet limit disconnects that client only", async () => {
    const big = await launcher("a");
    const other = await launcher("b");
    const closed = new Promise<void>((resolve) => big.client.once("close", () => resolve()));
    big.client.publish(big.uplink, Buffer.alloc(2 * 1024 * 1024, 0x61), { qos: 0 });
    await closed;
    await waitFor("the oversized client's Last Will", async () => !(await liveIds(pools.a.id)).includes(big.worker) || null);
    expect(other.client.connected).toBe(true);
    expect((await cli(data, ["worker", "drain", other.worker])).code).toBe(0);
    await other.next("drain");
  });
});
