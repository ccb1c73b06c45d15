/**
 * The mothership's downlink signer: an EC P-256 key made on first start and kept in
 * `<data>/downlink/signer.key` (0600), with a certificate from our CA (`signer.crt`) that carries the
 * downlink-signer extended key usage. Every message to a launcher is signed with it on its way out
 * (serve.ts), whichever transport carries it; launchers check it against the CA in their token
 * (src/protocol/downlink-signature.ts).
 *
 * The certificate is issued again when it does not verify against the current CA (a CA made anew),
 * does not match the key, or has less than RENEW_DAYS left; a long-running server renews it on its
 * own. Launchers learn the new certificate from the next message: nothing to roll out.
 */
import { createPrivateKey, createPublicKey, X509Certificate, type KeyObject } from "node:crypto";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { errorMessage } from "../errors.ts";
import type { Logger } from "../log/logger.ts";
import { issueDownlinkSignerCertificate, type CertificateAuthority } from "../pki/ca.ts";
import { fromPem, toPem } from "../pki/der.ts";
import { encodeSignedDownlink, signDownlink } from "../protocol/downlink-signature.ts";

const DAY = 24 * 60 * 60 * 1000;
/** Renew when fewer days than this are left (the certificate is issued for 397 days). */
const RENEW_DAYS = 30;
const KEY_ALG = { name: "ECDSA", namedCurve: "P-256" } as const;

export class DownlinkSigner {
  private renewing = false;

  private constructor(
    private readonly dir: string,
    private readonly ca: CertificateAuthority,
    private readonly key: KeyObject,
    private certificate: { der: Uint8Array; notAfter: number },
    private readonly log: Logger,
  ) {}

  /** Loads the key and certificate from `dir`, making the key on first use and the certificate when needed. */
  static async open(dir: string, ca: CertificateAuthority, logger: Logger): Promise<DownlinkSigner> {
    const log = logger.child({ component: "downlink-signer" });
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const keyPath = join(dir, "signer.key");
    let key: KeyObject;
    if (await Bun.file(keyPath).exists()) {
      key = createPrivateKey(await readFile(keyPath, "utf8"));
    } else {
      const pair = (await crypto.subtle.generateKey(KEY_ALG, true, ["sign", "verify"])) as CryptoKeyPair;
      const pem = toPem("PRIVATE KEY", await crypto.subtle.exportKey("pkcs8", pair.privateKey));
      await writeFile(keyPath, pem, { mode: 0o600, flag: "wx" });
      key = createPrivateKey(pem);
      log.info("downlink signing key created", { path: keyPath });
    }
    await chmod(keyPath, 0o600);
    const current = await readCertificate(join(dir, "signer.crt"), ca, key);
    const signer = new DownlinkSigner(dir, ca, key, current ?? { der: new Uint8Array(), notAfter: 0 }, log);
    if (!current || signer.renewalDue()) await signer.issue();
    return signer;
  }

  /** The wire form of `payload` (a message's JSON) for one worker: the text to publish or queue. */
  sign(pool: string, worker: string, payload: string): string {
    if (this.renewalDue()) void this.renew();
    return encodeSignedDownlink(signDownlink({ key: this.key, certificateDer: this.certificate.der }, { pool, worker }, payload));
  }

  private renewalDue(): boolean {
    return this.certificate.notAfter - Date.now() < RENEW_DAYS * DAY;
  }

  private async renew(): Promise<void> {
    if (this.renewing) return;
    this.renewing = true;
    try {
      await this.issue();
    } catch (err) {
      this.log.error("downlink signer certificate not renewed; retrying with the next message", { error: errorMessage(err) });
    } finally {
      this.renewing = false;
    }
  }

  private async issue(): Promise<void> {
    const spki = createPublicKey(this.key).export({ type: "spki", format: "der" });
    const publicKey = await crypto.subtle.importKey("spki", new Uint8Array(spki), KEY_ALG, true, ["verify"]);
    const issued = await issueDownlinkSignerCertificate(this.ca, publicKey);
    const path = join(this.dir, "signer.crt");
    await writeFile(path, issued.pem, { mode: 0o600 });
    this.certificate = { der: new Uint8Array(fromPem("CERTIFICATE", issued.pem)), notAfter: issued.notAfter.getTime() };
    this.log.info("downlink signer certificate issued", { path, serial: issued.serial, not_after: issued.notAfter.toISOString() });
  }
}

/** The certificate at `path` if it is issued by `ca` for `key`; null when missing or not usable. */
async function readCertificate(path: string, ca: CertificateAuthority, key: KeyObject): Promise<{ der: Uint8Array; notAfter: number } | null> {
  if (!(await Bun.file(path).exists())) return null;
  try {
    const cert = new X509Certificate(await readFile(path, "utf8"));
    const caCert = new X509Certificate(ca.certificatePem);
    const ours = createPublicKey(key).export({ type: "spki", format: "der" });
    if (!cert.checkIssued(caCert) || !cert.verify(caCert.publicKey)) return null;
    if (!Buffer.from(cert.publicKey.export({ type: "spki", format: "der" })).equals(ours)) return null;
    return { der: new Uint8Array(cert.raw), notAfter: cert.validToDate.getTime() };
  } catch {
    return null;
  }
}
