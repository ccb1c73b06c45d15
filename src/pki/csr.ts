/**
 * Certificate signing requests from operators (docs/architecture.md, docs/security.md): `openssl req -new -newkey rsa:4096 -nodes`
 * or an EC equivalent. The mothership never sees the private key; the CSR proves possession of it
 * by its signature, which is verified before a pool certificate is issued.
 */
import { Pkcs10CertificateRequest, type PublicKey } from "@peculiar/x509";
import { SpaceliftError } from "../errors.ts";

export interface VerifiedCsr {
  publicKey: PublicKey;
  /** The subject the operator typed; informational only, the certificate names the pool. */
  subject: string;
  keyType: "RSA" | "EC";
  /** RSA modulus bits or the EC curve name. */
  keySize: string;
}

/** Smallest RSA modulus we sign: 2048 bits is the floor every current baseline agrees on. */
const MIN_RSA_BITS = 2048;

export async function verifyCsr(pem: string): Promise<VerifiedCsr> {
  if (!pem.includes("-----BEGIN CERTIFICATE REQUEST-----") && !pem.includes("-----BEGIN NEW CERTIFICATE REQUEST-----")) {
    throw new SpaceliftError("csr-malformed", "not a PEM certificate request (expected -----BEGIN CERTIFICATE REQUEST-----)");
  }
  let csr: Pkcs10CertificateRequest;
  try {
    csr = new Pkcs10CertificateRequest(pem.replace(/NEW CERTIFICATE REQUEST/g, "CERTIFICATE REQUEST"));
  } catch (err) {
    throw new SpaceliftError("csr-malformed", "the certificate request cannot be parsed", { cause: err });
  }
  const alg = csr.publicKey.algorithm as { name: string; namedCurve?: string; modulusLength?: number };
  let keyType: "RSA" | "EC";
  let keySize: string;
  if (alg.name.startsWith("RSA")) {
    keyType = "RSA";
    const bits = alg.modulusLength ?? 0;
    if (bits < MIN_RSA_BITS) throw new SpaceliftError("csr-key-unsupported", `RSA key of ${bits} bits is too small (minimum ${MIN_RSA_BITS})`);
    keySize = String(bits);
  } else if (alg.name === "ECDSA" || alg.name === "ECDH") {
    keyType = "EC";
    if (alg.namedCurve !== "P-256" && alg.namedCurve !== "P-384") {
      throw new SpaceliftError("csr-key-unsupported", `EC curve ${String(alg.namedCurve)} is not supported (use P-256 or P-384)`);
    }
    keySize = alg.namedCurve;
  } else {
    throw new SpaceliftError("csr-key-unsupported", `key algorithm ${alg.name} is not supported (use RSA or EC)`);
  }
  let valid = false;
  try {
    valid = await csr.verify();
  } catch (err) {
    throw new SpaceliftError("csr-signature-invalid", "the certificate request's signature cannot be verified", { cause: err });
  }
  if (!valid) throw new SpaceliftError("csr-signature-invalid", "the certificate request's signature does not match its key");
  return { publicKey: csr.publicKey, subject: csr.subject, keyType, keySize };
}
