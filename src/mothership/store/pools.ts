/** Pools, with their certificate serials, current and revoked. */
import type { Database } from "bun:sqlite";

export interface Pool {
  id: string;
  name: string;
  description: string;
  certificate: string;
  certificate_serial: string;
  key_type: string;
  created_at: string;
}

export class PoolRepo {
  constructor(private readonly db: Database) {}

  insert(p: Pool): void {
    this.db
      .query("INSERT INTO pools (id, name, description, certificate, certificate_serial, key_type, created_at) VALUES ($id, $name, $description, $certificate, $certificate_serial, $key_type, $created_at)")
      .run({ ...p });
  }

  get(id: string): Pool | null {
    return this.db.query("SELECT * FROM pools WHERE id = ?").get(id) as Pool | null;
  }

  /** Every pool's id, oldest first (what the periodic sweep dispatches). */
  ids(): string[] {
    return (this.db.query("SELECT id FROM pools ORDER BY created_at, id").all() as Array<{ id: string }>).map((r) => r.id);
  }

  list(): Pool[] {
    return this.db.query("SELECT * FROM pools ORDER BY created_at, id").all() as Pool[];
  }

  /** New certificate for the pool; the old serial is revoked in the same transaction. */
  replaceCertificate(id: string, certificate: string, serial: string, keyType: string, now: string): void {
    this.db.transaction(() => {
      const old = this.get(id);
      if (old) this.db.query("INSERT OR IGNORE INTO revoked_serials (serial, pool, revoked_at) VALUES (?, ?, ?)").run(old.certificate_serial, id, now);
      this.db.query("UPDATE pools SET certificate = ?, certificate_serial = ?, key_type = ? WHERE id = ?").run(certificate, serial, keyType, id);
    })();
  }

  delete(id: string, now: string): void {
    this.db.transaction(() => {
      const old = this.get(id);
      if (old) this.db.query("INSERT OR IGNORE INTO revoked_serials (serial, pool, revoked_at) VALUES (?, ?, ?)").run(old.certificate_serial, id, now);
      this.db.query("DELETE FROM pools WHERE id = ?").run(id);
    })();
  }

  /** The broker's admission check: the pool exists and this is its current, unrevoked certificate. */
  isCurrentSerial(pool: string, serial: string): boolean {
    const row = this.db.query("SELECT certificate_serial FROM pools WHERE id = ?").get(pool) as { certificate_serial: string } | null;
    if (!row || row.certificate_serial !== serial) return false;
    return this.db.query("SELECT 1 FROM revoked_serials WHERE serial = ?").get(serial) === null;
  }

  /** Every revoked serial with when it was revoked (the broker CRL, crl.ts). */
  revocations(): Array<{ serial: string; revoked_at: string }> {
    return this.db.query("SELECT serial, revoked_at FROM revoked_serials ORDER BY revoked_at, serial").all() as Array<{ serial: string; revoked_at: string }>;
  }

  revokedSerials(): string[] {
    return (this.db.query("SELECT serial FROM revoked_serials ORDER BY revoked_at").all() as Array<{ serial: string }>).map((r) => r.serial);
  }
}
