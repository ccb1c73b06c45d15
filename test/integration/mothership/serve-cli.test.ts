/**
 * `mothership serve` as a process, as an operator starts it: the default data dir in the working
 * directory, private (0700, every file 0600); the admin token never printed, only the path of its
 * file and how to use it; where the CA is (and the MOTHERSHIP_CA hint), and the CLI with
 * --url/--token-file or MOTHERSHIP_URL/MOTHERSHIP_TOKEN (no --data) trusting that
 * CA: found in ./mothership-data by default, given by --ca or MOTHERSHIP_CA elsewhere, and a TLS
 * failure that says how to fix it. Then a token of a server started with --broker-endpoint.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { opensslKeyAndCsr, repoRoot, tempDir } from "./harness.ts";

setDefaultTimeout(60_000);

const main = join(repoRoot, "src/mothership/main.ts");
/** The CLI's variables, cleared so the test's own environment cannot leak in. */
const NO_CLIENT_ENV = { MOTHERSHIP_URL: "", MOTHERSHIP_TOKEN: "", MOTHERSHIP_CA: "" };

interface Served {
  proc: Bun.Subprocess<"ignore", "pipe", "pipe">;
  output: string;
  url: string;
}

const running = new Set<Served>();

async function serve(cwd: string, args: string[]): Promise<Served> {
  const proc = Bun.spawn([process.execPath, main, "serve", "--http", "127.0.0.1:0", "--mqtt", "127.0.0.1:0", ...args], {
    cwd,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, ...NO_CLIENT_ENV, MOTHERSHIP_LOG_LEVEL: "warn" },
  });
  const served: Served = { proc, output: "", url: "" };
  running.add(served);
  const reader = proc.stdout.getReader();
  const deadline = Date.now() + 20_000;
  while (!served.output.includes("mothership ready")) {
    const chunk = await Promise.race([reader.read(), Bun.sleep(Math.max(0, deadline - Date.now())).then(() => null)]);
    if (!chunk || chunk.done) throw new Error(`serve did not start: ${served.output}${await new Response(proc.stderr).text()}`);
    served.output += new TextDecoder().decode(chunk.value);
  }
  reader.releaseLock();
  served.url = /mothership ready: api (\S+),/.exec(served.output)?.[1] ?? "";
  return served;
}

async function stop(s: Served): Promise<number> {
  s.proc.kill("SIGTERM");
  const code = await s.proc.exited;
  running.delete(s);
  return code;
}

async function client(cwd: string, args: string[], env: Record<string, string> = {}) {
  const proc = Bun.spawn([process.execPath, main, ...args], { cwd, stdout: "pipe", stderr: "pipe", env: { ...process.env, ...NO_CLIENT_ENV, ...env } });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

let home: Awaited<ReturnType<typeof tempDir>>;
let elsewhere: Awaited<ReturnType<typeof tempDir>>;

beforeAll(async () => {
  home = await tempDir("mothership-serve-");
  elsewhere = await tempDir("mothership-elsewhere-");
});

afterAll(async () => {
  for (const s of running) await stop(s);
  await home?.remove();
  await elsewhere?.remove();
});

describe("mothership serve with its defaults", () => {
  let first: Served;
  let adminToken = "";
  const caPath = () => join(home.path, "mothership-data", "ca", "ca.crt");
  const tokenFile = () => join(home.path, "mothership-data", "admin-token");

  test("first start: ./mothership-data is made private, the admin token's path printed (not the token), the CA path and MOTHERSHIP_CA hint shown", async () => {
    first = await serve(home.path, []);
    const data = join(home.path, "mothership-data");
    const tokenPath = join(data, "admin-token");
    adminToken = readFileSync(tokenPath, "utf8").trim();
    expect(adminToken).toMatch(/^msat_/);
    expect(first.output).not.toContain(adminToken);
    expect(first.output).toContain(`admin token created in ${tokenPath} (0600`);
    expect(first.output).toContain(`MOTHERSHIP_TOKEN=$(cat ${tokenPath})`);
    expect(first.output).toContain(`--token-file ${tokenPath}`);
    expect(first.output).toContain(`--data ${data}`);
    // The real process (umask 077): the dir 0700, every file in it and below 0600.
    const modes: Record<string, string> = {};
    const walk = (dir: string, rel: string): void => {
      for (const name of readdirSync(dir)) {
        const st = statSync(join(dir, name));
        modes[rel + name] = `${st.isDirectory() ? "dir" : "file"} ${(st.mode & 0o777).toString(8)}`;
        if (st.isDirectory()) walk(join(dir, name), `${rel}${name}/`);
      }
    };
    walk(data, "");
    expect((statSync(data).mode & 0o777).toString(8)).toBe("700");
    expect(Object.keys(modes)).toEqual(
      expect.arrayContaining(["admin-token", "ca", "ca/ca.crt", "ca/ca.key", "endpoint.json", "mothership.db", "mothership.db-shm", "mothership.db-wal", "secrets.key"]),
    );
    for (const [path, m] of Object.entries(modes)) expect(`${path}: ${m}`).toBe(`${path}: ${m.startsWith("dir") ? "dir 700" : "file 600"}`);
    expect(existsSync(caPath())).toBe(true);
    expect(first.output).toContain(`CA certificate: ${caPath()}\n`);
    expect(first.output).toContain(`export MOTHERSHIP_CA=${caPath()}`);
    expect(first.output).toContain(`--ca ${caPath()}`);
    expect(first.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  });

  test("MOTHERSHIP_URL + MOTHERSHIP_TOKEN, no CA given: the CA of ./mothership-data is trusted", async () => {
    const r = await client(home.path, ["pool", "list", "--json"], { MOTHERSHIP_URL: first.url, MOTHERSHIP_TOKEN: adminToken });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([]);
  });

  test("--url + --token-file, no CA given: the same", async () => {
    const r = await client(home.path, ["pool", "list", "--url", first.url, "--token-file", join(home.path, "mothership-data", "admin-token"), "--json"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([]);
  });

  test("--token still works, with a warning on stderr that names the safer ways", async () => {
    const r = await client(home.path, ["pool", "list", "--url", first.url, "--token", adminToken, "--json"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([]);
    expect(r.stderr.trim().split("\n")).toEqual([expect.stringContaining("mothership: warning: --token puts the admin token on the command line")]);
    expect(r.stderr).toContain("--token-file PATH, MOTHERSHIP_TOKEN or --data DIR");
    expect(r.stderr).not.toContain(adminToken);
  });

  test("--token-file that is missing or empty: a usage error naming the file", async () => {
    const missing = await client(home.path, ["pool", "list", "--url", first.url, "--token-file", "no-such-file"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("--token-file: cannot read no-such-file");
    await Bun.write(join(elsewhere.path, "empty-token"), "\n");
    const empty = await client(home.path, ["pool", "list", "--url", first.url, "--token-file", join(elsewhere.path, "empty-token")]);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toContain("is empty");
  });

  test("from another directory without a CA: the error says exactly how to fix it", async () => {
    const routes: Array<{ args: string[]; env: Record<string, string> }> = [
      { args: [], env: { MOTHERSHIP_URL: first.url, MOTHERSHIP_TOKEN: adminToken } },
      { args: ["--url", first.url, "--token-file", tokenFile()], env: {} },
    ];
    for (const how of routes) {
      const r = await client(elsewhere.path, ["pool", "list", ...how.args], how.env);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`cannot verify the TLS certificate of the mothership at ${first.url}`);
      expect(r.stderr).toContain("no CA was given and ./mothership-data/ca/ca.crt does not exist");
      expect(r.stderr).toContain("--ca FILE");
      expect(r.stderr).toContain("MOTHERSHIP_CA=FILE");
      expect(r.stderr).toContain("--data DIR");
      expect(r.stderr).not.toContain("\n    at "); // one line, no stack trace
    }
  });

  test("from another directory with MOTHERSHIP_CA or --ca: works", async () => {
    const byEnv = await client(elsewhere.path, ["pool", "list", "--json"], { MOTHERSHIP_URL: first.url, MOTHERSHIP_TOKEN: adminToken, MOTHERSHIP_CA: caPath() });
    expect(byEnv.code).toBe(0);
    const byFlag = await client(elsewhere.path, ["pool", "list", "--url", first.url, "--token-file", tokenFile(), "--ca", caPath(), "--json"]);
    expect(byFlag.code).toBe(0);
    expect(JSON.parse(byFlag.stdout)).toEqual([]);
  });

  test("a CA that did not sign the server's certificate: named in the error", async () => {
    const other = await serve(elsewhere.path, ["--data", "other-data"]);
    const wrongCa = join(elsewhere.path, "other-data", "ca", "ca.crt");
    const r = await client(elsewhere.path, ["pool", "list", "--url", first.url, "--token-file", tokenFile(), "--ca", wrongCa]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`it is not signed by the CA in ${wrongCa}`);
    expect(r.stderr).toContain("--ca FILE");
    expect(await stop(other)).toBe(0);
  });

  test("second start on the same data dir: the token is not made again nor printed; the old one still works", async () => {
    expect(await stop(first)).toBe(0);
    const again = await serve(home.path, []);
    expect(again.output).not.toContain("admin token created");
    expect(again.output).toContain(`admin token in ${join(home.path, "mothership-data", "admin-token")}`);
    expect(again.output).not.toContain(adminToken);
    expect(again.output).toContain(`CA certificate: ${caPath()}`);
    const r = await client(home.path, ["pool", "list", "--json"], { MOTHERSHIP_URL: again.url, MOTHERSHIP_TOKEN: adminToken });
    expect(r.code).toBe(0);
    expect(await stop(again)).toBe(0);
  });
});

describe("mothership serve --broker-endpoint", () => {
  test("tokens advertise the given endpoint, not the listening address", async () => {
    const s = await serve(home.path, ["--data", "be-data", "--broker-endpoint", "mqtts://mqtt.example.test:443"]);
    expect(s.output).toContain("broker mqtts://mqtt.example.test:443");
    const { csrPath } = opensslKeyAndCsr(home.path, "be", ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
    const r = await client(home.path, ["pool", "create", "--name", "be", "--csr", csrPath, "--data", "be-data"]);
    expect(r.code).toBe(0);
    const token = JSON.parse(Buffer.from(r.stdout.trim(), "base64").toString()) as { broker: { endpoint: string }; comms_url: string };
    expect(token.broker.endpoint).toBe("mqtts://mqtt.example.test:443");
    expect(token.comms_url).toBe(s.url);
    expect(await stop(s)).toBe(0);
  });
});
