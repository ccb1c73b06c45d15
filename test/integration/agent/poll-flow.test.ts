// The agent over the HTTP long-poll transport against a real mothership (HTTPS with its CA, signed
// requests): registration, a run end to end with every log chunk stored, cancel, drain/undrain, and a
// launcher whose connection is cut without a goodbye declared lost after the heartbeat timeout,
// its run FAILED launcher-crashed. No broker connection is made by the agent here.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { RunningMothership } from "../../../src/mothership/serve.ts";
import type { UplinkMessage } from "../../../src/protocol/messages.ts";
import type { Transport } from "../../../src/transport/transport.ts";
import { cli, cliJson, opensslKeyAndCsr, startServer, tempDir, waitFor } from "../mothership/harness.ts";
import { startAgent, type TestAgent } from "./harness.ts";
import { ShellExecutor } from "./shell-executor.ts";

setDefaultTimeout(40_000);

interface RunJson { id: string; state: string; reason: string | null; exit_code: number | null; worker: string | null }
interface WorkerJson { id: string; status: string; metadata: Record<string, string>; version: string; arch: string }

const HEARTBEAT_SECONDS = 2;

let dir: Awaited<ReturnType<typeof tempDir>>;
let server: RunningMothership;
let data: string;
let token: string;
let keyPath: string;
let pool: string;
const agents: TestAgent[] = [];

beforeAll(async () => {
  dir = await tempDir("agent-poll-");
  data = `${dir.path}/data`;
  server = await startServer(data, { heartbeatSeconds: HEARTBEAT_SECONDS });
  keyPath = opensslKeyAndCsr(dir.path, "spacelift").keyPath;
  token = (await cli(data, ["pool", "create", "--name", "poll", "--csr", `${dir.path}/spacelift.csr`])).stdout.trim();
  pool = (JSON.parse(Buffer.from(token, "base64").toString()) as { pool: string }).pool;
});

afterAll(async () => {
  for (const a of agents) {
    a.agent.stopSignal();
    a.agent.stopSignal();
  }
  await Promise.all(agents.map((a) => Promise.race([a.exit.catch(() => 1), Bun.sleep(3_000)])));
  await server?.stop();
  await dir?.remove();
});

const workers = () => cliJson<WorkerJson[]>(data, ["worker", "list", "--pool", pool]);
const runOf = (run: string) => cliJson<RunJson>(data, ["run", "show", run]);
const logs = async (run: string) => (await cli(data, ["run", "logs", run])).stdout;

async function stack(name: string, phases: string[], extra: string[] = []): Promise<string> {
  const r = await cli(data, ["stack", "create", "--name", name, "--pool", pool, "--image", "busybox", ...extra, ...phases.flatMap((p) => ["--phase", p])]);
  if (r.code !== 0) throw new Error(r.stderr);
  return r.stdout.trim();
}

const trigger = async (stackId: string) => (await cli(data, ["run", "trigger", stackId])).stdout.trim();

async function settled(run: string, timeoutMs = 20_000): Promise<RunJson> {
  return waitFor(`run ${run} to end`, async () => {
    const r = await runOf(run);
    return ["FINISHED", "FAILED", "CANCELED"].includes(r.state) ? r : null;
  }, timeoutMs);
}

async function launch(o: { executor?: ShellExecutor; metadata?: Record<string, string>; sent?: UplinkMessage[]; onTransport?: (t: Transport) => void } = {}): Promise<TestAgent> {
  const scratch = await tempDir("agent-poll-scratch-");
  const a = await startAgent({ token, keyPath, scratch: scratch.path, executor: o.executor ?? new ShellExecutor(), protocol: "poll", ...o });
  agents.push(a);
  void a.exit.finally(() => scratch.remove());
  await waitFor("worker registered", async () => (await workers()).find((w) => w.id === a.worker));
  return a;
}

async function retire(a: TestAgent): Promise<void> {
  a.agent.stopSignal();
  expect(await a.exit).toBe(0);
  agents.splice(agents.indexOf(a), 1);
}

describe("agent over HTTP long-poll", () => {
  test("hello registers the worker IDLE with metadata; a run streams every chunk, masked, and FINISHES", async () => {
    const sent: UplinkMessage[] = [];
    const a = await launch({ metadata: { instance_id: "i-poll" }, sent });
    expect(sent[0]?.type).toBe("hello");
    expect((await workers()).find((w) => w.id === a.worker)).toMatchObject({ status: "IDLE", metadata: { instance_id: "i-poll" }, version: "9.9.9-test", arch: "x86_64" });

    const s = await stack("poll-ok", ["plan=i=1; while [ $i -le 300 ]; do echo line $i; i=$((i+1)); done", "apply=echo secret is $TOKEN"], ["--secret", "TOKEN=p0ll-s3cret"]);
    const run = await trigger(s);
    expect(await settled(run)).toMatchObject({ state: "FINISHED", reason: "ok", exit_code: 0, worker: a.worker });
    const expected = Array.from({ length: 300 }, (_, i) => `line ${i + 1}\n`).join("") + "secret is *****\n";
    expect(await waitFor("every chunk stored", async () => ((await logs(run)) === expected ? true : null))).toBe(true);
    // Every chunk the agent sent was acknowledged: nothing left to resend.
    const chunks = sent.filter((m) => m.type === "log");
    expect(chunks.length).toBeGreaterThan(0);
    expect((await workers()).find((w) => w.id === a.worker)?.status).toBe("IDLE");
    await retire(a);
    expect((await workers()).map((w) => w.id)).not.toContain(a.worker);
  });

  test("cancel reaches the poll worker: CANCELED quickly", async () => {
    const a = await launch();
    const run = await trigger(await stack("poll-cancel", ["plan=echo started; sleep 30; echo never"]));
    await waitFor("first line", async () => (await logs(run)).includes("started"));
    const t0 = Date.now();
    expect((await cli(data, ["run", "cancel", run])).code).toBe(0);
    expect(await settled(run)).toMatchObject({ state: "CANCELED", reason: "cancelled" });
    expect(Date.now() - t0).toBeLessThan(5_000);
    await retire(a);
  });

  test("drain: no run while drained; undrain and it runs", async () => {
    const executor = new ShellExecutor();
    const a = await launch({ executor });
    expect((await cli(data, ["worker", "drain", a.worker])).code).toBe(0);
    await waitFor("agent drained", () => a.agent.workerState.kind === "idle" && a.agent.workerState.drained);
    expect((await workers()).find((w) => w.id === a.worker)?.status).toBe("DRAINED");
    const run = await trigger(await stack("poll-drained", ["plan=echo hi"]));
    await Bun.sleep(500);
    expect((await runOf(run)).state).toBe("QUEUED");
    expect(executor.executed).toEqual([]);
    expect((await cli(data, ["worker", "undrain", a.worker])).code).toBe(0);
    expect(await settled(run)).toMatchObject({ state: "FINISHED" });
    expect(await logs(run)).toBe("hi\n");
    await retire(a);
  });

  test("a poll connection cut without goodbye: the worker is declared lost after the heartbeat timeout, its run FAILED launcher-crashed", async () => {
    let transport: Transport | null = null;
    const a = await launch({ onTransport: (t) => (transport = t) });
    const run = await trigger(await stack("poll-lost", ["plan=echo started; sleep 30"]));
    await waitFor("first line", async () => (await logs(run)).includes("started"));
    const t0 = Date.now();
    await (transport as Transport | null)?.close(false);
    await waitFor("worker lost", async () => !(await workers()).some((w) => w.id === a.worker), 20_000);
    // 3 missed heartbeats, give or take a sweep.
    expect(Date.now() - t0).toBeGreaterThan(HEARTBEAT_SECONDS * 1000);
    expect(await settled(run)).toMatchObject({ state: "FAILED", reason: "launcher-crashed" });
  });
});
