/**
 * The mothership's side of PEM: DER in and out for the labels it writes itself (CERTIFICATE,
 * PRIVATE KEY), and one canonical spelling of certificate serials. Lenient parsing of what
 * operators paste lives in pem.ts.
 */
import { SpaceliftError } from "../errors.ts";

export function toPem(label: string, der: ArrayBuffer | Uint8Array): string {
  const b64 = Buffer.from(der instanceof Uint8Array ? der : new Uint8Array(der)).toString("base64");
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/** The DER bytes of the first PEM block with `label`. */
export function fromPem(label: string, pem: string): Uint8Array<ArrayBuffer> {
  const re = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]+)-----END ${label}-----`);
  const m = re.exec(pem);
  if (!m?.[1]) throw new SpaceliftError("pem-malformed", `no "${label}" PEM block found`);
  return new Uint8Array(Buffer.from(m[1].replace(/\s+/g, ""), "base64"));
}

/**
 * Certificate serials as one canonical string: upper-case hex without leading zeros. Node's TLS
 * peer certificate, @peculiar/x509 and openssl each print serials slightly differently.
 */
export function normalizeSerial(serial: string): string {
  const hex = serial.replace(/[^0-9a-fA-F]/g, "").toUpperCase().replace(/^0+/, "");
  return hex === "" ? "0" : hex;
}
