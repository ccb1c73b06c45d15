// One sequence origin, checked where it matters: a real mothership and agent, and an executor whose
// output goes through the launcher's real log pipeline (marker parser, maskers, chunker). The seqs the
// chunker hands to the sink are exactly the seqs the transport carries, from 0, and `run_finished`
// says the last of them - or -1 for a run that printed nothing.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { LogChunk, RunExecutor, RunResult, RunSink } from "../../../src/launcher/run-executor.ts";
import { LogPipeline } from "../../../src/launcher/supervisor/log-pipeline.ts";
import type { RunningMothership } from "../../../src/mothership/serve.ts";
import type { UplinkMessage } from "../../../src/protocol/messages.ts";
import { encodePhaseMarker, newMarkerNonce } from "../../../src/protocol/phase-markers.ts";
import { runSecrets, type RunSpec } from "../../../src/protocol/run-spec.ts";
import { cli, cliJson, opensslKeyAndCsr, startServer, tempDir, waitFor } from "../mothership/harness.ts";
import { startAgent, type TestAgent } from "./harness.ts";

setDefaultTimeout(30_000);

const QUIET = "(prints nothing)";

/**
 * Prints each command's text as the stdout of its phase (markers included, as the worker writes them)
 * through the real LogPipeline, in 7-byte chunks so a short run makes many; keeps every chunk the
 * pipeline handed to the sink.
 */
class PipelineExecutor implements RunExecutor {
  readonly produced = new Map<string, LogChunk[]>();

  async execute(spec: RunSpec, sink: RunSink): Promise<RunResult> {
    const produced: LogChunk[] = [];
    this.produced.set(spec.id, produced);
    const recording: RunSink = {
      phase: (run, name) => sink.phase(run, name),
      log: async (chunk) => {
        produced.push(chunk);
        await sink.log(chunk);
      },
    };
    const nonce = newMarkerNonce();
    const pipeline = new LogPipeline({ run: spec.id, stackId: spec.stack.id, sink: recording, nonce, secrets: runSecrets(spec), maxChunkBytes: 7 });
    recording.phase(spec.id, "preparing");
    for (const phase of spec.phases) {
      await pipeline.output({ stream: "stdout", data: encodePhaseMarker(nonce, phase.name) });
      for (const command of phase.commands) {
        if (command !== QUIET) await pipeline.output({ stream: "stdout", data: new TextEncoder().encode(`${command}\n`) });
      }
    }
    await pipeline.finish();
    return { run: spec.id, exitCode: 0, reason: "ok", lastSeq: pipeline.lastSeq, messages: [] };
  }
}

let dir: Awaited<ReturnType<typeof tempDir>>;
let server: RunningMothership;
let data: string;
let pool: string;
let agent: TestAgent;
const executor = new PipelineExecutor();
const sent: UplinkMessage[] = [];

beforeAll(async () => {
  dir = await tempDir("agent-seq-");
  data = `${dir.path}/data`;
  server = await startServer(data);
  const { keyPath } = opensslKeyAndCsr(dir.path, "spacelift");
  const token = (await cli(data, ["pool", "create", "--name", "seq", "--csr", `${dir.path}/spacelift.csr`])).stdout.trim();
  pool = (JSON.parse(Buffer.from(token, "base64").toString()) as { pool: string }).pool;
  agent = await startAgent({ token, keyPath, scratch: `${dir.path}/scratch`, executor, sent });
  await waitFor("worker registered", async () => (await cliJson<Array<{ id: string }>>(data, ["worker", "list", "--pool", pool])).find((w) => w.id === agent.worker));
});

afterAll(async () => {
  agent?.agent.stopSignal();
  await Promise.race([agent?.exit.catch(() => 1), Bun.sleep(3_000)]);
  await server?.stop();
  await dir?.remove();
});

async function runToEnd(name: string, phases: string[]): Promise<string> {
  const created = await cli(data, ["stack", "create", "--name", name, "--pool", pool, "--image", "busybox", ...phases.flatMap((p) => ["--phase", p])]);
  if (created.code !== 0) throw new Error(created.stderr);
  const run = (await cli(data, ["run", "trigger", created.stdout.trim()])).stdout.trim();
  await waitFor(`run ${run} to end`, async () => (await cliJson<{ state: string }>(data, ["run", "show", run])).state === "FINISHED", 15_000);
  return run;
}

describe("log seq from the chunker to the wire", () => {
  test("the transport carries the chunker's seqs unchanged, from 0; last_seq is the last of them", async () => {
    const run = await runToEnd("loud", ["plan=one two three four five", "apply=six seven"]);
    const produced = executor.produced.get(run)!;
    expect(produced.length).toBeGreaterThan(3);
    expect(produced.map((c) => c.seq)).toEqual(produced.map((_, i) => i));
    // Delivery is at least once (a resend after a reconnect repeats a chunk): compare each seq's first send.
    const onWire = new Map<number, string>();
    for (const m of sent) if (m.type === "log" && m.run === run && !onWire.has(m.seq)) onWire.set(m.seq, m.data);
    expect([...onWire.keys()]).toEqual(produced.map((c) => c.seq));
    expect([...onWire.values()]).toEqual(produced.map((c) => Buffer.from(c.data).toString("base64")));
    const finished = sent.find((m) => m.type === "run_finished" && m.run === run);
    expect(finished).toMatchObject({ last_seq: produced.at(-1)!.seq });
    expect((await cli(data, ["run", "logs", run])).stdout).toBe("one two three four five\nsix seven\n");
  });

  test("a run that printed nothing: no log message, last_seq -1, and the mothership finishes it", async () => {
    const run = await runToEnd("quiet", [`plan=${QUIET}`]);
    expect(executor.produced.get(run)).toEqual([]);
    expect(sent.filter((m) => m.type === "log" && m.run === run)).toEqual([]);
    expect(sent.find((m) => m.type === "run_finished" && m.run === run)).toMatchObject({ last_seq: -1 });
    expect((await cli(data, ["run", "logs", run])).stdout).toBe("");
  });
});
