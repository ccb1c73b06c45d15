/**
 * Stacks: what a run executes (image, environment, phases) and which pool runs it. Secret values are
 * stored sealed (secret-box.ts): read back, a secret variable has an empty `value` and its `sealed`
 * text; `reveal` opens them, and only the run spec builder's caller needs it.
 */
import { SpaceliftError } from "../../errors.ts";
import { isSealed, sealedKeyId, type SecretBox } from "../secret-box.ts";
import type { Sql } from "./sql.ts";

export interface EnvVar {
  name: string;
  /** Empty for a secret read from the store: the value is in `sealed`. */
  value: string;
  secret: boolean;
  /** The sealed value of a secret variable read from the store. */
  sealed?: string;
}

/** How an environment variable is kept in the `environment` column. */
type StoredEnvVar = { name: string; secret: false; value: string } | { name: string; secret: true; sealed: string } | { name: string; secret: true; value: string };

export interface StackPhase {
  name: string;
  commands: string[];
}

export interface Stack {
  id: string;
  name: string;
  pool: string;
  image: string;
  environment: EnvVar[];
  phases: StackPhase[];
  repository: string | null;
  branch: string | null;
  /** Free-form labels (Spacelift's stack labels), given to the run-initialization policy. */
  labels: string[];
  /** The VCS agent pool that reaches the repository (the launcher's SPACELIFT_PRIVATEVCS_MAPPING_NAME_<n>). */
  vcs_pool: string | null;
  created_at: string;
}

interface StackRow extends Omit<Stack, "environment" | "phases" | "labels"> {
  environment: string;
  phases: string;
  labels: string;
}

const envFromStored = (e: StoredEnvVar): EnvVar =>
  e.secret && "sealed" in e ? { name: e.name, value: "", secret: true, sealed: e.sealed } : { name: e.name, value: e.value, secret: e.secret };

const stackFromRow = (r: StackRow): Stack => ({
  ...r,
  environment: (JSON.parse(r.environment) as StoredEnvVar[]).map(envFromStored),
  phases: JSON.parse(r.phases) as StackPhase[],
  labels: JSON.parse(r.labels) as string[],
});

export class StackRepo {
  /** `secrets` seals secret values; without it a stack with a secret cannot be stored. */
  constructor(
    private readonly sql: Sql,
    private readonly secrets?: SecretBox,
  ) {}

  private box(): SecretBox {
    if (!this.secrets) throw new SpaceliftError("secrets-key-missing", "this store has no secrets key, so it cannot keep secret values");
    return this.secrets;
  }

  /** The column value: secrets sealed under the current key (a value already sealed is kept as it is). */
  private storedEnvironment(stackId: string, env: readonly EnvVar[]): string {
    const stored = env.map((e): StoredEnvVar => {
      if (!e.secret) return { name: e.name, secret: false, value: e.value };
      if (e.sealed !== undefined) return { name: e.name, secret: true, sealed: e.sealed };
      return { name: e.name, secret: true, sealed: this.box().seal(e.value, stackId, e.name) };
    });
    return JSON.stringify(stored);
  }

  /** Labels and VCS pool default to none (stacks of an older data dir, and tests, have neither). */
  async insert(s: Omit<Stack, "labels" | "vcs_pool"> & Partial<Pick<Stack, "labels" | "vcs_pool">>): Promise<void> {
    await this.sql.run(
      `INSERT INTO stacks (id, name, pool, image, environment, phases, repository, branch, labels, vcs_pool, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      s.id, s.name, s.pool, s.image, this.storedEnvironment(s.id, s.environment), JSON.stringify(s.phases), s.repository, s.branch,
      JSON.stringify(s.labels ?? []), s.vcs_pool ?? null, s.created_at,
    );
  }

  /** The stack with its secret values in the clear, for the run spec that is encrypted to the pool. */
  reveal(s: Stack): Stack {
    return {
      ...s,
      environment: s.environment.map((e) => (e.secret && e.sealed !== undefined ? { name: e.name, value: this.box().open(e.sealed, s.id, e.name), secret: true } : { name: e.name, value: e.value, secret: e.secret })),
    };
  }

  /**
   * Seals every secret value that is not sealed under `box`'s current key: plaintext ones a data dir
   * of an older version holds, and (for a key rotation) ones sealed under an older key, in one
   * transaction. Returns how many values were sealed.
   *
   * On SQLite, secure_delete is on for it and a WAL checkpoint that truncates the WAL follows, so the
   * old text is overwritten in the database file and gone from the WAL. PostgreSQL gives no such
   * control: the old values stay in dead row versions (and in WAL segments and backups) until VACUUM
   * reuses that space (docs/security.md).
   */
  async reseal(box: SecretBox = this.box()): Promise<{ values: number; stacks: number }> {
    const sqlite = this.sql.dialect === "sqlite";
    if (sqlite) await this.sql.run("PRAGMA secure_delete = ON");
    let done: { values: number; stacks: number };
    try {
      done = await this.sql.transaction((tx) => resealIn(tx, box));
    } finally {
      if (sqlite) await this.sql.run("PRAGMA secure_delete = OFF");
    }
    if (sqlite && done.values > 0) await this.sql.run("PRAGMA wal_checkpoint(TRUNCATE)");
    return done;
  }

  /** Key ids the stored secret values are sealed with, and how many values are still plaintext. */
  async sealedKeyIds(): Promise<{ keyIds: Set<string>; plaintext: number }> {
    const keyIds = new Set<string>();
    let plaintext = 0;
    for (const row of await this.sql.all<{ environment: string }>("SELECT environment FROM stacks")) {
      for (const e of JSON.parse(row.environment) as StoredEnvVar[]) {
        if (!e.secret) continue;
        if ("sealed" in e && isSealed(e.sealed)) keyIds.add(sealedKeyId(e.sealed) ?? "");
        else plaintext++;
      }
    }
    return { keyIds, plaintext };
  }

  async delete(id: string): Promise<void> {
    await this.sql.run("DELETE FROM stacks WHERE id = ?", id);
  }

  async get(id: string): Promise<Stack | null> {
    const row = await this.sql.get<StackRow>("SELECT * FROM stacks WHERE id = ?", id);
    return row ? stackFromRow(row) : null;
  }

  async list(pool?: string): Promise<Stack[]> {
    const rows = pool
      ? await this.sql.all<StackRow>("SELECT * FROM stacks WHERE pool = ? ORDER BY created_at, id", pool)
      : await this.sql.all<StackRow>("SELECT * FROM stacks ORDER BY created_at, id");
    return rows.map(stackFromRow);
  }
}

/** reseal's transaction: every stack row locked (PostgreSQL) so no replica writes one in between. */
async function resealIn(tx: Sql, box: SecretBox): Promise<{ values: number; stacks: number }> {
  let values = 0;
  let stacks = 0;
  const lock = tx.dialect === "postgres" ? " FOR UPDATE" : "";
  for (const row of await tx.all<{ id: string; environment: string }>(`SELECT id, environment FROM stacks${lock}`)) {
    const env = JSON.parse(row.environment) as StoredEnvVar[];
    let changed = 0;
    const next = env.map((e): StoredEnvVar => {
      if (!e.secret || ("sealed" in e && sealedKeyId(e.sealed) === box.currentKeyId)) return e;
      changed++;
      const plain = "sealed" in e ? box.open(e.sealed, row.id, e.name) : e.value;
      return { name: e.name, secret: true, sealed: box.seal(plain, row.id, e.name) };
    });
    if (changed === 0) continue;
    values += changed;
    stacks++;
    await tx.run("UPDATE stacks SET environment = ? WHERE id = ?", JSON.stringify(next), row.id);
  }
  return { values, stacks };
}
