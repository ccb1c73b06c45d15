/**
 * The HTTP long-poll transport (src/protocol/README.md, `SPACELIFT_WORKER_COMMS_PROTOCOL=poll`): the same messages
 * as over MQTT, carried by two endpoints of the mothership's API, and the request signature that
 * authenticates a launcher without a client certificate (so TLS may end at a load balancer).
 *
 *   POST <comms_url>/api/v1/comms/uplink                 {messages: [message, ...]} -> {accepted}
 *   GET  <comms_url>/api/v1/comms/downlink?after=N&wait=S -> {messages: [{cursor, message}], cursor}
 *
 * Every request carries five headers. The signature is over a canonical string of the request —
 * `spacelift-poll-v2`, method, path with query, timestamp, nonce, pool, worker and the SHA-256 (hex)
 * of the body, one per line — made with the pool private key: RSASSA-PKCS1-v1_5 with SHA-256 for RSA
 * keys, ECDSA with SHA-256 (P-256) or SHA-384 (P-384) for EC keys, the signature base64 (ECDSA as r||s).
 * The nonce (16 random bytes, base64url) makes every request unique, so the mothership can refuse one
 * that is sent again within the clock window. The headers are checked on their own first
 * (`readSignedHeaders`), so a request is refused before its body is read; the signature, which covers
 * the body, is checked after. WebCrypto only; nothing here does I/O.
 */
import { randomBytes, X509Certificate, type KeyObject } from "node:crypto";
import * as v from "valibot";
import { SpaceliftError } from "../errors.ts";

export const POLL_PREFIX = "/api/v1/comms/";
export const POLL_UPLINK_PATH = "/api/v1/comms/uplink";
export const POLL_DOWNLINK_PATH = "/api/v1/comms/downlink";

const HEADER_POOL = "x-spacelift-pool";
const HEADER_WORKER = "x-spacelift-worker";
/** @testSeam */
export const HEADER_TIMESTAMP = "x-spacelift-timestamp";
/** @testSeam */
export const HEADER_SIGNATURE = "x-spacelift-signature";
/** @testSeam */
export const HEADER_NONCE = "x-spacelift-nonce";

/** The first line of the signed string; a new version of it is a new tag. */
const SIGNATURE_TAG = "spacelift-poll-v2";
/** 16 to 96 random bytes in base64url without padding. */
const NONCE = /^[A-Za-z0-9_-]{22,128}$/;
/** Ids of pools and workers are short; a header longer than this is not one of ours. */
const MAX_ID_LENGTH = 128;

/** A signed request is accepted this many seconds either side of the mothership's clock. */
export const MAX_CLOCK_SKEW_SECONDS = 300;
/** The longest a downlink poll waits for a message before it answers empty. */
export const MAX_POLL_WAIT_SECONDS = 25;
/** The most uplink messages one POST may carry, and downlink messages one poll answer holds. */
export const MAX_BATCH = 100;

// ---- bodies ----

export const UplinkBatchSchema = v.object({
  /** Each item is one protocol message; they are validated one by one, as MQTT payloads are. */
  messages: v.pipe(v.array(v.unknown()), v.maxLength(MAX_BATCH)),
});

const Cursor = v.pipe(v.number(), v.integer(), v.minValue(0));

export const DownlinkAnswerSchema = v.object({
  /** Oldest first; each stays in the mailbox until a poll with `after` >= its cursor. */
  messages: v.array(v.object({ cursor: Cursor, message: v.unknown() })),
  /** What to send as `after` next: every message up to it has been handed over. */
  cursor: Cursor,
});
export type DownlinkAnswer = v.InferOutput<typeof DownlinkAnswerSchema>;

// ---- signature ----

export type PollSignatureErrorCode = "poll-signature-missing" | "poll-signature-invalid" | "poll-timestamp-stale" | "poll-key-unsupported" | "poll-replayed";

export class PollSignatureError extends SpaceliftError {
  declare readonly code: PollSignatureErrorCode;

  constructor(code: PollSignatureErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

export type SigningAlgorithm =
  | { name: "RSASSA-PKCS1-v1_5"; hash: "SHA-256" }
  | { name: "ECDSA"; namedCurve: "P-256" | "P-384"; hash: "SHA-256" | "SHA-384" };

export interface SigningKey {
  key: CryptoKey;
  algorithm: SigningAlgorithm;
}

export interface SignedRequest {
  method: string;
  /** Path and query exactly as sent, e.g. `/api/v1/comms/downlink?after=3&wait=25`. */
  pathWithQuery: string;
  pool: string;
  worker: string;
  body: Uint8Array;
}

const enc = new TextEncoder();

/** Node names of the curves (X509Certificate/KeyObject) to the WebCrypto algorithm. */
function algorithmFor(key: KeyObject): SigningAlgorithm {
  if (key.asymmetricKeyType === "rsa") return { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
  if (key.asymmetricKeyType === "ec") {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === "prime256v1" || curve === "P-256") return { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
    if (curve === "secp384r1" || curve === "P-384") return { name: "ECDSA", namedCurve: "P-384", hash: "SHA-384" };
  }
  throw new PollSignatureError("poll-key-unsupported", `pool keys of type ${String(key.asymmetricKeyType)} cannot sign poll requests (RSA, EC P-256 or P-384)`);
}

function importParams(a: SigningAlgorithm): { name: string; hash?: string; namedCurve?: string } {
  return a.name === "ECDSA" ? { name: "ECDSA", namedCurve: a.namedCurve } : { name: a.name, hash: a.hash };
}

function signParams(a: SigningAlgorithm): { name: string; hash?: string } {
  return a.name === "ECDSA" ? { name: "ECDSA", hash: a.hash } : { name: a.name };
}

/** The pool private key (the launcher's), imported for signing. */
export async function importSigningKey(privateKey: KeyObject): Promise<SigningKey> {
  const algorithm = algorithmFor(privateKey);
  const der = new Uint8Array(privateKey.export({ type: "pkcs8", format: "der" }));
  const key = await crypto.subtle.importKey("pkcs8", der, importParams(algorithm), false, ["sign"]);
  return { key, algorithm };
}

/** The public key of a pool certificate (the mothership's side), imported for verification. */
export async function importVerifyKey(certificatePem: string): Promise<SigningKey> {
  const publicKey = new X509Certificate(certificatePem).publicKey;
  const algorithm = algorithmFor(publicKey);
  const der = new Uint8Array(publicKey.export({ type: "spki", format: "der" }));
  const key = await crypto.subtle.importKey("spki", der, importParams(algorithm), false, ["verify"]);
  return { key, algorithm };
}

async function sha256Hex(body: Uint8Array): Promise<string> {
  return Buffer.from(await crypto.subtle.digest("SHA-256", new Uint8Array(body))).toString("hex");
}

/** The string that is signed; every part is on its own line, so no part can spill into another. */
async function canonicalRequest(r: SignedRequest, timestamp: string, nonce: string): Promise<string> {
  for (const [what, value] of [["method", r.method], ["path", r.pathWithQuery], ["pool", r.pool], ["worker", r.worker], ["nonce", nonce]] as const) {
    if (/[\r\n]/.test(value)) throw new PollSignatureError("poll-signature-invalid", `the ${what} of a signed request cannot hold a line break`);
  }
  return [SIGNATURE_TAG, r.method.toUpperCase(), r.pathWithQuery, timestamp, nonce, r.pool, r.worker, await sha256Hex(r.body)].join("\n");
}

/** A fresh request nonce: 16 random bytes, base64url. */
function newNonce(): string {
  return randomBytes(16).toString("base64url");
}

/** The five headers of a signed request, the timestamp being `now` in whole Unix seconds. */
export async function signRequest(key: SigningKey, r: SignedRequest, now: Date = new Date(), nonce: string = newNonce()): Promise<Record<string, string>> {
  const timestamp = String(Math.floor(now.getTime() / 1000));
  const data = enc.encode(await canonicalRequest(r, timestamp, nonce));
  const signature = await crypto.subtle.sign(signParams(key.algorithm), key.key, data);
  return {
    [HEADER_POOL]: r.pool,
    [HEADER_WORKER]: r.worker,
    [HEADER_TIMESTAMP]: timestamp,
    [HEADER_NONCE]: nonce,
    [HEADER_SIGNATURE]: Buffer.from(signature).toString("base64"),
  };
}

/** What the headers of a request claim, each checked for its form, the timestamp within the window. */
export interface SignedHeaders {
  pool: string;
  worker: string;
  timestamp: string;
  /** Unix seconds. */
  seconds: number;
  nonce: string;
  signature: string;
}

/** Who a request claims to come from (before verification: only use it to pick the key). */
function requestIdentity(headers: Headers): { pool: string; worker: string } {
  const pool = headers.get(HEADER_POOL) ?? "";
  const worker = headers.get(HEADER_WORKER) ?? "";
  const all = [HEADER_POOL, HEADER_WORKER, HEADER_TIMESTAMP, HEADER_NONCE, HEADER_SIGNATURE];
  if (all.some((h) => !headers.get(h))) throw new PollSignatureError("poll-signature-missing", `a comms request needs the headers ${all.join(", ")}`);
  if (pool.length > MAX_ID_LENGTH || worker.length > MAX_ID_LENGTH) throw new PollSignatureError("poll-signature-invalid", `${HEADER_POOL} and ${HEADER_WORKER} hold ids of at most ${MAX_ID_LENGTH} characters`);
  return { pool, worker };
}

/**
 * Checks everything the headers alone can tell, before any of the body is read: all five are there,
 * in their form, and the timestamp is within MAX_CLOCK_SKEW_SECONDS of `now`. Throws a PollSignatureError.
 */
export function readSignedHeaders(headers: Headers, now: Date = new Date()): SignedHeaders {
  const { pool, worker } = requestIdentity(headers);
  const timestamp = headers.get(HEADER_TIMESTAMP) ?? "";
  if (!/^\d{1,12}$/.test(timestamp)) throw new PollSignatureError("poll-signature-invalid", `${HEADER_TIMESTAMP} must be Unix seconds`);
  const skew = Math.abs(now.getTime() / 1000 - Number(timestamp));
  if (skew > MAX_CLOCK_SKEW_SECONDS) {
    throw new PollSignatureError("poll-timestamp-stale", `the request timestamp is ${Math.round(skew)} s away from the mothership's clock (at most ${MAX_CLOCK_SKEW_SECONDS} s); check the launcher host's clock`);
  }
  const nonce = headers.get(HEADER_NONCE) ?? "";
  if (!NONCE.test(nonce)) throw new PollSignatureError("poll-signature-invalid", `${HEADER_NONCE} must be 16 or more random bytes in base64url`);
  const signature = headers.get(HEADER_SIGNATURE) ?? "";
  if (signature.length > 2048 || !/^[A-Za-z0-9+/]+={0,2}$/.test(signature)) throw new PollSignatureError("poll-signature-invalid", `${HEADER_SIGNATURE} is not base64`);
  return { pool, worker, timestamp, seconds: Number(timestamp), nonce, signature };
}

/** Throws a PollSignatureError unless `signed` (from readSignedHeaders) signs exactly this request with `key`. */
export async function verifySignature(key: SigningKey, r: SignedRequest, signed: SignedHeaders): Promise<void> {
  if (signed.pool !== r.pool || signed.worker !== r.worker) throw new PollSignatureError("poll-signature-invalid", "the request is signed for another pool or worker");
  const data = enc.encode(await canonicalRequest(r, signed.timestamp, signed.nonce));
  let ok = false;
  try {
    ok = await crypto.subtle.verify(signParams(key.algorithm), key.key, Buffer.from(signed.signature, "base64"), data);
  } catch (err) {
    throw new PollSignatureError("poll-signature-invalid", "the request signature cannot be checked", { cause: err });
  }
  if (!ok) throw new PollSignatureError("poll-signature-invalid", "the request signature does not verify with the pool's current certificate");
}

/**
 * Throws a PollSignatureError unless `headers` sign exactly this request with `key` within the clock
 * window. `r.pool`/`r.worker` are what the caller expects (normally read from the same headers).
 * It cannot tell a replay: the mothership keeps the nonces it has seen for that.
 * @testSeam
 */
export async function verifyRequest(key: SigningKey, r: SignedRequest, headers: Headers, now: Date = new Date()): Promise<SignedHeaders> {
  const signed = readSignedHeaders(headers, now);
  await verifySignature(key, r, signed);
  return signed;
}
