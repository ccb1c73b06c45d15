// The agent loop against a real mothership: registration with metadata, runs end to end with masked
// logs, failures, drain/undrain, cancel, runs that cannot be decrypted, stop signals and pool cycle.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { RunningMothership } from "../../../src/mothership/serve.ts";
import type { DownlinkMessage, UplinkMessage } from "../../../src/protocol/messages.ts";
import { cli, cliJson, opensslKeyAndCsr, startServer, tempDir, waitFor } from "../mothership/harness.ts";
import { startAgent, type TestAgent } from "./harness.ts";
import { ShellExecutor } from "./shell-executor.ts";

setDefaultTimeout(30_000);

interface RunJson { id: string; state: string; reason: string | null; exit_code: number | null; worker: string | null; messages: string[] }
interface WorkerJson { id: string; status: string; metadata: Record<string, string>; version: string; arch: string; last_seen: string }

/** A man in the middle: one base64url character in the middle of each schedule's ciphertext replaced. */
function changeOneByteOfCiphertext(m: DownlinkMessage): DownlinkMessage {
  if (m.type !== "schedule") return m;
  const parts = m.jwe.split(".");
  const ct = parts[3] ?? "";
  const i = Math.floor(ct.length / 2);
  parts[3] = ct.slice(0, i) + (ct[i] === "A" ? "B" : "A") + ct.slice(i + 1);
  return { ...m, jwe: parts.join(".") };
}

let dir: Awaited<ReturnType<typeof tempDir>>;
let server: RunningMothership;
let data: string;
let token: string;
let keyPath: string;
let otherKeyPath: string;
let pool: string;
const agents: TestAgent[] = [];

beforeAll(async () => {
  dir = await tempDir("agent-flow-");
  data = `${dir.path}/data`;
  server = await startServer(data);
  keyPath = opensslKeyAndCsr(dir.path, "spacelift").keyPath;
  otherKeyPath = opensslKeyAndCsr(dir.path, "other", ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"]).keyPath;
  const created = await cli(data, ["pool", "create", "--name", "agents", "--csr", `${dir.path}/spacelift.csr`]);
  token = created.stdout.trim();
  pool = (JSON.parse(Buffer.from(token, "base64").toString()) as { pool: string }).pool;
});

afterAll(async () => {
  for (const a of agents) a.agent.stopSignal();
  await Promise.all(agents.map((a) => Promise.race([a.exit.catch(() => 1), Bun.sleep(3_000)])));
  await server?.stop();
  await dir?.remove();
});

async function stack(name: string, phases: string[], extra: string[] = []): Promise<string> {
  const r = await cli(data, ["stack", "create", "--name", name, "--pool", pool, "--image", "busybox", ...extra, ...phases.flatMap((p) => ["--phase", p])]);
  if (r.code !== 0) throw new Error(r.stderr);
  return r.stdout.trim();
}

async function trigger(stackId: string): Promise<string> {
  return (await cli(data, ["run", "trigger", stackId])).stdout.trim();
}

async function settled(run: string, timeoutMs = 15_000): Promise<RunJson> {
  return waitFor(`run ${run} to end`, async () => {
    const r = await cliJson<RunJson>(data, ["run", "show", run]);
    return ["FINISHED", "FAILED", "CANCELED"].includes(r.state) ? r : null;
  }, timeoutMs);
}

async function state(run: string): Promise<string> {
  return (await cliJson<RunJson>(data, ["run", "show", run])).state;
}

async function workers(): Promise<WorkerJson[]> {
  return cliJson<WorkerJson[]>(data, ["worker", "list", "--pool", pool]);
}

async function logs(run: string): Promise<string> {
  return (await cli(data, ["run", "logs", run])).stdout;
}

async function launch(
  executor = new ShellExecutor(),
  extra: { decryptWith?: string; metadata?: Record<string, string>; tamper?: (m: DownlinkMessage) => DownlinkMessage } = {},
): Promise<TestAgent> {
  const scratch = await tempDir("agent-scratch-");
  const a = await startAgent({ token, keyPath, scratch: scratch.path, executor, ...extra });
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

describe("agent loop with a real mothership", () => {
  test("hello registers metadata, version, arch; a run executes with masked logs and FINISHES; the worker is IDLE again", async () => {
    const executor = new ShellExecutor();
    const a = await launch(executor, { metadata: { instance_id: "i-123", asg: "fleet" } });
    const w = (await workers()).find((x) => x.id === a.worker)!;
    expect(w).toMatchObject({ status: "IDLE", metadata: { instance_id: "i-123", asg: "fleet" }, version: "9.9.9-test", arch: "x86_64" });

    const s = await stack("ok", ["plan=echo planning", "apply=echo applying with $TOKEN; echo done"], ["--secret", "TOKEN=s3cr3t-value"]);
    const run = await trigger(s);
    expect(await settled(run)).toMatchObject({ state: "FINISHED", reason: "ok", exit_code: 0, worker: a.worker });
    const text = await waitFor("all logs", async () => {
      const l = await logs(run);
      return l.includes("done") ? l : null;
    });
    expect(text).toBe("planning\napplying with *****\ndone\n");
    expect(text).not.toContain("s3cr3t");
    expect((await workers()).find((x) => x.id === a.worker)?.status).toBe("IDLE");
    await retire(a);
  });

  test("a run that prints 20 MB: every byte reaches the store, in order, and the run FINISHES", async () => {
    const a = await launch();
    const line = "spacelift agent large log line 0123456789abcdef";
    const s = await stack("big", [`big=yes '${line}' | head -c ${20 * 1024 * 1024}`]);
    const run = await trigger(s);
    expect(await settled(run, 60_000)).toMatchObject({ state: "FINISHED", reason: "ok", exit_code: 0 });
    const text = await logs(run);
    expect(text.length).toBe(20 * 1024 * 1024);
    expect(new Set(text.split("\n").slice(0, -1))).toEqual(new Set([line]));
    await retire(a);
  }, 90_000);

  test("a failing command: FAILED, exit code kept, later commands not run", async () => {
    const a = await launch();
    const s = await stack("fails", ["plan=echo before; exit 7", "apply=echo never"]);
    const run = await trigger(s);
    expect(await settled(run)).toMatchObject({ state: "FAILED", reason: "failed", exit_code: 7 });
    expect(await logs(run)).toBe("before\n");
    await retire(a);
  });

  test("drain: no run while drained; undrain and it runs", async () => {
    const executor = new ShellExecutor();
    const a = await launch(executor);
    expect((await cli(data, ["worker", "drain", a.worker])).code).toBe(0);
    await waitFor("DRAINED", async () => (await workers()).find((w) => w.id === a.worker)?.status === "DRAINED");
    await waitFor("agent drained", () => a.agent.workerState.kind === "idle" && a.agent.workerState.drained);
    const run = await trigger(await stack("drained", ["plan=echo hi"]));
    await Bun.sleep(500);
    expect(await state(run)).toBe("QUEUED");
    expect(executor.executed).toEqual([]);
    expect((await cli(data, ["worker", "undrain", a.worker])).code).toBe(0);
    expect(await settled(run)).toMatchObject({ state: "FINISHED" });
    await retire(a);
  });

  test("cancel stops a running run: CANCELED", async () => {
    const a = await launch();
    const run = await trigger(await stack("long", ["plan=echo started; sleep 30; echo never"]));
    await waitFor("RUNNING", async () => (await state(run)) === "RUNNING");
    await waitFor("first line", async () => (await logs(run)).includes("started"));
    const t0 = Date.now();
    expect((await cli(data, ["run", "cancel", run])).code).toBe(0);
    expect(await settled(run)).toMatchObject({ state: "CANCELED", reason: "cancelled" });
    expect(Date.now() - t0).toBeLessThan(5_000);
    await retire(a);
  });

  const CANNOT_DECRYPT = "the run cannot be decrypted with this pool key (another pool's key, or the message was modified)";

  test("a run this worker cannot decrypt (another pool's key) is rejected; nothing executes; the reason is in its log", async () => {
    const executor = new ShellExecutor();
    const a = await launch(executor, { decryptWith: otherKeyPath });
    const run = await trigger(await stack("wrong-key", ["plan=echo must not run"]));
    expect(await settled(run)).toMatchObject({ state: "FAILED", reason: "system-error", messages: [expect.stringContaining("needs an RSA-OAEP key")] });
    expect(executor.executed).toEqual([]);
    expect(await logs(run)).toBe(`mothership: run rejected by worker ${a.worker} (decrypt-failed): ${(await settled(run)).messages[0]}\n`);
    await retire(a);
  });

  test("a schedule whose JWE has one byte changed is rejected (decrypt-failed), shown in run show and run logs; nothing executes", async () => {
    const executor = new ShellExecutor();
    const a = await launch(executor, { tamper: changeOneByteOfCiphertext });
    const waited = await cli(data, ["run", "trigger", await stack("tampered", ["plan=echo must not run > /dev/null"]), "--wait"]);
    const run = waited.stdout.trim();
    expect(waited.code).toBe(1);
    expect(waited.stderr).toBe(`run ${run} FAILED (system-error)\n  ${CANNOT_DECRYPT}\n`);
    expect(await settled(run)).toMatchObject({ state: "FAILED", reason: "system-error", exit_code: null, messages: [CANNOT_DECRYPT] });
    expect(executor.executed).toEqual([]);
    expect(await logs(run)).toBe(`mothership: run rejected by worker ${a.worker} (decrypt-failed): ${CANNOT_DECRYPT}\n`);
    const shown = await cli(data, ["run", "show", run]);
    expect(shown.stdout).toContain("reason: system-error");
    expect(shown.stdout).toContain(`messages: ${JSON.stringify([CANNOT_DECRYPT])}`);
    // The worker is free again, not stuck with the rejected run.
    expect((await workers()).find((w) => w.id === a.worker)?.status).toBe("IDLE");
    await retire(a);
  });

  test("stop signal during a run: the run finishes, then the launcher says goodbye and exits 0", async () => {
    const a = await launch();
    const run = await trigger(await stack("finish-first", ["plan=echo one; sleep 1; echo two"]));
    await waitFor("RUNNING", async () => (await state(run)) === "RUNNING");
    a.agent.stopSignal();
    expect(await a.exit).toBe(0);
    agents.splice(agents.indexOf(a), 1);
    expect(await settled(run)).toMatchObject({ state: "FINISHED", reason: "ok" });
    expect(await logs(run)).toBe("one\ntwo\n");
    expect((await workers()).map((w) => w.id)).not.toContain(a.worker);
  });

  test("two signals: the run is cancelled, the launcher exits 0; an idle launcher exits on the first", async () => {
    const a = await launch();
    const run = await trigger(await stack("two-signals", ["plan=echo started; sleep 30"]));
    await waitFor("first line", async () => (await logs(run)).includes("started"));
    a.agent.stopSignal();
    a.agent.stopSignal();
    expect(await a.exit).toBe(0);
    agents.splice(agents.indexOf(a), 1);
    expect((await settled(run)).state).toBe("CANCELED");

    const idle = await launch();
    idle.agent.stopSignal();
    expect(await idle.exit).toBe(0);
    agents.splice(agents.indexOf(idle), 1);
  });

  test("pool cycle: an idle worker leaves at once, orderly (gone, not crashed)", async () => {
    const a = await launch();
    expect((await cli(data, ["pool", "cycle", pool])).code).toBe(0);
    expect(await a.exit).toBe(0);
    agents.splice(agents.indexOf(a), 1);
    await waitFor("worker gone", async () => !(await workers()).some((w) => w.id === a.worker));
  });
});

describe("heartbeats", () => {
  test("the periodic heartbeat moves last_seen forward and keeps the worker live, with no new hello", async () => {
    // A mothership of its own whose registered message sets a 1 s heartbeat (3 silent seconds = gone).
    const hbDir = await tempDir("agent-heartbeat-");
    const hbData = `${hbDir.path}/data`;
    const hbServer = await startServer(hbData, { heartbeatSeconds: 1 });
    const sent: UplinkMessage[] = [];
    let a: TestAgent | null = null;
    try {
      const hbToken = (await cli(hbData, ["pool", "create", "--name", "hb", "--csr", `${dir.path}/spacelift.csr`])).stdout.trim();
      a = await startAgent({ token: hbToken, keyPath, scratch: `${hbDir.path}/scratch`, executor: new ShellExecutor(), sent });
      const worker = a.worker;
      const seen = async () => (await cliJson<WorkerJson[]>(hbData, ["worker", "list"])).find((w) => w.id === worker);
      const registeredAt = (await waitFor("registered", seen)).last_seen;
      const t0 = Date.now();
      const later = await waitFor("last_seen to move", async () => {
        const w = await seen();
        return w && w.last_seen > registeredAt ? w : null;
      }, 5_000);
      const again = await waitFor("last_seen to move again", async () => {
        const w = await seen();
        return w && w.last_seen > later.last_seen ? w : null;
      }, 5_000);
      expect(again.status).toBe("IDLE");
      // Past three intervals since registration the worker is still live: heartbeats alone kept it so.
      await Bun.sleep(Math.max(0, 3_500 - (Date.now() - t0)));
      const final = await seen();
      expect(final).toBeDefined();
      expect(Date.now() - Date.parse(final?.last_seen ?? "")).toBeLessThan(2_500);
      expect(sent.filter((m) => m.type === "hello")).toHaveLength(1);
      expect(sent.filter((m) => m.type === "heartbeat").length).toBeGreaterThanOrEqual(3);
      expect(sent.find((m) => m.type === "heartbeat")).toMatchObject({ state: "IDLE", run: null });
    } finally {
      a?.agent.stopSignal();
      if (a) await Promise.race([a.exit.catch(() => 1), Bun.sleep(3_000)]);
      await hbServer.stop();
      await hbDir.remove();
    }
  });
});
