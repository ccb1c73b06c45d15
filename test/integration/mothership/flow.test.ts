/**
 * The operator workflow against a real mothership: openssl key + CSR -> pool -> token -> a
 * launcher (real MQTT over mutual TLS) -> run scheduled as a JWE only the pool key opens -> phases
 * and logs (with a resent chunk) -> FINISHED, all driven and observed through the real CLI.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { decryptRun } from "../../../src/protocol/envelope.ts";
import type { RunningMothership } from "../../../src/mothership/serve.ts";
import { FakeLauncher, cli, cliJson, opensslKeyAndCsr, spawnCli, startServer, tempDir, waitFor } from "./harness.ts";

interface RunJson {
  id: string;
  stack: string;
  type: string;
  state: string;
  reason: string | null;
  exit_code: number | null;
  worker: string | null;
  created_at: string;
  finished_at: string | null;
  messages: string[];
}
interface WorkerJson {
  id: string;
  pool: string;
  status: string;
  metadata: Record<string, string>;
  version: string;
  arch: string;
  last_seen: string;
}

setDefaultTimeout(30_000);

let dir: Awaited<ReturnType<typeof tempDir>>;
let server: RunningMothership;
let data: string;
let token = "";
let keyPath = "";
let poolId = "";
let stackId = "";
let launcher: FakeLauncher;

beforeAll(async () => {
  dir = await tempDir("mothership-flow-");
  data = `${dir.path}/data`;
  server = await startServer(data);
  const op = opensslKeyAndCsr(dir.path, "spacelift");
  keyPath = op.keyPath;
  const created = await cli(data, ["pool", "create", "--name", "builders", "--csr", op.csrPath, "--description", "CI hosts"]);
  expect(created.code).toBe(0);
  token = created.stdout.trim();
  poolId = (JSON.parse(Buffer.from(token, "base64").toString("utf8")) as { pool: string }).pool;
});

afterAll(async () => {
  await launcher?.stop();
  await server?.stop();
  await dir?.remove();
});

describe("mothership end to end", () => {
  test("pool create prints only the token; it names the pool, the broker and the CA", async () => {
    expect(token).toMatch(/^[A-Za-z0-9+/]+=*$/);
    const t = JSON.parse(Buffer.from(token, "base64").toString("utf8")) as Record<string, unknown>;
    expect(t).toMatchObject({ version: 1, pool: poolId, broker: { endpoint: server.brokerEndpoint, namespace: "spacelift" }, comms_url: server.httpUrl });
    const pools = await cliJson<Array<{ id: string; name: string; description: string }>>(data, ["pool", "list"]);
    expect(pools).toEqual([expect.objectContaining({ id: poolId, name: "builders", description: "CI hosts" })]);
  });

  test("hello -> registered; the worker is listed IDLE with its metadata, version and arch", async () => {
    launcher = await FakeLauncher.fromToken(token, keyPath);
    const t0 = performance.now();
    await launcher.connect();
    await launcher.hello({ instance_id: "i-0abc", asg_id: "asg-1" });
    const reg = await launcher.next("registered");
    console.log(`connect + hello -> registered: ${(performance.now() - t0).toFixed(1)} ms`);
    expect(reg).toMatchObject({ worker: launcher.worker, pool: poolId, status: "IDLE" });
    const workers = await cliJson<WorkerJson[]>(data, ["worker", "list", "--pool", poolId]);
    expect(workers).toHaveLength(1);
    expect(Object.keys(workers[0]!).sort()).toEqual(["arch", "docker", "id", "last_seen", "metadata", "pool", "problem", "status", "version"]);
    expect(workers[0]).toMatchObject({ id: launcher.worker, pool: poolId, status: "IDLE", metadata: { instance_id: "i-0abc", asg_id: "asg-1" }, version: "1.2.3", arch: "x86_64" });
  });

  test("stack create; secrets are never returned by the API", async () => {
    const r = await cli(data, [
      "stack", "create", "--name", "infra", "--pool", poolId, "--image", "busybox:latest",
      "--env", "REGION=eu-west-1", "--secret", "API_TOKEN=hunter2-secret",
      "--phase", "plan=echo planning", "--phase", "apply=echo applying $API_TOKEN",
    ]);
    expect(r.code).toBe(0);
    stackId = r.stdout.trim();
    const shown = await cli(data, ["stack", "show", stackId, "--json"]);
    expect(shown.stdout).not.toContain("hunter2");
    expect(JSON.parse(shown.stdout)).toMatchObject({ id: stackId, pool: poolId, image: "busybox:latest", environment: [{ name: "REGION", value: "eu-west-1" }, { name: "API_TOKEN", value: null, secret: true }] });
  });

  test("run trigger -> schedule with a JWE that the pool key decrypts; logs deduplicated and acked; FINISHED", async () => {
    const trig = await cli(data, ["run", "trigger", stackId, "--type", "TRACKED"]);
    expect(trig.code).toBe(0);
    const runId = trig.stdout.trim();
    const schedule = await launcher.next("schedule", (m) => m.run === runId);
    expect(schedule.jwe).not.toContain("hunter2");
    const spec = await decryptRun(schedule.jwe, await launcher.decryptionKey());
    expect(spec).toMatchObject({
      id: runId,
      type: "TRACKED",
      runner_image: "busybox:latest",
      environment: [{ name: "REGION", value: "eu-west-1", secret: false }, { name: "API_TOKEN", value: "hunter2-secret", secret: true }],
      phases: [{ name: "plan", commands: ["echo planning"] }, { name: "apply", commands: ["echo applying $API_TOKEN"] }],
    });
    expect((await cliJson<RunJson>(data, ["run", "show", runId])).state).toBe("SCHEDULED");
    expect((await cliJson<WorkerJson[]>(data, ["worker", "list", "--pool", poolId]))[0]?.status).toBe("BUSY");

    await launcher.send("run_accepted", { run: runId });
    await launcher.send("phase", { run: runId, phase: "preparing" });
    await waitFor("PREPARING", async () => (await cliJson<RunJson>(data, ["run", "show", runId])).state === "PREPARING");
    await launcher.send("phase", { run: runId, phase: "plan" });
    const lines = ["planning\n", "applying ***\n", "done\n"];
    const chunk = (seq: number) => launcher.send("log", { run: runId, seq, data: Buffer.from(lines[seq]!).toString("base64") });
    await chunk(0);
    await chunk(1);
    await chunk(1); // resent after a reconnect: stored once
    await chunk(2);
    await launcher.next("log_ack", (m) => m.run === runId && m.seq === 2);
    const acks = launcher.received.filter((m) => m.type === "log_ack").map((m) => (m as { seq: number }).seq);
    expect(acks).toEqual([0, 1, 1, 2]);
    expect((await cliJson<RunJson>(data, ["run", "show", runId])).state).toBe("RUNNING");

    await launcher.send("run_finished", { run: runId, exit_code: 0, reason: "ok", last_seq: 2 });
    const run = await waitFor("FINISHED", async () => {
      const r = await cliJson<RunJson>(data, ["run", "show", runId]);
      return r.state === "FINISHED" ? r : null;
    });
    // The fields of issue 5, plus `messages` (why a launcher rejected a run) and what the trigger said.
    expect(Object.keys(run).sort()).toEqual(["branch", "commit", "created_at", "exit_code", "finished_at", "id", "messages", "reason", "stack", "state", "type", "user_provided_metadata", "worker"]);
    expect(run.messages).toEqual([]);
    expect(run).toMatchObject({ id: runId, stack: stackId, type: "TRACKED", reason: "ok", exit_code: 0, worker: launcher.worker });
    expect(run.finished_at).not.toBeNull();

    const logs = await cli(data, ["run", "logs", runId, "--follow"]);
    expect(logs.stdout).toBe(lines.join(""));
    expect((await cliJson<WorkerJson[]>(data, ["worker", "list", "--pool", poolId]))[0]?.status).toBe("IDLE");
    const list = await cliJson<RunJson[]>(data, ["run", "list"]);
    expect(list.map((r) => r.id)).toContain(runId);
  });

  /** The schedule of the next run this launcher has not seen yet. */
  function nextNewSchedule() {
    const seen = new Set(launcher.received.flatMap((m) => (m.type === "schedule" ? [m.run] : [])));
    return launcher.next("schedule", (m) => !seen.has(m.run));
  }

  test("run trigger --wait exits 1 when the run FAILED", async () => {
    const next = nextNewSchedule();
    const waiting = cli(data, ["run", "trigger", stackId, "--type", "TASK", "--wait"]);
    const schedule = await next;
    await launcher.send("run_accepted", { run: schedule.run });
    await launcher.send("run_finished", { run: schedule.run, exit_code: 3, reason: "failed", last_seq: -1 });
    const r = await waiting;
    expect(r.code).toBe(1);
    expect(r.stdout.trim()).toBe(schedule.run);
    expect(r.stderr).toContain("FAILED");
  });

  test("run trigger --wait waits while the run is active and exits 0 when it FINISHED", async () => {
    const next = nextNewSchedule();
    const waiting = cli(data, ["run", "trigger", stackId, "--type", "PROPOSED", "--wait"]);
    let exited = false;
    void waiting.then(() => (exited = true));
    const schedule = await next;
    await launcher.send("run_accepted", { run: schedule.run });
    await launcher.send("phase", { run: schedule.run, phase: "plan" });
    await waitFor("RUNNING", async () => (await cliJson<RunJson>(data, ["run", "show", schedule.run])).state === "RUNNING");
    await Bun.sleep(700); // a few of its polls see RUNNING
    expect(exited).toBe(false);
    await launcher.send("run_finished", { run: schedule.run, exit_code: 0, reason: "ok", last_seq: -1 });
    const r = await waiting;
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(schedule.run);
    expect(r.stderr).toContain("FINISHED");
    expect((await cliJson<RunJson>(data, ["run", "show", schedule.run])).type).toBe("PROPOSED");
  });

  test("run logs --follow started before the run ends prints the whole log live and exits 0 when it ends", async () => {
    const next = nextNewSchedule();
    const runId = (await cli(data, ["run", "trigger", stackId])).stdout.trim();
    expect((await next).run).toBe(runId);
    await launcher.send("run_accepted", { run: runId });
    await launcher.send("phase", { run: runId, phase: "plan" });
    const say = (seq: number, text: string) => launcher.send("log", { run: runId, seq, data: Buffer.from(text).toString("base64") });
    await say(0, "first\n");
    const proc = spawnCli(data, ["run", "logs", runId, "--follow"]);
    let out = "";
    const reading = (async () => {
      for await (const c of proc.stdout) out += new TextDecoder().decode(c);
    })();
    let exitCode: number | null = null;
    void proc.exited.then((c) => (exitCode = c));
    await waitFor("the follower to print the first line", () => out === "first\n");
    await say(1, "second\n");
    await waitFor("the follower to print the second line live", () => out === "first\nsecond\n");
    await say(2, "third\n");
    await Bun.sleep(400);
    expect(exitCode).toBeNull();
    await launcher.send("run_finished", { run: runId, exit_code: 0, reason: "ok", last_seq: 2 });
    expect(await proc.exited).toBe(0);
    await reading;
    expect(out).toBe("first\nsecond\nthird\n");
  });

  test("invalid messages are answered with an error, unknown types ignored, the server keeps serving", async () => {
    await launcher.client.publishAsync(launcher.uplink, "{not json", { qos: 1 });
    await launcher.client.publishAsync(launcher.uplink, JSON.stringify({ v: 1, type: "telemetry", id: "t1", ts: new Date().toISOString() }), { qos: 1 });
    await launcher.send("log", { run: "01ZZZZZZZZZZZZZZZZZZZZZZZZ", seq: 0, data: "" });
    const err = await launcher.next("error", (m) => m.code === "invalid-message");
    expect(err.message).toContain("not JSON");
    await launcher.next("error", (m) => m.code === "unknown-run");
    expect(launcher.received.filter((m) => m.type === "error")).toHaveLength(2);
    expect((await cli(data, ["pool", "show", poolId, "--json"])).code).toBe(0);
  });

  test("CLI errors: unknown command is a usage error (2), missing resource is 1", async () => {
    expect((await cli(data, ["pool", "frobnicate"])).code).toBe(2);
    const missing = await cli(data, ["run", "show", "01ZZZZZZZZZZZZZZZZZZZZZZZZ"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("does not exist");
  });
});
