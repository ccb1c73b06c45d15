/**
 * The signature on every mothership -> launcher message. The broker, a proxy, a load balancer where
 * TLS ends, or anyone who holds one pool's key (pool certificates chain to the same CA) can put bytes
 * on a worker's downlink; only the mothership's downlink signer can make the launcher act on them.
 *
 * Wire form (one JSON object, the message inside unchanged, as the JSON text that was signed):
 *
 *   {"alg":"ES256","aud":{"pool":P,"worker":W},"exp":UNIX_SECONDS,"message":"{\"v\":1,...}",
 *    "signer":BASE64_DER,"sig":BASE64}
 *
 * `sig` is ECDSA P-256 with SHA-256 (r||s) over the JSON array
 * `["spacelift-downlink-v1", pool, worker, message id, exp, hex SHA-256 of message]`, so a changed
 * byte of the message, another audience, another expiry or another id does not verify. `signer` is
 * the signer's certificate: issued by a CA of the token, not a CA itself, and carrying the extended
 * key usage DOWNLINK_SIGNER_EKU, which the mothership's CA never puts on a pool certificate. A
 * launcher checks each signer certificate once and keeps its key by fingerprint.
 *
 * Signing (the mothership) uses node:crypto, synchronously, so messages leave in the order they were
 * made; verifying (the launcher) uses WebCrypto. Replays are the receiver's business
 * (src/transport/downlink.ts): this file checks one message and holds no per-message state.
 */
import { createHash, sign as nodeSign, X509Certificate, type KeyObject } from "node:crypto";
import * as v from "valibot";
import { SpaceliftError } from "../errors.ts";
import { pemBlocks } from "../pki/pem.ts";

/**
 * Extended key usage of the downlink signer certificate: a random number under the UUID arc 2.25
 * (X.667), which needs no registration. Kept below 2^31: the ASN.1 encoder that issues our
 * certificates (@peculiar/x509) writes larger arcs wrongly, and Bun's X.509 parser drops them.
 */
export const DOWNLINK_SIGNER_EKU = "2.25.1732484716";
export const DOWNLINK_SIGNER_CN = "Spacelift mothership downlink signer";
/** The mothership signs each message valid for this long. @testSeam */
export const DOWNLINK_VALIDITY_SECONDS = 300;
/** A launcher's clock may be this far from the mothership's (as for signed poll requests). */
export const DOWNLINK_CLOCK_SKEW_SECONDS = 300;
/** The largest message text a signed envelope may carry (a schedule with a big run spec fits). */
const MAX_SIGNED_MESSAGE_CHARS = 4 * 1024 * 1024;
/** Signer certificates a launcher keeps checked (a renewed signer adds one). */
const SIGNER_CACHE = 4;

const CONTEXT = "spacelift-downlink-v1";
const ALG = "ES256";
const Base64 = (max: number) => v.pipe(v.string(), v.maxLength(max), v.regex(/^[A-Za-z0-9+/]+={0,2}$/, "not base64"));
const Level = v.pipe(v.string(), v.regex(/^[A-Za-z0-9_.-]{1,128}$/, "not an id"));

const SignedDownlinkSchema = v.object({
  alg: v.literal(ALG),
  aud: v.object({ pool: Level, worker: Level }),
  exp: v.pipe(v.number(), v.integer(), v.minValue(0)),
  message: v.pipe(v.string(), v.maxLength(MAX_SIGNED_MESSAGE_CHARS)),
  signer: Base64(8192),
  sig: Base64(1024),
});
export type SignedDownlink = v.InferOutput<typeof SignedDownlinkSchema>;

export type DownlinkRefusal =
  | "downlink-unsigned"
  | "downlink-malformed"
  | "downlink-signer-untrusted"
  | "downlink-signer-purpose"
  | "downlink-signer-expired"
  | "downlink-bad-signature"
  | "downlink-audience"
  | "downlink-expired";

export class DownlinkSignatureError extends SpaceliftError {
  declare readonly code: DownlinkRefusal;

  constructor(code: DownlinkRefusal, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

const refuse = (code: DownlinkRefusal, message: string, cause?: unknown): never => {
  throw new DownlinkSignatureError(code, message, cause === undefined ? undefined : { cause });
};

const sha256Hex = (data: string | Uint8Array): string => createHash("sha256").update(data).digest("hex");

/** What is signed: a JSON array, so no part can spill into another. */
function canonical(aud: { pool: string; worker: string }, id: string, exp: number, message: string): string {
  return JSON.stringify([CONTEXT, aud.pool, aud.worker, id, exp, sha256Hex(message)]);
}

/** The id of a message text; the message must be a JSON object with a string id. */
function messageId(message: string): { id: string; value: Record<string, unknown> } {
  let value: unknown;
  try {
    value = JSON.parse(message);
  } catch {
    return refuse("downlink-malformed", "the signed message is not JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return refuse("downlink-malformed", "the signed message is not a JSON object");
  const id = (value as Record<string, unknown>).id;
  if (typeof id !== "string" || id.length === 0 || id.length > 128) return refuse("downlink-malformed", "the signed message has no id");
  return { id, value: value as Record<string, unknown> };
}

// ---- the mothership's side ----

export interface DownlinkSigningKey {
  /** EC P-256 private key. */
  key: KeyObject;
  /** The signer certificate, DER. */
  certificateDer: Uint8Array;
}

/** Signs one message text for one worker; `now` in ms. Throws when the text is not a message with an id. */
export function signDownlink(k: DownlinkSigningKey, aud: { pool: string; worker: string }, message: string, now: number = Date.now()): SignedDownlink {
  const { id } = messageId(message);
  const exp = Math.floor(now / 1000) + DOWNLINK_VALIDITY_SECONDS;
  const sig = nodeSign("sha256", Buffer.from(canonical(aud, id, exp, message)), { key: k.key, dsaEncoding: "ieee-p1363" });
  return { alg: ALG, aud: { pool: aud.pool, worker: aud.worker }, exp, message, signer: Buffer.from(k.certificateDer).toString("base64"), sig: sig.toString("base64") };
}

/** The envelope as it goes on the wire, fields in a fixed order. */
export function encodeSignedDownlink(d: SignedDownlink): string {
  return JSON.stringify({ alg: d.alg, aud: { pool: d.aud.pool, worker: d.aud.worker }, exp: d.exp, message: d.message, signer: d.signer, sig: d.sig });
}

// ---- the launcher's side ----

export interface OpenedDownlink {
  id: string;
  /** Unix seconds. */
  exp: number;
  sig: string;
  /** The message as a JSON value, to be checked by decodeMessage. */
  message: Record<string, unknown>;
}

interface TrustedSigner {
  key: CryptoKey;
  notBefore: number;
  notAfter: number;
}

export interface DownlinkVerifierOptions {
  /** PEM bundle of the CA(s) in the token. */
  ca: string;
  pool: string;
  worker: string;
  /** ms; defaults to Date.now. */
  now?: () => number;
}

/** Checks signed downlink messages for one worker. Keeps at most a few checked signer keys. */
export class DownlinkVerifier {
  private readonly cas: X509Certificate[];
  private readonly signers = new Map<string, TrustedSigner>();
  /** How many signer certificates were checked against the CA (each once while it stays cached). */
  chainChecks = 0;
  readonly now: () => number;

  constructor(private readonly o: DownlinkVerifierOptions) {
    this.cas = pemBlocks(o.ca).filter((b) => b.label === "CERTIFICATE").map((b) => new X509Certificate(b.text));
    if (this.cas.length === 0) throw new SpaceliftError("downlink-no-ca", "the token holds no CA certificate to check downlink signatures with");
    this.now = o.now ?? Date.now;
  }

  /** The message of a signed envelope addressed to this worker, or a DownlinkSignatureError saying why not. */
  async open(value: unknown): Promise<OpenedDownlink> {
    if (typeof value !== "object" || value === null || Array.isArray(value)) return refuse("downlink-malformed", "the payload is not a JSON object");
    const rec = value as Record<string, unknown>;
    if (rec.sig === undefined && rec.alg === undefined) {
      return refuse("downlink-unsigned", `an unsigned${typeof rec.type === "string" ? ` ${rec.type.slice(0, 32)}` : ""} message (the mothership signs every message)`);
    }
    const parsed = v.safeParse(SignedDownlinkSchema, value);
    if (!parsed.success) {
      const issue = parsed.issues[0];
      return refuse("downlink-malformed", `signed envelope field ${v.getDotPath(issue) ?? "?"}: ${issue.message.slice(0, 120)}`);
    }
    const env = parsed.output;
    const now = this.now();
    const signer = await this.signer(env.signer, now);
    const { id, value: message } = messageId(env.message);
    const data = new TextEncoder().encode(canonical(env.aud, id, env.exp, env.message));
    const ok = await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, signer.key, Buffer.from(env.sig, "base64"), data).catch(() => false);
    if (!ok) refuse("downlink-bad-signature", "the signature does not verify with the signer certificate");
    if (env.aud.pool !== this.o.pool || env.aud.worker !== this.o.worker) {
      refuse("downlink-audience", `the message is addressed to worker ${env.aud.worker} of pool ${env.aud.pool}`);
    }
    const nowSeconds = now / 1000;
    if (env.exp + DOWNLINK_CLOCK_SKEW_SECONDS < nowSeconds) {
      refuse("downlink-expired", `the message expired ${Math.round(nowSeconds - env.exp)} s ago (at most ${DOWNLINK_CLOCK_SKEW_SECONDS} s of clock skew allowed); check this host's clock`);
    }
    if (env.exp - DOWNLINK_VALIDITY_SECONDS - DOWNLINK_CLOCK_SKEW_SECONDS > nowSeconds) {
      refuse("downlink-expired", `the message is valid until ${Math.round(env.exp - nowSeconds)} s from now, longer than a mothership signs for; check this host's clock`);
    }
    return { id, exp: env.exp, sig: env.sig, message };
  }

  /** The signer's key, from the cache or after checking the certificate against the token's CA. */
  private async signer(derBase64: string, now: number): Promise<TrustedSigner> {
    const der = Buffer.from(derBase64, "base64");
    const fingerprint = sha256Hex(der);
    let trusted = this.signers.get(fingerprint);
    if (!trusted) {
      trusted = await this.check(der);
      if (this.signers.size >= SIGNER_CACHE) this.signers.delete(this.signers.keys().next().value!);
      this.signers.set(fingerprint, trusted);
    }
    const skew = DOWNLINK_CLOCK_SKEW_SECONDS * 1000;
    if (now + skew < trusted.notBefore || now - skew > trusted.notAfter) refuse("downlink-signer-expired", "the signer certificate is not valid at this host's time");
    return trusted;
  }

  private async check(der: Buffer): Promise<TrustedSigner> {
    this.chainChecks++;
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(der);
    } catch (err) {
      return refuse("downlink-malformed", "the signer is not a certificate", err);
    }
    const issuer = this.cas.find((ca) => cert.checkIssued(ca) && safeVerify(cert, ca));
    if (!issuer) refuse("downlink-signer-untrusted", "the signer certificate is not issued by the CA in the token");
    if (cert.ca || !(cert.keyUsage ?? []).includes(DOWNLINK_SIGNER_EKU)) {
      refuse("downlink-signer-purpose", "the signer certificate is not a downlink signer (a pool or server certificate cannot sign downlink messages)");
    }
    const publicKey = cert.publicKey;
    if (publicKey.asymmetricKeyType !== "ec" || !["prime256v1", "P-256"].includes(publicKey.asymmetricKeyDetails?.namedCurve ?? "")) {
      refuse("downlink-signer-purpose", "the signer key is not EC P-256");
    }
    const spki = new Uint8Array(publicKey.export({ type: "spki", format: "der" }));
    const key = await crypto.subtle.importKey("spki", spki, { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
    return { key, notBefore: cert.validFromDate.getTime(), notAfter: cert.validToDate.getTime() };
  }
}

function safeVerify(cert: X509Certificate, ca: X509Certificate): boolean {
  try {
    return cert.verify(ca.publicKey);
  } catch {
    return false;
  }
}
