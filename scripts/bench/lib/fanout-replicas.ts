/**
 * The fan-out benchmark's replicated setup (the interface is in ./fanout-setup.ts): two `mothership
 * serve` processes on one fresh PostgreSQL database of the test environment's server
 * (TEST_DATABASE_URL) and a private Mosquitto configured by `mothership broker-config mosquitto`, as an
 * operator runs them. The first replica starts on an empty data dir (CA, admin token, secrets.key,
 * downlink signer key), is stopped, and the second gets a copy of that dir; the database URL with
 * its password reaches both in MOTHERSHIP_DATABASE_URL, never on a command line. Both APIs take the
 * triggers in turn; the rows sum both replicas' CPU and memory (Mosquitto's are not counted).
 */
import { SQL } from "bun";
import { cpSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, mothershipCommand, type FanoutSetup } from "./fanout-setup.ts";

/** Runs one statement on the server at `url` over one short-lived connection. */
async function admin(url: string, statement: string): Promise<void> {
  const sql = new SQL(url, { max: 1, connectionTimeout: 10 });
  try {
    await sql.unsafe(statement);
  } finally {
    await sql.close();
  }
}

/** A process writing to `logFile`, ready once the file holds `ready` one more time than before. */
async function spawnUntil(cmd: string[], env: Record<string, string>, logFile: string, ready: string, what: string): Promise<Bun.Subprocess> {
  const text = () => (existsSync(logFile) ? readFileSync(logFile, "utf8") : "");
  const before = text().split(ready).length;
  const out = openSync(logFile, "a");
  const proc = Bun.spawn(cmd, { stdout: out, stderr: out, stdin: "ignore", env: { ...process.env, ...env } });
  const deadline = Date.now() + 30_000;
  while (text().split(ready).length <= before) {
    if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`${what} did not start:\n${text().split("\n").slice(-15).join("\n")}`);
    await Bun.sleep(50);
  }
  return proc;
}

async function stop(proc: Bun.Subprocess | null): Promise<void> {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  proc.kill("SIGTERM");
  const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
  await proc.exited;
  clearTimeout(timer);
}

/** PostgreSQL + Mosquitto + 2 replicas; needs TEST_DATABASE_URL (a role with CREATEDB) and the mosquitto binary. */
export async function startReplicas(): Promise<FanoutSetup> {
  const server = process.env.TEST_DATABASE_URL;
  if (!server) throw new Error("the replicated setup needs PostgreSQL: run `bun scripts/bench.ts fanout` (the test environment gives TEST_DATABASE_URL)");
  if (!Bun.which("mosquitto") && !existsSync("/usr/sbin/mosquitto")) throw new Error("the replicated setup needs the mosquitto binary (Debian: apt-get install mosquitto)");
  const mosquittoBin = Bun.which("mosquitto") ?? "/usr/sbin/mosquitto";
  const dir = mkdtempSync(join(tmpdir(), "bench-replicas-"));
  const mothership = mothershipCommand();
  const database = `bench_${Buffer.from(crypto.getRandomValues(new Uint8Array(6))).toString("hex")}`;
  const procs: { mosquitto: Bun.Subprocess | null; replicas: Bun.Subprocess[] } = { mosquitto: null, replicas: [] };
  let made = false;
  const logs = ["a", "b"].map((r) => join(dir, `replica-${r}.log`));
  const logTail = (lines: number) =>
    logs.map((f) => `${f}:\n${existsSync(f) ? readFileSync(f, "utf8").split("\n").slice(-lines).join("\n") : ""}`).join("\n");
  const teardown = async () => {
    await Promise.all(procs.replicas.map(stop));
    await stop(procs.mosquitto);
    if (made) await admin(server, `DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const brokerPort = await freePort();
    const http = [await freePort(), await freePort()];
    const data = [join(dir, "data-a"), join(dir, "data-b")];
    const out = join(dir, "mosquitto");
    // Running as root, Mosquitto would drop to its own user, who cannot read the 0600 server key.
    const user = process.getuid?.() === 0 ? ["--user", "root"] : [];
    const conf = Bun.spawnSync([...mothership.cmd, "broker-config", "mosquitto", "--out", out, "--listen", `127.0.0.1:${brokerPort}`, "--data", data[0]!, ...user], { stderr: "pipe" });
    if (conf.exitCode !== 0) throw new Error(`broker-config failed: ${conf.stderr.toString()}`);
    procs.mosquitto = await spawnUntil([mosquittoBin, "-c", join(out, "mosquitto.conf")], {}, join(dir, "mosquitto.log"), " running", "mosquitto");
    await admin(server, `CREATE DATABASE ${database}`);
    made = true;
    const url = new URL(server);
    url.pathname = `/${database}`;
    const serve = (i: number) =>
      spawnUntil(
        [...mothership.cmd, "serve", "--data", data[i]!, "--http", `127.0.0.1:${http[i]}`, "--broker", `mqtts://127.0.0.1:${brokerPort}`,
          "--broker-crl", join(out, "ca.crl"), "--broker-reload-command", `kill -HUP ${procs.mosquitto!.pid}`],
        { MOTHERSHIP_DATABASE_URL: url.toString(), MOTHERSHIP_REPLICA_ID: i === 0 ? "a" : "b" },
        logs[i]!,
        "mothership ready",
        `replica ${i === 0 ? "a" : "b"}`,
      );
    // The first start makes the files every replica shares; the second replica gets a copy of them.
    await stop(await serve(0));
    cpSync(data[0]!, data[1]!, { recursive: true });
    for (const own of ["endpoint.json", "replica-id"]) rmSync(join(data[1]!, own), { force: true });
    procs.replicas = await Promise.all([serve(0), serve(1)]);
    return {
      name: "postgres + Mosquitto, 2 replicas",
      mothership: mothership.label,
      apiUrls: http.map((p) => `https://127.0.0.1:${p}`),
      pids: procs.replicas.map((p) => p.pid),
      adminToken: readFileSync(join(data[0]!, "admin-token"), "utf8").trim(),
      ca: readFileSync(join(data[0]!, "ca", "ca.crt"), "utf8"),
      logTail,
      stop: teardown,
    };
  } catch (err) {
    console.error(logTail(15));
    await teardown();
    throw err;
  }
}
