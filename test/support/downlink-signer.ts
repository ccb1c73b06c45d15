/**
 * Signing downlink messages in tests the way the mothership does: a real CA (pki/ca.ts) and a signer
 * certificate it issued (issueDownlinkSignerCertificate), plus the wrong signers a forger could
 * hold: a pool certificate of the same CA, or a signer of a CA the launcher does not trust.
 */
import "reflect-metadata";
import { createPrivateKey } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as x509 from "@peculiar/x509";
import { issueDownlinkSignerCertificate, issuePoolCertificate, loadOrCreateCa, type CertificateAuthority } from "../../src/pki/ca.ts";
import { fromPem, toPem } from "../../src/pki/der.ts";
import { encodeSignedDownlink, signDownlink, type DownlinkSigningKey } from "../../src/protocol/downlink-signature.ts";
import type { Message } from "../../src/protocol/messages.ts";

export interface Audience {
  pool: string;
  worker: string;
}

export interface TestSigner {
  key: DownlinkSigningKey;
  /** The wire form of `message` for `aud`, as the mothership would publish it; `now` in ms. */
  sign(aud: Audience, message: Message | string, now?: number): string;
}

export interface TestCa {
  ca: CertificateAuthority;
  caPem: string;
  /** A signer certificate issued by this CA. */
  signer: TestSigner;
  /** Another one, with its own key. */
  anotherSigner(): Promise<TestSigner>;
  /** Issues a pool certificate (EC P-256) for `pool`: it chains to the CA but is not a downlink signer. */
  poolSigner(pool: string): Promise<TestSigner & { certificatePem: string; keyPem: string }>;
  remove(): Promise<void>;
}

const KEY_ALG = { name: "ECDSA", namedCurve: "P-256" } as const;

async function keyPair(): Promise<{ pair: CryptoKeyPair; pem: string }> {
  const pair = (await crypto.subtle.generateKey(KEY_ALG, true, ["sign", "verify"])) as CryptoKeyPair;
  return { pair, pem: toPem("PRIVATE KEY", await crypto.subtle.exportKey("pkcs8", pair.privateKey)) };
}

/** A signer from any key and certificate (PEM), e.g. a pool's own: whether a launcher trusts it is the point. */
export function signerOf(keyPem: string, certificatePem: string): TestSigner {
  const key: DownlinkSigningKey = { key: createPrivateKey(keyPem), certificateDer: fromPem("CERTIFICATE", certificatePem) };
  return {
    key,
    sign: (aud, message, now) => encodeSignedDownlink(signDownlink(key, aud, typeof message === "string" ? message : JSON.stringify(message), now)),
  };
}

/** A fresh CA in a temp dir with its downlink signer. */
export async function makeTestCa(name = "Test CA"): Promise<TestCa> {
  const dir = await mkdtemp(join(tmpdir(), "downlink-ca-"));
  const ca = await loadOrCreateCa(dir, name);
  const newSigner = async () => {
    const { pair, pem } = await keyPair();
    return signerOf(pem, (await issueDownlinkSignerCertificate(ca, pair.publicKey)).pem);
  };
  return {
    ca,
    caPem: ca.certificatePem,
    signer: await newSigner(),
    anotherSigner: newSigner,
    async poolSigner(pool) {
      const k = await keyPair();
      const cert = await issuePoolCertificate(ca, pool, new x509.PublicKey(await crypto.subtle.exportKey("spki", k.pair.publicKey)));
      return { ...signerOf(k.pem, cert.pem), certificatePem: cert.pem, keyPem: k.pem };
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
