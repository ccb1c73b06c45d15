/**
 * Log caps end to end: `mothership serve --max-log-chunk-bytes 64KiB --max-run-log-bytes 128KiB` as
 * a process, a launcher speaking real MQTT over mutual TLS with the pool certificate, and the
 * operator's view through the CLI. A chunk over the chunk cap is refused and not stored; the chunk
 * that takes the run past its cap stops it: FAILED log-limit-exceeded in `run show`, a last line in
 * `run logs` naming the flag, `cancel` sent to the launcher, one warning in the server's log.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { FakeLauncher, cli, cliJson, opensslKeyAndCsr, repoRoot, tempDir, waitFor } from "./harness.ts";

setDefaultTimeout(60_000);

const KIB = 1024;
let dir: Awaited<ReturnType<typeof tempDir>>;
let data = "";
let server: Bun.Subprocess<"ignore", "pipe", "pipe">;
let serverLog = "";
let launcher: FakeLauncher | undefined;

beforeAll(async () => {
  dir = await tempDir("mothership-log-limits-");
  data = join(dir.path, "data");
  server = Bun.spawn(
    [process.execPath, join(repoRoot, "src/mothership/main.ts"), "serve", "--data", data, "--http", "127.0.0.1:0", "--mqtt", "127.0.0.1:0", "--max-log-chunk-bytes", "64KiB", "--max-run-log-bytes", "128KiB"],
    { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...process.env, MOTHERSHIP_LOG_LEVEL: "warn", MOTHERSHIP_URL: "", MOTHERSHIP_TOKEN: "", MOTHERSHIP_CA: "" } },
  );
  let out = "";
  void (async () => {
    for await (const c of server.stdout) out += new TextDecoder().decode(c);
  })();
  void (async () => {
    for await (const c of server.stderr) serverLog += new TextDecoder().decode(c);
  })();
  await waitFor("serve to start", () => out.includes("mothership ready"), 20_000);
});

afterAll(async () => {
  await launcher?.stop();
  server?.kill("SIGTERM");
  await server?.exited;
  await dir?.remove();
});

test("a chunk over the chunk cap is refused; the run past its cap ends FAILED log-limit-exceeded with a note, and its launcher is told to cancel", async () => {
  const op = opensslKeyAndCsr(dir.path, "pool", ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
  const created = await cli(data, ["pool", "create", "--name", "capped", "--csr", op.csrPath]);
  expect(created.code).toBe(0);
  const token = created.stdout.trim();
  const pool = (JSON.parse(Buffer.from(token, "base64").toString("utf8")) as { pool: string }).pool;
  launcher = await FakeLauncher.fromToken(token, op.keyPath);
  await launcher.connect();
  await launcher.hello();
  await launcher.next("registered");
  const stack = (await cli(data, ["stack", "create", "--name", "loud", "--pool", pool, "--image", "busybox", "--phase", "plan=yes"])).stdout.trim();
  const run = (await cli(data, ["run", "trigger", stack])).stdout.trim();
  await launcher.next("schedule", (m) => m.run === run);
  await launcher.send("run_accepted", { run });
  await launcher.send("phase", { run, phase: "plan" });

  const bytes = (n: number, c: string) => Buffer.from(c.repeat(n)).toString("base64");
  // One byte over the chunk cap: refused, the run goes on.
  await launcher.send("log", { run, seq: 0, data: bytes(64 * KIB + 1, "x") });
  const refused = await launcher.next("error", (m) => m.code === "log-refused");
  expect(refused.message).toContain("--max-log-chunk-bytes");
  await launcher.send("log", { run, seq: 0, data: bytes(64 * KIB, "a") });
  await launcher.send("log", { run, seq: 1, data: bytes(64 * KIB, "b") });
  await launcher.next("log_ack", (m) => m.run === run && m.seq === 1);
  expect((await cliJson<{ state: string }>(data, ["run", "show", run])).state).toBe("RUNNING");

  // 128 KiB stored: the next byte is over the run's cap.
  await launcher.send("log", { run, seq: 2, data: bytes(1, "c") });
  await launcher.next("cancel", (m) => m.run === run);
  const shown = await cliJson<{ state: string; reason: string; messages: string[] }>(data, ["run", "show", run]);
  expect(shown).toMatchObject({ state: "FAILED", reason: "log-limit-exceeded" });
  expect(shown.messages.join("\n")).toContain("--max-run-log-bytes");
  const logs = await cli(data, ["run", "logs", run, "--follow"]);
  expect(logs.code).toBe(0);
  expect(logs.stdout.slice(128 * KIB)).toBe("mothership: the run's log reached the limit of 128 KiB per run, so the run was stopped and later output was not kept; start the mothership with a larger --max-run-log-bytes to allow more\n");
  expect(logs.stdout.slice(0, 128 * KIB)).toBe("a".repeat(64 * KIB) + "b".repeat(64 * KIB));

  // The launcher's report of the cancel changes nothing; the worker is free again.
  await launcher.send("run_finished", { run, exit_code: 143, reason: "cancelled", last_seq: 2 });
  await waitFor("worker IDLE", async () => (await cliJson<Array<{ status: string }>>(data, ["worker", "list"]))[0]?.status === "IDLE");
  expect((await cliJson<{ reason: string }>(data, ["run", "show", run])).reason).toBe("log-limit-exceeded");
  const warned = serverLog.split("\n").filter((l) => l.includes("log chunk refused"));
  expect(warned).toHaveLength(1);
  expect(warned[0]).not.toContain("xxxx");
});
