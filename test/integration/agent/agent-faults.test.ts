// Faults around the agent: the mothership (and its broker) restarted in the middle of a run loses no
// log line and duplicates none; a launcher that dies with unacknowledged output hands it over to the
// next launcher on the same scratch dir, which resends it, and the run is reported failed.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { RunningMothership } from "../../../src/mothership/serve.ts";
import { LogSpool } from "../../../src/launcher/agent/log-spool.ts";
import { cli, cliJson, opensslKeyAndCsr, startServer, tempDir, waitFor } from "../mothership/harness.ts";
import { startAgent, testLogger } from "./harness.ts";
import { ShellExecutor } from "./shell-executor.ts";

setDefaultTimeout(60_000);

interface RunJson { id: string; state: string; reason: string | null; worker: string | null }

let dir: Awaited<ReturnType<typeof tempDir>>;
let server: RunningMothership;
let data: string;
let token: string;
let keyPath: string;
let pool: string;

beforeAll(async () => {
  dir = await tempDir("agent-faults-");
  data = `${dir.path}/data`;
  server = await startServer(data);
  keyPath = opensslKeyAndCsr(dir.path, "spacelift").keyPath;
  token = (await cli(data, ["pool", "create", "--name", "faults", "--csr", `${dir.path}/spacelift.csr`])).stdout.trim();
  pool = (JSON.parse(Buffer.from(token, "base64").toString()) as { pool: string }).pool;
});

afterAll(async () => {
  await server?.stop();
  await dir?.remove();
});

async function restartServer(downMs: number): Promise<void> {
  const ports = { http: server.httpPort, mqtt: server.mqttPort };
  await server.stop();
  await Bun.sleep(downMs);
  server = await startServer(data, ports);
}

async function runOf(id: string): Promise<RunJson> {
  return cliJson<RunJson>(data, ["run", "show", id]);
}

async function storedLogs(run: string): Promise<string> {
  return (await cli(data, ["run", "logs", run])).stdout;
}

const numbered = (n: number) => Array.from({ length: n }, (_, i) => `line ${i + 1}\n`).join("");

describe("agent faults", () => {
  test("broker restart mid-run: every line stored exactly once, the run still FINISHES", async () => {
    const scratch = await tempDir("agent-scratch-");
    const executor = new ShellExecutor();
    const a = await startAgent({ token, keyPath, scratch: scratch.path, executor });
    try {
      const stack = (await cli(data, ["stack", "create", "--name", "restart", "--pool", pool, "--image", "busybox", "--phase", "plan=i=1; while [ $i -le 150 ]; do echo line $i; i=$((i+1)); sleep 0.02; done"])).stdout.trim();
      const run = (await cli(data, ["run", "trigger", stack])).stdout.trim();
      await waitFor("output flowing", async () => (await storedLogs(run)).includes("line 20\n"));
      await restartServer(1_500);
      const done = await waitFor("FINISHED", async () => {
        const r = await runOf(run);
        return r.state === "FINISHED" ? r : null;
      }, 30_000);
      expect(done.reason).toBe("ok");
      const text = await waitFor("all lines stored", async () => {
        const l = await storedLogs(run);
        return l.includes("line 150\n") ? l : null;
      });
      expect(text).toBe(numbered(150));
      expect(executor.output.get(run)).toBe(numbered(150));
      a.agent.stopSignal();
      expect(await a.exit).toBe(0);
    } finally {
      await scratch.remove();
    }
  });

  test("launcher dies with output only in its spool: the next launcher resumes its identity, resends, reports the run failed", async () => {
    const scratch = await tempDir("agent-scratch-");
    const firstExecutor = new ShellExecutor();
    const first = await startAgent({ token, keyPath, scratch: scratch.path, executor: firstExecutor });
    const stack = (await cli(data, ["stack", "create", "--name", "dies", "--pool", pool, "--image", "busybox", "--phase", "plan=i=1; while [ $i -le 40 ]; do echo line $i; i=$((i+1)); sleep 0.05; done; sleep 30"])).stdout.trim();
    const run = (await cli(data, ["run", "trigger", stack])).stdout.trim();
    await waitFor("RUNNING", async () => (await runOf(run)).state === "RUNNING");
    // The broker goes away; meanwhile the run prints the rest, which only reaches the spool.
    const ports = { http: server.httpPort, mqtt: server.mqttPort };
    await server.stop();
    await Bun.sleep(2_500);
    // The launcher "dies" (third signal: out at once, connection cut) and its run dies with it.
    first.agent.stopSignal();
    first.agent.stopSignal();
    first.agent.stopSignal();
    expect(await first.exit).toBe(1);
    firstExecutor.killAll();
    await Bun.sleep(200);
    const spooled = await LogSpool.open(`${scratch.path}/spool`, testLogger);
    expect(spooled.list().map((s) => s.run)).toEqual([run]);
    expect(spooled.lastSeq(run)).toBeGreaterThanOrEqual(30);

    server = await startServer(data, ports);
    const second = await startAgent({ token, keyPath, scratch: scratch.path, executor: new ShellExecutor() });
    try {
      expect(second.worker).toBe(first.worker);
      const failed = await waitFor("FAILED", async () => {
        const r = await runOf(run);
        return r.state === "FAILED" ? r : null;
      }, 20_000);
      expect(failed.reason).toBe("launcher-crashed");
      const text = await waitFor("spooled lines stored", async () => {
        const l = await storedLogs(run);
        return l.includes("line 40\n") ? l : null;
      });
      expect(text).toBe(numbered(40));
      await waitFor("spool emptied", async () => (await LogSpool.open(`${scratch.path}/spool`, testLogger)).list().length === 0);
      second.agent.stopSignal();
      expect(await second.exit).toBe(0);
    } finally {
      await scratch.remove();
    }
  });
});
