/**
 * Pool creation, reset and deletion: verify the operator's CSR, issue the pool certificate from
 * our CA, record its serial, and hand out the token once. The mothership keeps the certificate (it
 * encrypts runs to it) but never sees the private key.
 */
import { encodeToken } from "../pki/token.ts";
import { issuePoolCertificate, type CertificateAuthority } from "../pki/ca.ts";
import { verifyCsr } from "../pki/csr.ts";
import { SpaceliftError } from "../errors.ts";
import type { Pool, Store } from "./store/index.ts";
import { ulid } from "../protocol/ulid.ts";

export interface Endpoints {
  /** What tokens advertise for MQTT, e.g. mqtts://mothership.example.com:8883. */
  brokerEndpoint: string;
  namespace: string;
  /** Base URL of the API, for the long-poll transport. */
  commsUrl: string;
}

export class PoolService {
  constructor(
    private readonly store: Store,
    private readonly ca: CertificateAuthority,
    private readonly endpoints: Endpoints,
  ) {}

  async create(input: { name: string; description?: string; csr: string }): Promise<{ pool: Pool; token: string }> {
    const name = input.name.trim();
    if (name === "") throw new SpaceliftError("invalid-request", "a pool needs a name");
    const csr = await verifyCsr(input.csr);
    const id = ulid();
    const cert = await issuePoolCertificate(this.ca, id, csr.publicKey);
    const pool: Pool = {
      id,
      name,
      description: input.description ?? "",
      certificate: cert.pem,
      certificate_serial: cert.serial,
      key_type: `${csr.keyType}-${csr.keySize}`,
      created_at: new Date().toISOString(),
    };
    await this.store.pools.insert(pool);
    return { pool, token: this.token(pool) };
  }

  /** New CSR for an existing pool: the old certificate is revoked, connected launchers are cut off. */
  async reset(id: string, csrPem: string): Promise<{ pool: Pool; token: string }> {
    const existing = await this.store.pools.get(id);
    if (!existing) throw new SpaceliftError("not-found", `pool ${id} does not exist`);
    const csr = await verifyCsr(csrPem);
    const cert = await issuePoolCertificate(this.ca, id, csr.publicKey);
    await this.store.pools.replaceCertificate(id, cert.pem, cert.serial, `${csr.keyType}-${csr.keySize}`, new Date().toISOString());
    const pool = (await this.store.pools.get(id)) as Pool;
    return { pool, token: this.token(pool) };
  }

  /**
   * Revokes the pool's certificate and forgets its workers. A pool still used by a stack stays:
   * its runs would have nowhere to go (the caller drops the pool's live connections). The
   * check and both deletes are one transaction: a pool's workers go with it.
   */
  async delete(id: string): Promise<void> {
    await this.store.transaction(async (tx) => {
      if (!(await tx.pools.get(id))) throw new SpaceliftError("not-found", `pool ${id} does not exist`);
      const users = (await tx.stacks.list(id)).map((s) => s.id);
      if (users.length > 0) {
        throw new SpaceliftError("conflict", `pool ${id} is used by ${users.length} stack(s): ${users.join(", ")}; delete them first (mothership stack delete ID)`);
      }
      const now = new Date().toISOString();
      await tx.pools.delete(id, now);
      await tx.workers.deletePool(id, now);
    });
  }

  token(pool: Pool): string {
    return encodeToken({
      version: 1,
      pool: pool.id,
      broker: { endpoint: this.endpoints.brokerEndpoint, namespace: this.endpoints.namespace },
      comms_url: this.endpoints.commsUrl,
      certificate: pool.certificate,
      ca: this.ca.certificatePem,
    });
  }
}
