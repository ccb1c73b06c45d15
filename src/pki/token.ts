/**
 * The pool token (`SPACELIFT_TOKEN`): base64 of a JSON document the mothership prints when a pool is
 * created or reset. It carries everything a launcher needs besides its private key: the pool id, where
 * to connect and the pool's client certificate with the CA that anchors the broker and API.
 *
 * Errors are distinct per failure kind (codes below) and never contain any part of the token: field
 * problems name the field and what it must look like, not what it holds.
 */
import { X509Certificate } from "node:crypto";
import * as v from "valibot";
import { SpaceliftError } from "../errors.ts";
import { decodeBase64Strict, encodeBase64, pemBlocks, utf8Strict } from "./pem.ts";

const TOKEN_VERSION = 1;

export type TokenErrorCode =
  | "token-empty"
  | "token-not-base64"
  | "token-not-json"
  | "token-version-unsupported"
  | "token-field-invalid"
  | "token-certificate-invalid";

/** @testSeam */
export class TokenError extends SpaceliftError {
  declare readonly code: TokenErrorCode;

  constructor(code: TokenErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

const httpUrl = (what: string) =>
  v.pipe(v.string(what), v.check((s) => isUrl(s, ["http:", "https:"]), what));

/** Ids end up in MQTT topic levels: no `/`, `+`, `#`, nothing a topic would misread. */
const TOPIC_LEVEL = /^[A-Za-z0-9_-]{1,64}$/;

const PoolTokenSchema = v.object({
  version: v.literal(TOKEN_VERSION, `must be ${TOKEN_VERSION}`),
  pool: v.pipe(v.string("must be a string"), v.regex(TOPIC_LEVEL, "must be a pool id (letters, digits, _ or -)")),
  /** Absent for pools that talk HTTP long-poll only. */
  broker: v.optional(
    v.object(
      {
        endpoint: v.pipe(
          v.string("must be a string"),
          v.check((s) => isUrl(s, ["mqtts:"]) && new URL(s).port !== "", "must be mqtts://host:port"),
        ),
        namespace: v.pipe(
          v.string("must be a string"),
          v.regex(/^[A-Za-z0-9_-]+(?:\/[A-Za-z0-9_-]+)*$/, "must be an MQTT topic prefix such as spacelift"),
        ),
      },
      "must be an object {endpoint, namespace}",
    ),
  ),
  comms_url: httpUrl("must be an http(s) URL such as https://mothership.example.com:8443"),
  certificate: v.pipe(v.string("must be a PEM string"), v.includes("-----BEGIN CERTIFICATE-----", "must be a PEM certificate")),
  ca: v.pipe(v.string("must be a PEM string"), v.includes("-----BEGIN CERTIFICATE-----", "must hold PEM certificates")),
});

export type PoolToken = v.InferOutput<typeof PoolTokenSchema>;

const GOOD = "give the token exactly as `mothership pool create` printed it";

/** Decode and validate a token. Throws TokenError with one code per failure kind. */
export function decodeToken(value: string): PoolToken {
  const trimmed = value.trim();
  if (trimmed === "") throw new TokenError("token-empty", `token is empty; ${GOOD}`);
  const bytes = decodeBase64Strict(trimmed);
  if (bytes === undefined) {
    const hint = trimmed.startsWith("{") ? " (it looks like raw JSON: give base64 of it)" : "";
    throw new TokenError("token-not-base64", `token is not base64${hint}; ${GOOD}`);
  }
  const text = utf8Strict(bytes);
  let json: unknown;
  try {
    if (text === undefined) throw new Error("not UTF-8");
    json = JSON.parse(text);
  } catch (err) {
    throw new TokenError("token-not-json", `token decodes from base64 but is not JSON; ${GOOD}`, { cause: err });
  }
  return validateToken(json);
}

/** Check a token object: version first (a future version may change every other field), then fields, then PEMs. @testSeam */
export function validateToken(json: unknown): PoolToken {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new TokenError("token-field-invalid", `token JSON is not an object; ${GOOD}`);
  }
  const version = (json as Record<string, unknown>)["version"];
  if (version !== undefined && version !== TOKEN_VERSION) {
    // The version is shown only when it is a small number: never echo arbitrary token content.
    const shown = typeof version === "number" && Number.isInteger(version) && Math.abs(version) < 1000 ? ` ${version}` : "";
    throw new TokenError(
      "token-version-unsupported",
      `token version${shown} is not supported (this launcher understands version ${TOKEN_VERSION}); use a launcher released with your mothership`,
    );
  }
  const parsed = v.safeParse(PoolTokenSchema, json);
  if (!parsed.success) {
    const fields = parsed.issues.map((issue) => {
      const field = v.getDotPath(issue) ?? "?";
      return issue.input === undefined && issue.kind === "schema" ? `${field} is missing` : `${field} ${issue.message}`;
    });
    throw new TokenError("token-field-invalid", `token field ${fields.join(", ")}; ${GOOD}`);
  }
  const token = parsed.output;
  try {
    new X509Certificate(token.certificate);
  } catch (err) {
    throw new TokenError("token-certificate-invalid", `token field certificate is not a parsable PEM certificate; ${GOOD}`, { cause: err });
  }
  const caBlocks = pemBlocks(token.ca).filter((b) => b.label === "CERTIFICATE");
  try {
    if (caBlocks.length === 0) throw new Error("no CERTIFICATE block");
    for (const block of caBlocks) new X509Certificate(block.text);
  } catch (err) {
    throw new TokenError("token-certificate-invalid", `token field ca is not a parsable PEM certificate bundle; ${GOOD}`, { cause: err });
  }
  return token;
}

/** The mothership's side: validate and encode a token (standard base64 of compact JSON, one line). */
export function encodeToken(token: PoolToken): string {
  const checked = validateToken(token);
  const ordered: PoolToken = {
    version: checked.version,
    pool: checked.pool,
    ...(checked.broker ? { broker: { endpoint: checked.broker.endpoint, namespace: checked.broker.namespace } } : {}),
    comms_url: checked.comms_url,
    certificate: checked.certificate,
    ca: checked.ca,
  };
  return encodeBase64(JSON.stringify(ordered));
}

function isUrl(s: string, protocols: readonly string[]): boolean {
  try {
    const url = new URL(s);
    return protocols.includes(url.protocol) && url.hostname !== "";
  } catch {
    return false;
  }
}
