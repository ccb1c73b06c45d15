/** Pools, with their certificate serials, current and revoked. */
import type { Sql } from "./sql.ts";

export interface Pool {
  id: string;
  name: string;
  description: string;
  certificate: string;
  certificate_serial: string;
  key_type: string;
  created_at: string;
}

/** Revokes the pool's current serial (kept once, however often it is revoked). */
const REVOKE = "INSERT INTO revoked_serials (serial, pool, revoked_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING";

export class PoolRepo {
  constructor(private readonly sql: Sql) {}

  async insert(p: Pool): Promise<void> {
    await this.sql.run(
      "INSERT INTO pools (id, name, description, certificate, certificate_serial, key_type, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
      p.id, p.name, p.description, p.certificate, p.certificate_serial, p.key_type, p.created_at,
    );
  }

  get(id: string): Promise<Pool | null> {
    return this.sql.get<Pool>("SELECT * FROM pools WHERE id = ?", id);
  }

  /** Every pool's id, oldest first (what the periodic sweep dispatches). */
  async ids(): Promise<string[]> {
    return (await this.sql.all<{ id: string }>("SELECT id FROM pools ORDER BY created_at, id")).map((r) => r.id);
  }

  list(): Promise<Pool[]> {
    return this.sql.all<Pool>("SELECT * FROM pools ORDER BY created_at, id");
  }

  /** New certificate for the pool; the old serial is revoked in the same transaction. */
  async replaceCertificate(id: string, certificate: string, serial: string, keyType: string, now: string): Promise<void> {
    await this.sql.transaction(async (tx) => {
      const old = await new PoolRepo(tx).lockedSerial(id);
      if (old !== null) await tx.run(REVOKE, old, id, now);
      await tx.run("UPDATE pools SET certificate = ?, certificate_serial = ?, key_type = ? WHERE id = ?", certificate, serial, keyType, id);
    });
  }

  async delete(id: string, now: string): Promise<void> {
    await this.sql.transaction(async (tx) => {
      const old = await new PoolRepo(tx).lockedSerial(id);
      if (old !== null) await tx.run(REVOKE, old, id, now);
      await tx.run("DELETE FROM pools WHERE id = ?", id);
    });
  }

  /**
   * The pool's current serial, its row locked on PostgreSQL until the transaction ends: two replicas
   * replacing one pool's certificate at once each revoke the serial the other one replaced.
   */
  private async lockedSerial(id: string): Promise<string | null> {
    const lock = this.sql.dialect === "postgres" ? " FOR UPDATE" : "";
    return (await this.sql.get<{ certificate_serial: string }>(`SELECT certificate_serial FROM pools WHERE id = ?${lock}`, id))?.certificate_serial ?? null;
  }

  /** The broker's admission check: the pool exists and this is its current, unrevoked certificate. */
  async isCurrentSerial(pool: string, serial: string): Promise<boolean> {
    const row = await this.sql.get<{ certificate_serial: string }>("SELECT certificate_serial FROM pools WHERE id = ?", pool);
    if (!row || row.certificate_serial !== serial) return false;
    return (await this.sql.get("SELECT 1 FROM revoked_serials WHERE serial = ?", serial)) === null;
  }

  /** Every revoked serial with when it was revoked (the broker CRL, crl.ts). */
  revocations(): Promise<Array<{ serial: string; revoked_at: string }>> {
    return this.sql.all<{ serial: string; revoked_at: string }>("SELECT serial, revoked_at FROM revoked_serials ORDER BY revoked_at, serial");
  }

  async revokedSerials(): Promise<string[]> {
    return (await this.sql.all<{ serial: string }>("SELECT serial FROM revoked_serials ORDER BY revoked_at, serial")).map((r) => r.serial);
  }
}
