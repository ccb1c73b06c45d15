/**
 * Stack secret values are kept encrypted at rest: AES-256-GCM under a key of the data dir, with the
 * stack id and variable name as additional data, so a sealed value copied onto another stack or
 * variable does not open. A sealed value is `v1:<key id>:<iv>:<ciphertext+tag>` (base64url).
 *
 * The keys live in `<data>/secrets.key` (0600), one `<key id>:<base64url key>` per line, the first
 * line being the key new values are sealed with; values name their key, so a keyring with old keys
 * still opens everything sealed under them. `mothership secrets rotate-key` puts a new key first,
 * re-seals every value and only then drops the old keys: a crash in between loses nothing.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { open, readFile, rename } from "node:fs/promises";
import { join } from "node:path";
import { SpaceliftError } from "../errors.ts";

const SECRETS_KEY_FILE = "secrets.key";
const VERSION = "v1";
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;

export interface SecretKey {
  id: string;
  key: Buffer;
}

/** What is bound to a sealed value: it opens only for this stack and variable. */
const context = (stackId: string, name: string): Buffer => Buffer.from(`spacelift-stack-secret\0${stackId}\0${name}`, "utf8");

export const newSecretKey = (): SecretKey => ({ id: randomBytes(6).toString("hex"), key: randomBytes(KEY_BYTES) });

export const secretsKeyPath = (dataDir: string): string => join(dataDir, SECRETS_KEY_FILE);

/** True for a value written by `seal` (any key, this format version). */
export const isSealed = (value: string): boolean => value.startsWith(`${VERSION}:`);

/** The key id a sealed value names, or null when it is not a sealed value. */
export function sealedKeyId(value: string): string | null {
  const parts = value.split(":");
  return parts.length === 4 && parts[0] === VERSION ? (parts[1] ?? null) : null;
}

export class SecretBox {
  private readonly byId: Map<string, Buffer>;

  /** `keys[0]` seals; every key opens what names it. */
  constructor(readonly keys: readonly SecretKey[]) {
    if (keys.length === 0) throw new SpaceliftError("secrets-key-invalid", "the secrets keyring is empty");
    this.byId = new Map(keys.map((k) => [k.id, k.key]));
  }

  get currentKeyId(): string {
    return this.keys[0]!.id;
  }

  hasKey(id: string): boolean {
    return this.byId.has(id);
  }

  seal(plaintext: string, stackId: string, name: string): string {
    const { id, key } = this.keys[0]!;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv("aes-256-gcm", key, iv);
    cipher.setAAD(context(stackId, name));
    const ct = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final(), cipher.getAuthTag()]);
    return [VERSION, id, iv.toString("base64url"), ct.toString("base64url")].join(":");
  }

  /** The plaintext; throws `secret-unreadable` naming the variable (never the value) when it does not open. */
  open(sealed: string, stackId: string, name: string): string {
    const [version, id, ivText, ctText] = sealed.split(":");
    const what = `secret ${name} of stack ${stackId}`;
    if (version !== VERSION || !id || ivText === undefined || ctText === undefined) {
      throw new SpaceliftError("secret-unreadable", `${what} is not a sealed value of format ${VERSION}`);
    }
    const key = this.byId.get(id);
    if (!key) {
      throw new SpaceliftError("secret-unreadable", `${what} is sealed with key ${id}, which is not in ${SECRETS_KEY_FILE} (a data dir restored without its secrets.key?); create the stack again`);
    }
    const iv = Buffer.from(ivText, "base64url");
    const ct = Buffer.from(ctText, "base64url");
    if (iv.length !== IV_BYTES || ct.length < TAG_BYTES) throw new SpaceliftError("secret-unreadable", `${what} is damaged`);
    try {
      const decipher = createDecipheriv("aes-256-gcm", key, iv);
      decipher.setAAD(context(stackId, name));
      decipher.setAuthTag(ct.subarray(ct.length - TAG_BYTES));
      return Buffer.concat([decipher.update(ct.subarray(0, ct.length - TAG_BYTES)), decipher.final()]).toString("utf8");
    } catch (err) {
      throw new SpaceliftError("secret-unreadable", `${what} does not decrypt with key ${id} (damaged, or not sealed for this stack and name)`, { cause: err });
    }
  }
}

function parseKeyring(text: string, path: string): SecretKey[] {
  const keys: SecretKey[] = [];
  for (const [i, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([0-9a-f]{12}):([A-Za-z0-9_-]+)$/.exec(line);
    const key = m ? Buffer.from(m[2] ?? "", "base64url") : null;
    if (!m || key?.length !== KEY_BYTES) {
      throw new SpaceliftError("secrets-key-invalid", `${path} line ${i + 1} is not <12 hex key id>:<base64url of ${KEY_BYTES} bytes>`);
    }
    keys.push({ id: m[1] ?? "", key });
  }
  if (keys.length === 0) throw new SpaceliftError("secrets-key-invalid", `${path} holds no key`);
  return keys;
}

/** The keyring in `<data>/secrets.key`, or null when there is none yet. */
export async function readKeyring(dataDir: string): Promise<SecretKey[] | null> {
  const path = secretsKeyPath(dataDir);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as { code?: unknown } | null)?.code === "ENOENT") return null;
    throw new SpaceliftError("secrets-key-invalid", `cannot read ${path}`, { cause: err });
  }
  return parseKeyring(text, path);
}

/**
 * Replaces the keyring as one step: written 0600 to a temp file, flushed, renamed over the old one,
 * so a crash leaves either the old or the new keyring, never half of one.
 */
export async function writeKeyring(dataDir: string, keys: readonly SecretKey[]): Promise<void> {
  const path = secretsKeyPath(dataDir);
  const tmp = `${path}.new`;
  const f = await open(tmp, "w", 0o600);
  try {
    await f.chmod(0o600);
    await f.writeFile(keys.map((k) => `${k.id}:${k.key.toString("base64url")}`).join("\n") + "\n");
    await f.sync();
  } finally {
    await f.close();
  }
  await rename(tmp, path);
  const dir = await open(dataDir, "r");
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/** The data dir's secret box; its first key is made on first start. */
export async function loadOrCreateSecretBox(dataDir: string): Promise<{ box: SecretBox; created: boolean }> {
  const existing = await readKeyring(dataDir);
  if (existing) return { box: new SecretBox(existing), created: false };
  const keys = [newSecretKey()];
  await writeKeyring(dataDir, keys);
  return { box: new SecretBox(keys), created: true };
}
