/**
 * A PostgreSQL server for the tests (Debian `postgresql`), listening on a loopback port only, with
 * scram-sha-256 password auth. The role `spacelift` (LOGIN, CREATEDB, not a superuser) owns the database
 * `spacelift`; tests make a fresh database of their own with `createTestDatabase` (test/support/postgres.ts).
 * An existing server is used instead when `TEST_DATABASE_URL` is set.
 *
 * `initdb` refuses to run as root, so as root the cluster belongs to the `postgres` system user made by the
 * Debian package. Its data lives in a fresh directory under the system temp dir (the state dir may be a
 * root-only 0700 directory that user cannot enter), removed again by `stopPrivatePostgres`.
 */
import { spawn } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SQL } from "bun";
import { alive, freePort, sh } from "./util.ts";

export interface PostgresEnv {
  /** postgres://spacelift:PASSWORD@127.0.0.1:PORT/spacelift */
  url: string;
  /** The postmaster we started; absent for a server given by TEST_DATABASE_URL. */
  pid?: number;
  /** The directory holding the cluster (data, socket, log); removed on stop. */
  dir?: string;
}

/** Reuse the server named by TEST_DATABASE_URL when it is set. */
export function postgresFromEnv(env: NodeJS.ProcessEnv): PostgresEnv | undefined {
  const url = env.TEST_DATABASE_URL;
  return url ? { url } : undefined;
}

/** The newest `/usr/lib/postgresql/<version>/bin` that has the server programs. */
export function postgresBinDir(root = "/usr/lib/postgresql"): string {
  const versions = existsSync(root)
    ? readdirSync(root).filter((v) => /^\d+$/.test(v) && existsSync(join(root, v, "bin", "initdb"))).sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions.length === 0) {
    throw new Error(`no PostgreSQL server found under ${root}; install it with: apt-get install -y postgresql`);
  }
  return join(root, versions[0]!, "bin");
}

/** As root: the command runs as the `postgres` system user. Otherwise as ourselves. */
function asPostgresUser(argv: string[]): { argv: string[]; uid?: number; gid?: number } {
  if (process.getuid?.() !== 0) return { argv };
  const uid = Number(sh("id", ["-u", "postgres"]).trim());
  const gid = Number(sh("id", ["-g", "postgres"]).trim());
  return { argv: ["setpriv", `--reuid=${uid}`, `--regid=${gid}`, "--clear-groups", "--", ...argv], uid, gid };
}

const randomSecret = () => Buffer.from(crypto.getRandomValues(new Uint8Array(24))).toString("hex");

export async function startPrivatePostgres(_stateDir: string, log: (m: string) => void): Promise<PostgresEnv> {
  const bin = postgresBinDir();
  const dir = mkdtempSync(join(tmpdir(), "slwp-postgres-"));
  const data = join(dir, "data");
  const logFile = join(dir, "postgres.log");
  const probe = asPostgresUser([]);
  if (probe.uid !== undefined) chownSync(dir, probe.uid, probe.gid!);
  try {
    // The superuser's password exists only for the setup below; tests connect as `spacelift`.
    const superPassword = randomSecret();
    const password = randomSecret();
    const pwfile = join(dir, "pwfile");
    writeFileSync(pwfile, superPassword + "\n", { mode: 0o600 });
    if (probe.uid !== undefined) chownSync(pwfile, probe.uid, probe.gid!);
    const init = asPostgresUser([join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=scram-sha-256",
      `--pwfile=${pwfile}`, "--no-locale", "--encoding=UTF8", "--no-sync"]);
    const r = Bun.spawnSync(init.argv, { cwd: dir, stdout: "pipe", stderr: "pipe" });
    rmSync(pwfile, { force: true });
    if (r.exitCode !== 0) throw new Error(`initdb failed (${r.exitCode}): ${r.stderr.toString().trim()}`);

    const port = await freePort();
    const server = asPostgresUser([join(bin, "postgres"), "-D", data, "-h", "127.0.0.1", "-p", String(port), "-k", dir,
      // Test data is disposable: durability only costs time here.
      "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=200"]);
    const out = openSync(logFile, "a");
    const child = spawn(server.argv[0]!, server.argv.slice(1), { cwd: dir, detached: true, stdio: ["ignore", out, out] });
    child.unref();
    const env: PostgresEnv = { url: `postgres://spacelift:${password}@127.0.0.1:${port}/spacelift`, pid: child.pid!, dir };
    log(`starting a private postgres (pid ${child.pid}) on 127.0.0.1:${port}`);
    const admin = `postgres://postgres:${superPassword}@127.0.0.1:${port}/postgres`;
    try {
      const deadline = Date.now() + 30_000;
      while (!(await selectOne(admin))) {
        if (child.exitCode !== null) throw new Error(`postgres exited with code ${child.exitCode}`);
        if (Date.now() > deadline) throw new Error("postgres did not accept a connection within 30s");
        await Bun.sleep(100);
      }
      const sql = new SQL(admin, { max: 1 });
      try {
        // Both are hex: nothing to quote. The server hashes the password (password_encryption = scram-sha-256).
        await sql.unsafe(`CREATE ROLE spacelift LOGIN CREATEDB PASSWORD '${password}'`);
        await sql.unsafe("CREATE DATABASE spacelift OWNER spacelift");
      } finally {
        await sql.close();
      }
      if (!(await selectOne(env.url))) throw new Error("postgres refused the new role `spacelift`");
    } catch (err) {
      await stopPrivatePostgres(env);
      throw new Error(`${(err as Error).message}; postgres log:\n${tail(logFile)}`);
    }
    return env;
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

function tail(file: string): string {
  try {
    return readFileSync(file, "utf8").split("\n").slice(-15).join("\n");
  } catch {
    return "(no log)";
  }
}

/** True when a real client connection runs `SELECT 1`. */
async function selectOne(url: string): Promise<boolean> {
  const sql = new SQL(url, { max: 1, connectionTimeout: 5 });
  try {
    const rows: Array<{ one: number }> = await sql`SELECT 1 AS one`;
    return rows[0]?.one === 1;
  } catch {
    return false;
  } finally {
    await sql.close();
  }
}

/**
 * Fast shutdown (SIGINT: open sessions are ended, unlike SIGTERM's wait for clients), SIGKILL after 10 s,
 * then the cluster's directory is removed.
 */
export async function stopPrivatePostgres(env: PostgresEnv): Promise<void> {
  if (env.pid !== undefined && alive(env.pid)) {
    process.kill(env.pid, "SIGINT");
    const deadline = Date.now() + 10_000;
    while (alive(env.pid) && Date.now() < deadline) await Bun.sleep(100);
    if (alive(env.pid)) process.kill(env.pid, "SIGKILL");
  }
  if (env.dir) rmSync(env.dir, { recursive: true, force: true });
}
