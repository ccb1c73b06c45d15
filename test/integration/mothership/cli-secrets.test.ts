/**
 * Stack secrets from the operator to the run, never in the clear on the way: the real CLI takes them
 * from a file or stdin (a value on argv still works, with a warning); the database, its WAL and SHM
 * never hold the value (a marker is grepped for), a data dir of an older version with plaintext values
 * is sealed at start, and `secrets rotate-key` re-encrypts offline (also after a crash half-way) while
 * runs keep getting the value, checked by decrypting each run's JWE with the pool key.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { Database } from "bun:sqlite";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { newSecretKey, readKeyring, writeKeyring } from "../../../src/mothership/secret-box.ts";
import type { RunningMothership } from "../../../src/mothership/serve.ts";
import { decryptRun } from "../../../src/protocol/envelope.ts";
import { FakeLauncher, cli, opensslKeyAndCsr, repoRoot, startServer, tempDir } from "./harness.ts";

setDefaultTimeout(60_000);

let dir: Awaited<ReturnType<typeof tempDir>>;
let server: RunningMothership | null = null;
let data = "";
let keyPath = "";
let token = "";
let pool = "";
const launchers: FakeLauncher[] = [];

async function ok(args: string[]): Promise<string> {
  const r = await cli(data, args);
  if (r.code !== 0) throw new Error(`mothership ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** The real CLI with `stdin` piped in. */
async function cliWithStdin(args: string[], stdin: string) {
  const proc = Bun.spawn([process.execPath, join(repoRoot, "src/mothership/main.ts"), ...args, "--data", data], {
    stdin: new TextEncoder().encode(stdin),
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, MOTHERSHIP_URL: "", MOTHERSHIP_TOKEN: "", MOTHERSHIP_CA: "" },
  });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

async function start(): Promise<void> {
  server = await startServer(data);
  const l = await FakeLauncher.fromToken(token, keyPath, server.brokerEndpoint);
  launchers.push(l);
  await l.connect();
  await l.hello();
}

async function stopServer(): Promise<void> {
  for (const l of launchers.splice(0)) await l.stop();
  await server?.stop();
  server = null;
}

/** Triggers a run of `stack` and returns the environment its decrypted run spec carries; the run then finishes. */
async function runEnvironment(stack: string): Promise<Record<string, string>> {
  const l = launchers.at(-1)!;
  const run = (await ok(["run", "trigger", stack])).trim();
  const schedule = await l.next("schedule", (m) => m.run === run);
  const spec = await decryptRun(schedule.jwe, await l.decryptionKey());
  await l.send("run_accepted", { run });
  await l.send("run_finished", { run, exit_code: 0, reason: "ok", last_seq: -1 });
  return Object.fromEntries(spec.environment.map((e) => [e.name, e.value]));
}

/** How many of the database's files hold `marker` (bytes, as grep -c would find it). */
function filesHolding(marker: string): string[] {
  return ["mothership.db", "mothership.db-wal", "mothership.db-shm"]
    .map((f) => join(data, f))
    .filter((f) => existsSync(f) && readFileSync(f).includes(Buffer.from(marker)));
}

const marker = (what: string) => `MARKER-${what}-${crypto.randomUUID()}`;

beforeAll(async () => {
  dir = await tempDir("mothership-secrets-");
  data = join(dir.path, "data");
  let csrPath = "";
  ({ keyPath, csrPath } = opensslKeyAndCsr(dir.path, "sec", ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"]));
  server = await startServer(data);
  token = (await ok(["pool", "create", "--name", "sec", "--csr", csrPath])).trim();
  pool = (JSON.parse(Buffer.from(token, "base64").toString()) as { pool: string }).pool;
  await server.stop();
  await start();
});

afterAll(async () => {
  await stopServer();
  await dir?.remove();
});

const stackArgs = (name: string) => ["stack", "create", "--name", name, "--pool", pool, "--image", "busybox:1", "--phase", "plan=true"];

describe("secrets from a file or stdin", () => {
  test("--secret-file (trailing newline trimmed) and --secret NAME=- (stdin): no warning, values reach the run", async () => {
    const file = join(dir.path, "db-password");
    await Bun.write(file, "from-a-file\n");
    const r = await cliWithStdin([...stackArgs("files"), "--secret-file", `DB_PASSWORD=${file}`, "--secret", "API_KEY=-", "--env", "PLAIN=1"], "from-stdin\n");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(await runEnvironment(r.stdout.trim())).toEqual({ PLAIN: "1", DB_PASSWORD: "from-a-file", API_KEY: "from-stdin" });
  });

  test("--secret-stdin NAME reads the same way; a multi-line value keeps its inner newlines", async () => {
    const r = await cliWithStdin([...stackArgs("stdin"), "--secret-stdin", "CERT"], "line 1\nline 2\n");
    expect(r.code).toBe(0);
    expect(await runEnvironment(r.stdout.trim())).toEqual({ CERT: "line 1\nline 2" });
  });

  test("--secret NAME=VALUE still works, with one warning naming the safer flags", async () => {
    const r = await cli(data, [...stackArgs("argv"), "--secret", "A=on-argv", "--secret", "B=also"]);
    expect(r.code).toBe(0);
    expect(r.stderr.trim().split("\n")).toEqual([expect.stringContaining("mothership: warning: --secret NAME=VALUE puts the value on the command line")]);
    expect(r.stderr).toContain("--secret-file NAME=PATH or --secret NAME=-");
    expect(r.stderr).not.toContain("on-argv");
  });

  test("mistakes are usage errors that say what to do: two from stdin, a missing or empty file, empty stdin", async () => {
    const two = await cliWithStdin([...stackArgs("x"), "--secret", "A=-", "--secret-stdin", "B"], "v");
    expect(two.code).toBe(2);
    expect(two.stderr).toContain("only one secret can come from stdin (got A, B); give the others with --secret-file NAME=PATH");
    const missing = await cli(data, [...stackArgs("x"), "--secret-file", "A=/nonexistent/file"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("--secret-file A: cannot read /nonexistent/file");
    await Bun.write(join(dir.path, "empty"), "\n");
    const empty = await cli(data, [...stackArgs("x"), "--secret-file", `A=${join(dir.path, "empty")}`]);
    expect(empty.stderr).toContain(`--secret-file A: ${join(dir.path, "empty")} is empty`);
    const noInput = await cliWithStdin([...stackArgs("x"), "--secret", "A=-"], "");
    expect(noInput.code).toBe(2);
    expect(noInput.stderr).toContain("standard input was empty");
  });
});

describe("secret values at rest", () => {
  let stack = "";
  const value = marker("at-rest");

  test("after a stack with a secret and a run using it, no database file holds the value (before and after a checkpoint)", async () => {
    const file = join(dir.path, "marker");
    await Bun.write(file, value);
    stack = (await ok([...stackArgs("at-rest"), "--secret-file", `MARKER=${file}`])).trim();
    expect((await runEnvironment(stack)).MARKER).toBe(value);
    expect(filesHolding(value)).toEqual([]);
    // A second connection checkpoints the WAL into the database file while the server runs.
    const db = new Database(join(data, "mothership.db"));
    db.exec("PRAGMA wal_checkpoint(FULL)");
    db.close();
    expect(filesHolding(value)).toEqual([]);
    const stored = (await ok(["stack", "show", stack, "--json"]));
    expect(stored).not.toContain(value);
  });

  test("a data dir of an older version (plaintext value in the database) is sealed at start", async () => {
    const legacy = marker("legacy");
    await stopServer();
    const db = new Database(join(data, "mothership.db"));
    db.query("UPDATE stacks SET environment = ? WHERE id = ?").run(JSON.stringify([{ name: "MARKER", value: legacy, secret: true }]), stack);
    db.close();
    expect(filesHolding(legacy)).toEqual(["mothership.db"].map((f) => join(data, f)));
    await start();
    expect(filesHolding(legacy)).toEqual([]);
    expect((await runEnvironment(stack)).MARKER).toBe(legacy);
  });

  test("rotate-key is refused while the mothership runs; stopped, it re-encrypts under a new key and runs still get the value", async () => {
    const before = (await readKeyring(data))!.map((k) => k.id);
    const refused = await cli(data, ["secrets", "rotate-key"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("stop it first, the key is rotated offline");
    expect((await readKeyring(data))!.map((k) => k.id)).toEqual(before);

    await stopServer();
    const r = await cli(data, ["secrets", "rotate-key"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const after = (await readKeyring(data))!.map((k) => k.id);
    expect(after).toHaveLength(1);
    expect(before).not.toContain(after[0]);
    expect(r.stdout).toContain(`re-encrypted under key ${after[0]}; 1 old key(s) removed`);
    const db = new Database(join(data, "mothership.db"), { readonly: true });
    const sealed = (db.query("SELECT environment FROM stacks").all() as Array<{ environment: string }>).flatMap((row) => (JSON.parse(row.environment) as Array<{ sealed?: string }>).flatMap((e) => (e.sealed ? [e.sealed] : [])));
    db.close();
    expect(sealed.length).toBeGreaterThan(4);
    for (const s of sealed) expect(s.split(":")[1]).toBe(after[0]);

    await start();
    expect(await runEnvironment(stack)).toEqual({ MARKER: expect.stringMatching(/^MARKER-legacy-/) });
  });

  test("a rotation that stopped after its first step (new key first, old kept) loses nothing; running it again finishes", async () => {
    await stopServer();
    const old = (await readKeyring(data))!;
    const half = newSecretKey();
    await writeKeyring(data, [half, ...old]);
    await start();
    expect((await runEnvironment(stack)).MARKER).toMatch(/^MARKER-legacy-/);
    await stopServer();
    const r = await cli(data, ["secrets", "rotate-key"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("2 old key(s) removed");
    expect(await readKeyring(data)).toHaveLength(1);
    await start();
    expect((await runEnvironment(stack)).MARKER).toMatch(/^MARKER-legacy-/);
  });
});
