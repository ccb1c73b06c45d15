/**
 * The name of one `mothership serve` process among the replicas that share an external broker
 * (docs/external-broker.md): it makes the broker client id `mothership.<ns>.<replica>`, so replicas
 * do not take each other's connection over, and a restarted replica finds its own broker session
 * again. `--replica-id` / MOTHERSHIP_REPLICA_ID, else the one kept in `<data>/replica-id`, made once
 * from the host name and a random suffix: stable per host and data dir.
 */
import { readFile, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { SpaceliftError } from "../errors.ts";
import { FILE_MODE } from "./data-dir.ts";

/** A topic level and a client id part: letters, digits, `_ . -`, at most 64. */
const REPLICA_ID = /^[A-Za-z0-9_.-]{1,64}$/;
export const REPLICA_ID_RULE = "letters, digits, _ . - (at most 64)";

export function isReplicaId(value: string): boolean {
  return REPLICA_ID.test(value);
}

const FILE = "replica-id";

/** The given replica id, else the data dir's (made on first use). */
export async function resolveReplicaId(dataDir: string, given: string | undefined, raced = false): Promise<string> {
  if (given !== undefined) return given;
  const path = join(dataDir, FILE);
  const kept = await readFile(path, "utf8").catch(() => null);
  if (kept !== null && (raced || kept.trim() !== "")) {
    if (!isReplicaId(kept.trim())) throw new SpaceliftError("usage", `${path} must hold a replica id (${REPLICA_ID_RULE}); fix or delete it`);
    return kept.trim();
  }
  // The host name says where a replica runs; the suffix tells apart two data dirs on one host.
  const host = hostname().replace(/[^A-Za-z0-9_.-]/g, "-").slice(0, 48) || "replica";
  const fresh = `${host}-${Buffer.from(crypto.getRandomValues(new Uint8Array(4))).toString("hex")}`;
  // `wx`: of two processes starting on one data dir at once, one makes it and the other reads it.
  const wrote = await writeFile(path, fresh + "\n", { mode: FILE_MODE, flag: "wx" }).then(
    () => true,
    (err: unknown) => {
      if ((err as { code?: string }).code === "EEXIST") return false;
      throw err;
    },
  );
  return wrote ? fresh : resolveReplicaId(dataDir, undefined, true);
}
