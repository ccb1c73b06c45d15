// Pool reset and delete reach the launchers (README: exit codes). The compiled launcher against a real
// `mothership serve`: after `pool reset` the old token's launcher is refused (the embedded broker's
// CONNACK "not authorized", the long-poll's 401 poll-signature-invalid), gives up after five refusals
// in a row and exits 77 with one line saying that a new token is needed; a launcher with the new
// token registers. A mothership that is merely down never counts: the launcher waits for it.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DemoWorld, type Binaries } from "../../../scripts/demo/world.ts";
import { dockerTestEnv } from "../../support/env.ts";
import { newKeyAndCsr, snapshotBinaries } from "./helpers.ts";

setDefaultTimeout(150_000);
const docker = dockerTestEnv();
const binDir = mkdtempSync(join(tmpdir(), "network-bin-"));
const bin: Binaries = snapshotBinaries(binDir);
const quiet = () => {};

interface WorkerJson { id: string; status: string }

const REFUSED = "the mothership refused this pool's certificate";

describe.skipIf(!docker)("a reset or deleted pool ends its launchers", () => {
  let world: DemoWorld;
  beforeAll(async () => {
    world = new DemoWorld(bin, docker!.host, quiet);
    await world.startMothership();
    await world.createPool("reset-me");
  });
  afterAll(async () => {
    await world?.close();
    rmSync(binDir, { recursive: true, force: true });
  });

  const workers = () => world.workers<WorkerJson>();
  const registered = (n: number) => world.waitFor(`${n} worker(s) registered`, async () => ((await workers()).length === n ? true : null));

  async function reset(name: string): Promise<{ token: string; keyB64: string }> {
    const made = newKeyAndCsr(world.dir, name);
    const token = (await world.cliOk(["pool", "reset", world.pool, "--csr", made.csr])).trim();
    return { token, keyB64: Buffer.from(readFileSync(made.key)).toString("base64") };
  }

  for (const protocol of ["mqtt", "poll"] as const) {
    test(`${protocol}: the old token's launcher exits 77 with one line after pool reset; the new token works`, async () => {
      const old = world.startLauncher({ SPACELIFT_WORKER_COMMS_PROTOCOL: protocol });
      await registered(1);
      const started = Date.now();
      const fresh = await reset(`reset-${protocol}`);
      const code = await Promise.race([old.proc.exited, Bun.sleep(90_000).then(() => "still running")]);
      expect(code).toBe(77);
      // Five refusals with the backoff between them (0.5 + 1 + 2 + 4 s at most), after the first one
      // (a long-poll already waiting on the mothership answers within 25 s).
      expect(Date.now() - started).toBeLessThan(45_000);
      const refusals = old.records().filter((r) => r.msg === "broker connection error" || r.msg === "the mothership refused the pool's signature");
      expect(refusals.length).toBeGreaterThanOrEqual(5);
      const lines = old.records().filter((r) => typeof r.msg === "string" && r.msg.startsWith(REFUSED));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ level: "error", attempts: 5, exit_code: 77 });
      expect(String(lines[0]!.msg)).toContain("new token");
      expect(String(lines[0]!.reason)).toBe(protocol === "mqtt" ? "CONNACK not authorized" : "HTTP 401 poll-signature-invalid");

      world.token = fresh.token;
      const next = world.startLauncher({ SPACELIFT_WORKER_COMMS_PROTOCOL: protocol, SPACELIFT_POOL_PRIVATE_KEY: fresh.keyB64 });
      await registered(1);
      expect(next.proc.exitCode).toBeNull();
      await next.stop();
      expect(next.records().some((r) => typeof r.msg === "string" && r.msg.startsWith(REFUSED))).toBe(false);
      // What the later tests start with: this pool's current key.
      world.privateFile("spacelift.key", Buffer.from(fresh.keyB64, "base64").toString("utf8"));
      await world.waitFor("no live worker", async () => (await workers()).length === 0);
    });
  }

  test("a mothership that is down is waited for, not counted: the launcher reconnects after 20 s", async () => {
    const launcher = world.startLauncher({ SPACELIFT_WORKER_COMMS_PROTOCOL: "poll" });
    await registered(1);
    await world.stopMothership();
    await Bun.sleep(20_000);
    expect(launcher.proc.exitCode).toBeNull();
    await world.startMothership();
    await world.waitFor("reconnected", async () => launcher.records().some((r) => r.msg === "reconnected to the mothership"));
    expect(launcher.proc.exitCode).toBeNull();
    await launcher.stop();
  });

  test("pool delete: the launcher exits 77", async () => {
    const launcher = world.startLauncher({ SPACELIFT_WORKER_COMMS_PROTOCOL: "mqtt" });
    await registered(1);
    await launcher.stop();
    await world.waitFor("no live worker", async () => (await workers()).length === 0);
    const again = world.startLauncher({ SPACELIFT_WORKER_COMMS_PROTOCOL: "mqtt" });
    await registered(1);
    await world.cliOk(["pool", "delete", world.pool]);
    const code = await Promise.race([again.proc.exited, Bun.sleep(60_000).then(() => "still running")]);
    expect(code).toBe(77);
    expect(again.records().filter((r) => typeof r.msg === "string" && r.msg.startsWith(REFUSED))).toHaveLength(1);
  });
});
