/**
 * What launchers send reaches operators' terminals through the CLI: a launcher's metadata, version
 * and arch in `worker list`, a worker's rejection messages in `run show` and `run trigger --wait`.
 * Control characters in them (ESC sequences, CR, BEL, C1 CSI) are printed as visible escapes, in
 * tables, in `show` output and in `--json` (values that are objects are shown as JSON, with JSON's
 * escapes); `run logs` prints the run's own bytes as they are.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { printable, printableJson } from "../../../src/mothership/cli/terminal.ts";
import type { RunningMothership } from "../../../src/mothership/serve.ts";
import { FakeLauncher, cli, opensslKeyAndCsr, startServer, tempDir, waitFor } from "./harness.ts";

setDefaultTimeout(30_000);

let dir: Awaited<ReturnType<typeof tempDir>>;
let server: RunningMothership;
let data = "";
let keyPath = "";
let csrPath = "";
let pool = "";
let launcher: FakeLauncher;

/** Any byte a terminal would act on: C0 controls but the newlines between lines, DEL, and C1 (as UTF-8). */
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;

async function ok(args: string[]): Promise<string> {
  const r = await cli(data, args);
  if (r.code !== 0) throw new Error(`mothership ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

beforeAll(async () => {
  dir = await tempDir("mothership-safe-output-");
  data = `${dir.path}/data`;
  server = await startServer(data);
  ({ keyPath, csrPath } = opensslKeyAndCsr(dir.path, "tty", ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"]));
  const token = (await ok(["pool", "create", "--name", "tty", "--csr", csrPath])).trim();
  pool = (JSON.parse(Buffer.from(token, "base64").toString()) as { pool: string }).pool;
  launcher = await FakeLauncher.fromToken(token, keyPath, server.brokerEndpoint);
  await launcher.connect();
  await launcher.send("hello", {
    metadata: { "host\x1b]0;pwned\x07": "clear\x1b[2Jscreen", note: "over\rwrite\x07bell", csi: "c1\u009b31m" },
    version: "9.9\x1b[31m",
    arch: "x86_64\r",
    state: "IDLE",
    run: null,
  });
  await waitFor("the worker", () => server && cli(data, ["worker", "list", "--pool", pool, "--json"]).then((r) => (r.stdout.includes(launcher.worker) ? true : null)));
});

afterAll(async () => {
  await launcher?.stop();
  await server?.stop();
  await dir?.remove();
});

describe("printable", () => {
  test("C0, DEL and C1 become visible escapes; other text, backslashes and non-ASCII stay", () => {
    expect(printable("a\x1b[2Jb\rc\x07d\x7fe\u009bf\u0085g\tz\n")).toBe("a\\x1b[2Jb\\x0dc\\x07d\\x7fe\\u009bf\\u0085g\\x09z\\x0a");
    expect(printable("naïve ✓ C:\\path")).toBe("naïve ✓ C:\\path");
    expect(printableJson({ k: "\x1b\u009b\x7f" })).toBe('{\n  "k": "\\u001b\\u009b\\u007f"\n}');
    expect(JSON.parse(printableJson({ k: "\x1b\u009b\x7f" }))).toEqual({ k: "\x1b\u009b\x7f" });
  });
});

describe("worker list", () => {
  test("metadata, version and arch with ESC, CR, BEL and CSI are shown escaped in the table", async () => {
    const out = await ok(["worker", "list", "--pool", pool]);
    expect(out).not.toMatch(RAW_CONTROL);
    // Metadata is an object, shown as JSON: its C0 escapes are JSON's, C1 is escaped on top.
    expect(out).toContain("clear\\u001b[2Jscreen");
    expect(out).toContain("over\\rwrite\\u0007bell");
    expect(out).toContain("host\\u001b]0;pwned\\u0007");
    expect(out).toContain("c1\\u009b31m");
    expect(out).toContain("9.9\\x1b[31m");
    expect(out).toContain("x86_64\\x0d");
    // Still one header and one row: a CR or newline inside a cell cannot start a line of its own.
    const lines = out.trimEnd().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[1]?.startsWith(launcher.worker)).toBe(true);
  });

  test("--json: the same values, escaped, and parsed back exactly", async () => {
    const out = await ok(["worker", "list", "--pool", pool, "--json"]);
    expect(out).not.toMatch(RAW_CONTROL);
    const [w] = JSON.parse(out) as Array<{ metadata: Record<string, string>; version: string }>;
    expect(w?.metadata.csi).toBe("c1\u009b31m");
    expect(w?.version).toBe("9.9\x1b[31m");
  });
});

describe("a run the worker rejected with control characters in its messages", () => {
  let run = "";

  test("run show and run trigger --wait print the messages escaped; run logs prints the run's log as stored", async () => {
    const stack = (await ok(["stack", "create", "--name", "tty-stack", "--pool", pool, "--image", "busybox:1", "--phase", "plan=true"])).trim();
    const trigger = cli(data, ["run", "trigger", stack, "--wait"]);
    const scheduled = await launcher.next("schedule");
    run = scheduled.run;
    await launcher.send("run_rejected", { run, reason: "policy-denied", messages: ["denied\x1b[2J\rby\x07policy\u009b"] });
    const waited = await trigger;
    expect(waited.code).toBe(1);
    expect(waited.stderr).toContain("denied\\x1b[2J\\x0dby\\x07policy\\u009b");
    expect(waited.stderr).not.toMatch(RAW_CONTROL);

    const shown = await ok(["run", "show", run]);
    expect(shown).toContain(`messages: ["denied\\u001b[2J\\rby\\u0007policy\\u009b"]`);
    expect(shown).not.toMatch(RAW_CONTROL);

    // The log is the run's output (here with the mothership's note of why it ended): printed as it is.
    const logs = await ok(["run", "logs", run]);
    expect(logs).toContain("denied\x1b[2J\rby\x07policy\u009b");
  });
});
