/**
 * The one way the repositories reach a database, whichever engine holds it: SQLite in the data dir
 * (bun:sqlite, the default) or PostgreSQL (Bun's built-in SQL client). Statements are written once,
 * with `?` placeholders (turned into `$1`, `$2`... for PostgreSQL) and SQL both engines speak; the few
 * that differ ask `dialect`.
 *
 * Every call is asynchronous. `transaction(fn)` runs `fn` with a handle whose statements are one
 * transaction: on SQLite the connection is held for it (other callers wait), on PostgreSQL it is one
 * pooled connection inside BEGIN/COMMIT. A transaction inside a transaction joins the outer one.
 */
import type { Database } from "bun:sqlite";
import type { SQL } from "bun";

export type Dialect = "sqlite" | "postgres";
export type SqlValue = string | number | boolean | null | Uint8Array;

/** Statements run and rows read through a store, for tests that bound the work an event costs. */
export interface QueryStats {
  statements: number;
  rows: number;
}

export interface Sql {
  readonly dialect: Dialect;
  /** Every statement and row read through this handle and its transactions. */
  readonly stats: QueryStats;
  all<T>(text: string, ...params: SqlValue[]): Promise<T[]>;
  get<T>(text: string, ...params: SqlValue[]): Promise<T | null>;
  /** Runs a statement; resolves to the number of rows it changed. */
  run(text: string, ...params: SqlValue[]): Promise<number>;
  transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** `?` placeholders as PostgreSQL's `$n` (the statements hold no `?` inside string literals). */
export function numberedPlaceholders(text: string): string {
  let n = 0;
  return text.replace(/\?/g, () => `$${++n}`);
}

/** SQLite through bun:sqlite: statements run synchronously; a transaction holds the connection. */
export class SqliteSql implements Sql {
  readonly dialect = "sqlite" as const;
  readonly stats: QueryStats = { statements: 0, rows: 0 };
  /** Settles when the transaction that holds the connection ends (resolved when none does). */
  private held: Promise<void> = Promise.resolve();
  private holders = 0;

  constructor(readonly db: Database) {}

  /**
   * Runs now when no transaction holds the connection, else after it. The check and `fn` run in the
   * same turn, so nothing can take the connection in between.
   */
  private async outside<T>(fn: () => T): Promise<T> {
    while (this.holders > 0) await this.held;
    return fn();
  }

  allNow<T>(text: string, params: SqlValue[]): T[] {
    const rows = this.db.query(text).all(...(params as never[])) as T[];
    this.stats.statements++;
    this.stats.rows += rows.length;
    return rows;
  }

  runNow(text: string, params: SqlValue[]): number {
    this.stats.statements++;
    return this.db.query(text).run(...(params as never[])).changes;
  }

  all<T>(text: string, ...params: SqlValue[]): Promise<T[]> {
    return this.outside(() => this.allNow<T>(text, params));
  }

  get<T>(text: string, ...params: SqlValue[]): Promise<T | null> {
    return this.outside(() => this.allNow<T>(text, params)[0] ?? null);
  }

  run(text: string, ...params: SqlValue[]): Promise<number> {
    return this.outside(() => this.runNow(text, params));
  }

  async transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T> {
    while (this.holders > 0) await this.held;
    let release!: () => void;
    this.held = new Promise((resolve) => (release = resolve));
    this.holders++;
    this.db.exec("BEGIN IMMEDIATE");
    try {
      const result = await fn(new SqliteTx(this));
      this.db.exec("COMMIT");
      return result;
    } catch (err) {
      if (this.db.inTransaction) this.db.exec("ROLLBACK");
      throw err;
    } finally {
      this.holders--;
      release();
    }
  }

  async close(): Promise<void> {
    while (this.holders > 0) await this.held;
    this.db.close();
  }
}

/** The statements of one SQLite transaction: they run at once, the connection is theirs. */
class SqliteTx implements Sql {
  readonly dialect = "sqlite" as const;
  constructor(private readonly owner: SqliteSql) {}
  get stats(): QueryStats {
    return this.owner.stats;
  }
  async all<T>(text: string, ...params: SqlValue[]): Promise<T[]> {
    return this.owner.allNow<T>(text, params);
  }
  async get<T>(text: string, ...params: SqlValue[]): Promise<T | null> {
    return this.owner.allNow<T>(text, params)[0] ?? null;
  }
  async run(text: string, ...params: SqlValue[]): Promise<number> {
    return this.owner.runNow(text, params);
  }
  transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T> {
    return fn(this);
  }
  async close(): Promise<void> {}
}

/** PostgreSQL through Bun's SQL client (a pool of connections; a transaction takes one). */
export class PostgresSql implements Sql {
  readonly dialect = "postgres" as const;
  constructor(
    private readonly client: SQL,
    readonly stats: QueryStats = { statements: 0, rows: 0 },
    private readonly inTransaction = false,
  ) {}

  async all<T>(text: string, ...params: SqlValue[]): Promise<T[]> {
    this.stats.statements++;
    const rows = (await this.client.unsafe(numberedPlaceholders(text), params)) as T[];
    this.stats.rows += rows.length;
    return [...rows];
  }

  async get<T>(text: string, ...params: SqlValue[]): Promise<T | null> {
    return (await this.all<T>(text, ...params))[0] ?? null;
  }

  async run(text: string, ...params: SqlValue[]): Promise<number> {
    this.stats.statements++;
    const result = (await this.client.unsafe(numberedPlaceholders(text), params)) as unknown as { count?: number | null };
    return Number(result.count ?? 0);
  }

  transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T> {
    if (this.inTransaction) return fn(this);
    return this.client.begin(async (tx) => fn(new PostgresSql(tx as unknown as SQL, this.stats, true))) as Promise<T>;
  }

  /** A script of several statements (migrations), sent as one simple query. */
  async script(text: string): Promise<void> {
    await this.client.unsafe(text);
  }

  async close(): Promise<void> {
    if (!this.inTransaction) await this.client.close();
  }
}
