/**
 * `mothership secrets rotate-key [--data DIR] [--database URL]`: a new key for the stack secret values at
 * rest, run while the mothership (every replica, on PostgreSQL) is stopped: it works on the data dir and
 * the database, not through the API. In three durable steps, so that a crash anywhere loses nothing and
 * running it again finishes the job:
 *   1. secrets.key gets a new first key, the old ones kept after it (values name their key);
 *   2. every secret value is re-sealed under the new key, in one database transaction;
 *   3. secrets.key is written with the new key only.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { SpaceliftError } from "../../errors.ts";
import { createLogger } from "../../log/logger.ts";
import { prepareDataDir } from "../data-dir.ts";
import { databaseFromArgs } from "../serve-config.ts";
import { newSecretKey, readKeyring, SecretBox, secretsKeyPath, writeKeyring } from "../secret-box.ts";
import { openStore } from "../store/index.ts";
import { describePostgresUrl } from "../store/postgres.ts";
import { flag, usageError, type ParsedArgs } from "./args.ts";
import { caPathOf, DEFAULT_DATA_DIR, ENDPOINT_FILE } from "./client.ts";
import type { Io } from "./commands.ts";
import { printable } from "./terminal.ts";

export const SECRETS_FLAGS = { values: ["data", "database"], switches: [] };

/** The URL of a mothership that answers on the data dir's endpoint, or null when none does. */
async function runningServer(dataDir: string): Promise<string | null> {
  let url: string | undefined;
  try {
    url = (JSON.parse(await readFile(join(dataDir, ENDPOINT_FILE), "utf8")) as { http_url?: string }).http_url;
  } catch {
    return null;
  }
  if (!url) return null;
  const ca = await readFile(caPathOf(dataDir), "utf8").catch(() => undefined);
  try {
    await fetch(`${url.replace(/\/+$/, "")}/api/v1/health`, { signal: AbortSignal.timeout(2000), ...(ca ? { tls: { ca } } : {}) });
    return url;
  } catch (err) {
    // Anything that answered TLS with a certificate we do not trust is still something listening there.
    const code = (err as { code?: unknown } | null)?.code;
    return typeof code === "string" && /CERT|SIGNATURE|ISSUER/.test(code) ? url : null;
  }
}

/** `database`: the mothership's PostgreSQL URL (as `serve --database`); undefined: the data dir's SQLite file. */
async function rotateKey(dataDir: string, database: string | undefined, io: Io): Promise<number> {
  const dbPath = join(dataDir, "mothership.db");
  if (database === undefined && !(await Bun.file(dbPath).exists())) throw usageError(`${dbPath} does not exist: give --data the data dir of a mothership that has run`);
  const running = await runningServer(dataDir);
  if (running) {
    throw new SpaceliftError(
      "mothership-running",
      `a mothership answers at ${running} (from ${join(dataDir, ENDPOINT_FILE)}): stop it first, the key is rotated offline; if that is not this data dir's mothership, remove ${ENDPOINT_FILE}`,
    );
  }
  process.umask(0o077);
  await prepareDataDir(dataDir, createLogger({ level: "warn" }));

  const old = (await readKeyring(dataDir)) ?? [];
  const fresh = newSecretKey();
  // 1: the new key first, the old ones still there for values not yet re-sealed.
  await writeKeyring(dataDir, [fresh, ...old]);
  const store = await openStore(database ?? dbPath, { secrets: new SecretBox([fresh, ...old]) });
  try {
    // 2: one transaction; either every value is under the new key or none is.
    const done = await store.stacks.reseal();
    const left = await store.stacks.sealedKeyIds();
    if (left.plaintext > 0 || [...left.keyIds].some((id) => id !== fresh.id)) {
      throw new SpaceliftError("secrets-rotate-incomplete", `some secret values are not under the new key ${fresh.id}; ${secretsKeyPath(dataDir)} keeps every key, run the command again`);
    }
    // 3: only now the old keys go.
    await writeKeyring(dataDir, [fresh]);
    io.out(printable(`rotated ${secretsKeyPath(dataDir)}: ${done.values} secret value(s) of ${done.stacks} stack(s) re-encrypted under key ${fresh.id}; ${old.length} old key(s) removed`));
    if (database !== undefined) {
      // PostgreSQL keeps replaced row versions until VACUUM; and other replicas need the new key file.
      io.out(printable(`PostgreSQL at ${describePostgresUrl(database)} may keep the old sealed values in dead rows until VACUUM (run VACUUM FULL stacks to drop them now); copy ${secretsKeyPath(dataDir)} to every replica's data dir before starting them`));
    }
  } finally {
    await store.close();
  }
  return 0;
}

/** `env`: where MOTHERSHIP_DATABASE_URL comes from, as for `serve`. */
export async function secretsCommand(sub: string, a: ParsedArgs, io: Io, env: Record<string, string | undefined> = {}): Promise<number> {
  if (sub === "rotate-key") return rotateKey(flag(a, "data") ?? DEFAULT_DATA_DIR, databaseFromArgs(a, env), io);
  throw usageError(`unknown command: secrets ${sub} (rotate-key)`);
}
