/** Shared helpers for protocol and PKI unit tests: keys, CSRs and a run spec made in-process. */
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import type { RunSpec } from "../../../src/protocol/run-spec.ts";

export type KeyKind = "rsa" | "p256" | "p384";

export async function makeKeyAndCsr(kind: KeyKind, subject = "CN=operator"): Promise<{ keys: CryptoKeyPair; csrPem: string; pkcs8: Uint8Array<ArrayBuffer> }> {
  const alg =
    kind === "rsa"
      ? { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]) }
      : { name: "ECDSA", namedCurve: kind === "p256" ? "P-256" : "P-384" };
  const signing = kind === "rsa" ? alg : { name: "ECDSA", hash: kind === "p256" ? "SHA-256" : "SHA-384" };
  const keys = (await crypto.subtle.generateKey(alg, true, ["sign", "verify"])) as CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: subject, keys, signingAlgorithm: signing });
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", keys.privateKey));
  return { keys, csrPem: csr.toString("pem"), pkcs8 };
}

export function sampleRunSpec(id = "01JABCDEFGHJKMNPQRSTVWXYZ0"): RunSpec {
  return {
    id,
    type: "TRACKED",
    stack: { id: "stack-1", name: "infra", labels: [], branch: "main", repository: "org/infra", project_root: "" },
    commit: { hash: "", branch: "main", author: "", message: "" },
    runner_image: "busybox:latest",
    environment: [
      { name: "PLAIN", value: "hello", secret: false },
      { name: "TOKEN", value: "s3cr3t-value", secret: true },
    ],
    phases: [{ name: "plan", commands: ["echo plan"] }],
  };
}
