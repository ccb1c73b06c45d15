/** Stacks: what a run executes (image, environment, phases) and which pool runs it. */
import type { Database } from "bun:sqlite";

export interface EnvVar {
  name: string;
  value: string;
  secret: boolean;
}

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
  created_at: string;
}

interface StackRow extends Omit<Stack, "environment" | "phases"> {
  environment: string;
  phases: string;
}

const stackFromRow = (r: StackRow): Stack => ({
  ...r,
  environment: JSON.parse(r.environment) as EnvVar[],
  phases: JSON.parse(r.phases) as StackPhase[],
});

export class StackRepo {
  constructor(private readonly db: Database) {}

  insert(s: Stack): void {
    this.db
      .query("INSERT INTO stacks (id, name, pool, image, environment, phases, repository, branch, created_at) VALUES ($id, $name, $pool, $image, $environment, $phases, $repository, $branch, $created_at)")
      .run({ ...s, environment: JSON.stringify(s.environment), phases: JSON.stringify(s.phases) });
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
