/**
 * Operator commands beyond the happy path, through the real CLI against a real server: `pool show` and
 * `stack list` output (JSON and text), `stack delete` and `pool delete` (refused while something still
 * uses the resource), and `run logs --follow` on a run that ended with chunks missing (bounded wait).
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { parseArgs } from "../../../src/mothership/cli/args.ts";
import { connect } from "../../../src/mothership/cli/client.ts";
import { runCommand } from "../../../src/mothership/cli/commands.ts";
import type { RunningMothership } from "../../../src/mothership/serve.ts";
import { FakeLauncher, cli, cliJson, opensslKeyAndCsr, startServer, tempDir, waitFor } from "./harness.ts";

setDefaultTimeout(30_000);

let dir: Awaited<ReturnType<typeof tempDir>>;
let server: RunningMothership;
let data = "";
let keyPath = "";
let csrPath = "";
const launchers: FakeLauncher[] = [];

beforeAll(async () => {
  dir = await tempDir("mothership-cli-");
  data = `${dir.path}/data`;
  server = await startServer(data);
  ({ keyPath, csrPath } = opensslKeyAndCsr(dir.path, "ops", ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"]));
});

afterAll(async () => {
  for (const l of launchers) await l.stop();
  await server?.stop();
  await dir?.remove();
});

async function ok(args: string[]): Promise<string> {
  const r = await cli(data, args);
  if (r.code !== 0) throw new Error(`mothership ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

async function newPool(name: string): Promise<{ id: string; token: string }> {
  const token = (await ok(["pool", "create", "--name", name, "--csr", csrPath, "--description", `${name} hosts`])).trim();
  return { id: (JSON.parse(Buffer.from(token, "base64").toString()) as { pool: string }).pool, token };
}

const newStack = async (name: string, pool: string) =>
  (await ok(["stack", "create", "--name", name, "--pool", pool, "--image", "busybox:1", "--env", "A=1", "--secret", "S=top-secret-value", "--phase", "plan=echo hi"])).trim();

describe("show and list output", () => {
  test("pool show: JSON with its workers and the stacks that use it; text as key: value lines", async () => {
    const pool = await newPool("shown");
    const stack = await newStack("user", pool.id);
    const json = await cliJson<Record<string, unknown>>(data, ["pool", "show", pool.id]);
    expect(json).toEqual({
      id: pool.id,
      name: "shown",
      description: "shown hosts",
      certificate_serial: expect.stringMatching(/^[0-9a-f]+$/i),
      key_type: expect.any(String),
      created_at: expect.any(String),
      workers: { total: 0, idle: 0, busy: 0, drained: 0, docker_unreachable: 0 },
      stacks: [stack],
    });
    const text = (await ok(["pool", "show", pool.id])).split("\n");
    expect(text).toContain(`id: ${pool.id}`);
    expect(text).toContain("name: shown");
    expect(text).toContain("description: shown hosts");
    expect(text).toContain(`stacks: ["${stack}"]`);
    expect(text).toContain(`workers: {"total":0,"idle":0,"busy":0,"drained":0,"docker_unreachable":0}`);
  });

  test("stack list: JSON without secret values; text is a table with a header", async () => {
    const pool = await newPool("listed");
    const stack = await newStack("listed-stack", pool.id);
    const all = await cliJson<Array<Record<string, unknown>>>(data, ["stack", "list"]);
    const mine = all.find((s) => s.id === stack);
    expect(mine).toMatchObject({ name: "listed-stack", pool: pool.id, image: "busybox:1", environment: [{ name: "A", value: "1", secret: false }, { name: "S", value: null, secret: true }] });
    const text = await ok(["stack", "list"]);
    expect(text).not.toContain("top-secret-value");
    const [header, ...rows] = text.trimEnd().split("\n");
    expect(header?.split(/\s+/)).toEqual(["ID", "NAME", "POOL", "IMAGE", "CREATED_AT"]);
    const row = rows.find((r) => r.startsWith(stack))?.split(/\s+/);
    expect(row?.slice(0, 4)).toEqual([stack, "listed-stack", pool.id, "busybox:1"]);
    expect(rows).toHaveLength(all.length);
  });
});

describe("delete", () => {
  test("pool delete is refused while a stack uses the pool; stack delete (refused while a run is open) frees it", async () => {
    const pool = await newPool("doomed");
    const stack = await newStack("doomed-stack", pool.id);
    const refused = await cli(data, ["pool", "delete", pool.id]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`pool ${pool.id} is used by 1 stack(s): ${stack}`);
    expect(refused.stderr).toContain("mothership stack delete");

    // No worker in this pool, so the run stays QUEUED: the stack is still needed.
    const run = (await ok(["run", "trigger", stack])).trim();
    const busy = await cli(data, ["stack", "delete", stack]);
    expect(busy.code).toBe(1);
    expect(busy.stderr).toContain(`stack ${stack} has runs that have not ended: ${run}`);
    await ok(["run", "cancel", run]);

    expect((await ok(["stack", "delete", stack])).trim()).toBe(`deleted stack ${stack}`);
    const gone = await cli(data, ["stack", "show", stack]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain(`stack ${stack} does not exist`);
    // The ended run stays readable.
    expect((await cliJson<{ state: string }>(data, ["run", "show", run])).state).toBe("CANCELED");

    expect((await ok(["pool", "delete", pool.id])).trim()).toBe(`deleted pool ${pool.id}`);
    expect((await cliJson<Array<{ id: string }>>(data, ["pool", "list"])).map((p) => p.id)).not.toContain(pool.id);
    expect((await cli(data, ["pool", "show", pool.id])).stderr).toContain(`pool ${pool.id} does not exist`);
    expect((await cli(data, ["stack", "delete", stack])).code).toBe(1);
  });

  test("a deleted pool's certificate is refused by the broker", async () => {
    const pool = await newPool("revoked");
    const before = await FakeLauncher.fromToken(pool.token, keyPath, server.brokerEndpoint);
    launchers.push(before);
    await before.connect();
    await before.stop();
    await ok(["pool", "delete", pool.id]);
    const after = await FakeLauncher.fromToken(pool.token, keyPath, server.brokerEndpoint);
    launchers.push(after);
    expect(await after.connect().then(() => "connected", () => "refused")).toBe("refused");
  });
});

describe("run logs --follow of a run whose last chunks never arrive", () => {
  test("ends after the bounded wait with a note and exit 1, printing what is stored", async () => {
    const pool = await newPool("lossy");
    const stack = await newStack("lossy-stack", pool.id);
    const l = await FakeLauncher.fromToken(pool.token, keyPath, server.brokerEndpoint);
    launchers.push(l);
    await l.connect();
    await l.hello();
    const run = (await ok(["run", "trigger", stack])).trim();
    await l.next("schedule", (m) => m.run === run);
    await l.send("run_accepted", { run });
    await l.send("log", { run, seq: 0, data: Buffer.from("kept\n").toString("base64") });
    // The launcher says it printed chunks 0..2, but 1 and 2 never reach the mothership.
    await l.send("run_finished", { run, exit_code: 0, reason: "ok", last_seq: 2 });
    await waitFor("FINISHED", async () => (await cliJson<{ state: string }>(data, ["run", "show", run])).state === "FINISHED");

    const api = await connect({ dataDir: data });
    const out: string[] = [];
    const err: string[] = [];
    const t0 = Date.now();
    const code = await runCommand("logs", parseArgs([run, "--follow"], { values: [], switches: ["follow"] }), api, { out: (t) => out.push(t), err: (t) => err.push(t) }, (b) => out.push(Buffer.from(b).toString()), { incompleteLogsWaitMs: 800 });
    const took = Date.now() - t0;
    expect(code).toBe(1);
    expect(out.join("")).toBe("kept\n");
    expect(took).toBeGreaterThanOrEqual(800);
    expect(took).toBeLessThan(5_000);
    expect(err.join("\n")).toContain(`note: run ${run} ended FINISHED but its log is incomplete (it reported chunks up to seq 2): chunks after seq 0 did not arrive`);
  });
});
