/**
 * The certificate revocation list of the mothership's CA, for a broker that is not ours (`serve
 * --broker`): the serials of every pool certificate that a reset or a delete revoked. The embedded
 * broker asks the store at each connection instead; Mosquitto reads this file (docs/external-broker.md).
 *
 * The CRL is valid for CRL_VALIDITY_DAYS: OpenSSL refuses every client certificate once a CRL's
 * nextUpdate has passed, so the mothership writes it again at start, after each reset and delete,
 * and daily (serve.ts).
 */
import { chmod, rename, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import * as x509 from "@peculiar/x509";
import { spawn } from "node:child_process";
import type { CertificateAuthority } from "../pki/ca.ts";
import { toPem } from "../pki/der.ts";
import type { Logger } from "../log/logger.ts";

const CRL_VALIDITY_DAYS = 30;
const DAY = 24 * 60 * 60 * 1000;

export interface Revocation {
  serial: string;
  revoked_at: string;
}

/** A PEM X.509 v2 CRL signed by the CA, listing `revoked`. */
export async function makeCrl(ca: CertificateAuthority, revoked: readonly Revocation[], now = new Date()): Promise<string> {
  const crl = await x509.X509CrlGenerator.create({
    issuer: ca.certificate.subject,
    thisUpdate: new Date(now.getTime() - 5 * 60 * 1000),
    nextUpdate: new Date(now.getTime() + CRL_VALIDITY_DAYS * DAY),
    signingKey: ca.privateKey,
    signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
    extensions: [await x509.AuthorityKeyIdentifierExtension.create(ca.certificate, false)],
    entries: revoked.map((r) => ({
      serialNumber: r.serial,
      revocationDate: Number.isNaN(Date.parse(r.revoked_at)) ? now : new Date(r.revoked_at),
      reason: x509.X509CrlReason.superseded,
    })),
  });
  // OpenSSL (and so Mosquitto) reads the label `X509 CRL` only.
  return toPem("X509 CRL", crl.rawData);
}

/** Writes `pem` to `path` whole or not at all (a temp file beside it, then rename): a broker never reads half a CRL. */
export async function writeCrlFile(path: string, pem: string): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  // Public data, and the broker (often another user) must read it.
  await writeFile(tmp, pem, { mode: 0o644 });
  // `serve` runs with umask 077, which the mode above does not overrule.
  await chmod(tmp, 0o644);
  await rename(tmp, path);
}

export interface CrlPublisherOptions {
  ca: CertificateAuthority;
  /** Where the broker reads the CRL (`--broker-crl`). */
  path: string;
  revocations(): Revocation[] | Promise<Revocation[]>;
  /** Run through /bin/sh after each write, e.g. `systemctl reload mosquitto` (`--broker-reload-command`). */
  reloadCommand?: string;
  logger: Logger;
}

/** Keeps the broker's CRL current; `publish()` calls never overlap, and the last one always reflects the store. */
export class CrlPublisher {
  private chain: Promise<void> = Promise.resolve();
  private readonly log: Logger;

  constructor(private readonly o: CrlPublisherOptions) {
    this.log = o.logger.child({ component: "crl" });
  }

  publish(why: string): Promise<void> {
    this.chain = this.chain.then(() => this.write(why));
    return this.chain;
  }

  private async write(why: string): Promise<void> {
    try {
      const revoked = await this.o.revocations();
      await writeCrlFile(this.o.path, await makeCrl(this.o.ca, revoked));
      this.log.info("broker CRL written", { path: this.o.path, revoked: revoked.length, why });
      if (this.o.reloadCommand) await this.reload(this.o.reloadCommand);
    } catch (err) {
      this.log.error("broker CRL could not be written; revoked pool certificates may still connect to the broker", { path: this.o.path, error: err });
    }
  }

  private reload(command: string): Promise<void> {
    return new Promise((resolve) => {
      const child = spawn("/bin/sh", ["-c", command], { stdio: ["ignore", "ignore", "pipe"] });
      let stderr = "";
      child.stderr.on("data", (d: Buffer) => {
        if (stderr.length < 2048) stderr += d.toString("utf8");
      });
      child.on("error", (err) => {
        this.log.error("broker reload command could not start", { error: err.message });
        resolve();
      });
      child.on("close", (code) => {
        if (code === 0) this.log.info("broker reload command done");
        else this.log.error("broker reload command failed; the broker still uses the old CRL", { exit_code: code, stderr: stderr.trim().slice(0, 2048) });
        resolve();
      });
    });
  }
}
