/**
 * Extra CA certificates an operator adds to what the launcher trusts (corporate roots, the CA of a
 * TLS-inspecting proxy or of a load balancer in front of the mothership), in the two forms operators
 * already hold them: a PEM bundle file, and the base64 JSON `{"caCertificates": [...]}` of the
 * Spacelift worker pool documents, whose entries are base64 of a PEM certificate (a PEM text is
 * accepted too). Every certificate is parsed here, at start: a bundle that holds a private key, no
 * certificate, or one that does not parse is refused with what to fix.
 */
import { X509Certificate } from "node:crypto";
import { decodeBase64Strict, pemBlocks, utf8Strict } from "./pem.ts";

export type TrustResult = { ok: true; pems: string[] } | { ok: false; problem: string };

/** Largest bundle read: a full system bundle is ~220 KiB; anything far larger is not a CA bundle. */
export const MAX_CA_BUNDLE_BYTES = 4 * 1024 * 1024;

/** The CERTIFICATE blocks of a PEM bundle, each checked to parse. `what` names the input in problems. */
export function certificatesFromPem(text: string, what: string): TrustResult {
  const blocks = pemBlocks(text);
  const other = blocks.find((b) => b.label !== "CERTIFICATE" && b.label !== "TRUSTED CERTIFICATE");
  if (other) return { ok: false, problem: `${what} holds a ${other.label} block; give only CA certificates (-----BEGIN CERTIFICATE-----)` };
  const certs = blocks.filter((b) => b.label === "CERTIFICATE");
  if (certs.length === 0) return { ok: false, problem: `${what} holds no PEM certificate (-----BEGIN CERTIFICATE-----)` };
  const pems: string[] = [];
  for (const [i, block] of certs.entries()) {
    try {
      new X509Certificate(block.text);
    } catch {
      return { ok: false, problem: `certificate ${i + 1} of ${what} does not parse as X.509` };
    }
    pems.push(block.text);
  }
  return { ok: true, pems };
}

/** base64 of `{"caCertificates": ["<base64 of a PEM certificate>", ...]}`, the reference documents' form. */
export function certificatesFromJson(value: string): TrustResult {
  const form = `give base64 of {"caCertificates": ["<base64 of a PEM certificate>", ...]}, e.g. base64 -w 0 ca-certs.json`;
  const bytes = decodeBase64Strict(value);
  const text = bytes ? utf8Strict(bytes) : undefined;
  if (text === undefined) return { ok: false, problem: `is not base64; ${form}` };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, problem: `is base64 but not of JSON; ${form}` };
  }
  const list = typeof json === "object" && json !== null && !Array.isArray(json) ? (json as Record<string, unknown>).caCertificates : undefined;
  if (!Array.isArray(list) || list.length === 0) return { ok: false, problem: `has no non-empty caCertificates array; ${form}` };
  const pems: string[] = [];
  for (const [i, entry] of list.entries()) {
    const what = `caCertificates[${i}]`;
    if (typeof entry !== "string") return { ok: false, problem: `${what} is not a string; ${form}` };
    const pem = entry.includes("-----BEGIN") ? entry : utf8Strict(decodeBase64Strict(entry) ?? new Uint8Array([0xff]));
    if (pem === undefined || !pem.includes("-----BEGIN")) return { ok: false, problem: `${what} is neither a PEM certificate nor base64 of one; ${form}` };
    const parsed = certificatesFromPem(pem, what);
    if (!parsed.ok) return parsed;
    pems.push(...parsed.pems);
  }
  return { ok: true, pems };
}

/** Subject common names (or the whole subject) of PEM certificates, for `check` output. */
export function certificateSubjects(pems: readonly string[]): string[] {
  return pems.map((pem) => {
    const subject = new X509Certificate(pem).subject;
    return /(?:^|\n)CN=([^\n]*)/.exec(subject)?.[1] ?? subject.replace(/\n/g, ", ");
  });
}
