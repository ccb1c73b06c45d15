/**
 * Stacks: what a run executes (image, environment, phases) and which pool runs it. Secret values are
 * stored sealed (secret-box.ts): read back, a secret variable has an empty `value` and its `sealed`
 * text; `reveal` opens them, and only the run spec builder's caller needs it.
 */
import type { Database } from "bun:sqlite";
import { SpaceliftError } from "../../errors.ts";
import { isSealed, sealedKeyId, type SecretBox } from "../secret-box.ts";

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
    private readonly db: Database,
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
  insert(s: Omit<Stack, "labels" | "vcs_pool"> & Partial<Pick<Stack, "labels" | "vcs_pool">>): void {
    this.db
      .query(
        `INSERT INTO stacks (id, name, pool, image, environment, phases, repository, branch, labels, vcs_pool, created_at)
         VALUES ($id, $name, $pool, $image, $environment, $phases, $repository, $branch, $labels, $vcs_pool, $created_at)`,
      )
      .run({ ...s, environment: this.storedEnvironment(s.id, s.environment), phases: JSON.stringify(s.phases), labels: JSON.stringify(s.labels ?? []), vcs_pool: s.vcs_pool ?? null });
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
   * of an older version holds, and (for a key rotation) ones sealed under an older key. One
   * transaction with secure_delete on, then a WAL checkpoint that truncates the WAL, so the old text
   * is overwritten in the database file and gone from the WAL. Returns how many values were sealed.
   */
  reseal(box: SecretBox = this.box()): { values: number; stacks: number } {
    let values = 0;
    let stacks = 0;
    this.db.exec("PRAGMA secure_delete = ON");
    try {
      this.db.transaction(() => {
        for (const row of this.db.query("SELECT id, environment FROM stacks").all() as Array<{ id: string; environment: string }>) {
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
          this.db.query("UPDATE stacks SET environment = ? WHERE id = ?").run(JSON.stringify(next), row.id);
        }
      })();
    } finally {
      this.db.exec("PRAGMA secure_delete = OFF");
    }
    if (values > 0) this.db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    return { values, stacks };
  }

  /** Key ids the stored secret values are sealed with, and how many values are still plaintext. */
  sealedKeyIds(): { keyIds: Set<string>; plaintext: number } {
    const keyIds = new Set<string>();
    let plaintext = 0;
    for (const row of this.db.query("SELECT environment FROM stacks").all() as Array<{ environment: string }>) {
      for (const e of JSON.parse(row.environment) as StoredEnvVar[]) {
        if (!e.secret) continue;
        if ("sealed" in e && isSealed(e.sealed)) keyIds.add(sealedKeyId(e.sealed) ?? "");
        else plaintext++;
      }
    }
    return { keyIds, plaintext };
  }

  delete(id: string): void {
    this.db.query("DELETE FROM stacks WHERE id = ?").run(id);
  }

  get(id: string): Stack | null {
    const row = this.db.query("SELECT * FROM stacks WHERE id = ?").get(id) as StackRow | null;
    return row ? stackFromRow(row) : null;
  }

  list(pool?: string): Stack[] {
    const rows = (pool
      ? this.db.query("SELECT * FROM stacks WHERE pool = ? ORDER BY created_at, id").all(pool)
      : this.db.query("SELECT * FROM stacks ORDER BY created_at, id").all()) as StackRow[];
    return rows.map(stackFromRow);
  }
}
