/**
 * The one way the repositories reach a database, whichever engine holds it: SQLite in the data dir
 * (bun:sqlite, the default) or PostgreSQL (Bun's built-in SQL client). Statements are written once,
 * with `?` placeholders (turned into `$1`, `$2`... for PostgreSQL) and SQL both engines speak; the few
 * that differ ask `dialect`.
 *
 * Every call is asynchronous. `transaction(fn)` runs `fn` with a handle whose statements are one
 * transaction: on SQLite the connection is held for it (other callers wait), on PostgreSQL it is one
 * pooled connection inside BEGIN/COMMIT. A transaction inside a transaction joins the outer one, and so
 * does every statement run through the handle itself while a transaction of it is open in the same
 * async context: code that reaches for the store's own repositories inside `store.transaction` takes
 * part in it instead of waiting for it (SQLite: forever) or running beside it (PostgreSQL).
 */
import { AsyncLocalStorage } from "node:async_hooks";
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

/** The transactions open in this async context, innermost first. */
interface OpenTx {
  owner: Sql;
  tx: Sql;
  open: boolean;
  outer: OpenTx | undefined;
}
const openTx = new AsyncLocalStorage<OpenTx>();

/** The transaction of `owner` open in this async context, if any. */
function joined(owner: Sql): Sql | null {
  for (let t = openTx.getStore(); t; t = t.outer) if (t.owner === owner && t.open) return t.tx;
  return null;
}

/** Runs `fn(tx)` with `tx` known as `owner`'s open transaction in its async context, until it settles. */
async function within<T>(owner: Sql, tx: Sql, fn: (tx: Sql) => Promise<T>): Promise<T> {
  const entry: OpenTx = { owner, tx, open: true, outer: openTx.getStore() };
  try {
    return await openTx.run(entry, () => fn(tx));
  } finally {
    // Work the transaction started and left running must not use it once it has ended.
    entry.open = false;
  }
}

/** `?` placeholders as PostgreSQL's `$n` (the statements hold no `?` inside string literals). */
function numberedPlaceholders(text: string): string {
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
    return joined(this)?.all<T>(text, ...params) ?? this.outside(() => this.allNow<T>(text, params));
  }

  get<T>(text: string, ...params: SqlValue[]): Promise<T | null> {
    return joined(this)?.get<T>(text, ...params) ?? this.outside(() => this.allNow<T>(text, params)[0] ?? null);
  }

  run(text: string, ...params: SqlValue[]): Promise<number> {
    return joined(this)?.run(text, ...params) ?? this.outside(() => this.runNow(text, params));
  }

  async transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T> {
    const outer = joined(this);
    if (outer) return outer.transaction(fn);
    while (this.holders > 0) await this.held;
    let release!: () => void;
    this.held = new Promise((resolve) => (release = resolve));
    this.holders++;
    this.db.exec("BEGIN IMMEDIATE");
    try {
      const result = await within(this, new SqliteTx(this), fn);
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
    const tx = this.inTransaction ? null : joined(this);
    if (tx) return tx.all<T>(text, ...params);
    this.stats.statements++;
    const rows = (await this.client.unsafe(numberedPlaceholders(text), params)) as T[];
    this.stats.rows += rows.length;
    return [...rows];
  }

  async get<T>(text: string, ...params: SqlValue[]): Promise<T | null> {
    return (await this.all<T>(text, ...params))[0] ?? null;
  }

  async run(text: string, ...params: SqlValue[]): Promise<number> {
    const tx = this.inTransaction ? null : joined(this);
    if (tx) return tx.run(text, ...params);
    this.stats.statements++;
    const result = (await this.client.unsafe(numberedPlaceholders(text), params)) as unknown as { count?: number | null };
    return Number(result.count ?? 0);
  }

  transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T> {
    if (this.inTransaction) return fn(this);
    const outer = joined(this);
    if (outer) return outer.transaction(fn);
    return this.client.begin(async (tx) => within(this, new PostgresSql(tx as unknown as SQL, this.stats, true), fn)) as Promise<T>;
  }

  /**
   * Calls `onnotify` with the payload of each NOTIFY on `channel`. Every listen shares one connection of
   * its own, which Bun reconnects and subscribes again after a drop, calling `onlisten` each time
   * (notifications sent meanwhile are lost). Resolves, once subscribed, to what ends this listen.
   */
  async listen(channel: string, onnotify: (payload: string) => void, onlisten?: () => void): Promise<() => Promise<void>> {
    const subscription = await this.client.listen(channel, onnotify, onlisten);
    return () => subscription.unlisten();
  }

  /** A script of several statements (migrations), sent as one simple query. */
  async script(text: string): Promise<void> {
    await this.client.unsafe(text);
  }

  async close(): Promise<void> {
    if (!this.inTransaction) await this.client.close();
  }
}
