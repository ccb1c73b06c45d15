/**
 * Checks across the token and the key, made at launcher start so a wrong pairing fails with a clear
 * line instead of an opaque TLS handshake error later: the key must be the one the pool's certificate
 * was issued for, and the certificate must be valid now.
 */
import { X509Certificate } from "node:crypto";
import { SpaceliftError } from "../errors.ts";
import type { PoolPrivateKey } from "./keys.ts";

export type CredentialsErrorCode = "key-certificate-mismatch" | "certificate-expired" | "certificate-not-yet-valid";

class CredentialsError extends SpaceliftError {
  declare readonly code: CredentialsErrorCode;

  constructor(code: CredentialsErrorCode, message: string) {
    super(code, message);
  }
}

export interface CertificateWindow {
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** The certificate's validity window (the PEM must already be known to parse). */
export function certificateWindow(certificatePem: string): CertificateWindow {
  const cert = new X509Certificate(certificatePem);
  return { notBefore: cert.validFromDate, notAfter: cert.validToDate };
}

/** A CredentialsError when `now` is outside the certificate's validity window, else undefined. */
export function checkCertificateWindow(certificatePem: string, now: Date): CredentialsError | undefined {
  const { notBefore, notAfter } = certificateWindow(certificatePem);
  if (now.getTime() > notAfter.getTime()) {
    return new CredentialsError(
      "certificate-expired",
      `the pool certificate in the token expired on ${notAfter.toISOString()}; reset the pool (mothership pool reset) and use the new token`,
    );
  }
  if (now.getTime() < notBefore.getTime()) {
    return new CredentialsError(
      "certificate-not-yet-valid",
      `the pool certificate in the token is not valid before ${notBefore.toISOString()}; check this host's clock (timedatectl) or wait`,
    );
  }
  return undefined;
}

/** A CredentialsError when the key is not the one the certificate was issued for, else undefined. */
export function checkKeyMatchesCertificate(key: PoolPrivateKey, certificatePem: string): CredentialsError | undefined {
  const certSpki = new X509Certificate(certificatePem).publicKey.export({ type: "spki", format: "der" });
  if (certSpki.equals(key.spki)) return undefined;
  return new CredentialsError(
    "key-certificate-mismatch",
    "the private key does not match the pool certificate in SPACELIFT_TOKEN; use the key whose CSR created this pool, or reset the pool with a CSR from this key",
  );
}
