/**
 * Variables that name a file instead of holding a value: the pool token and key
 * (`SPACELIFT_TOKEN_FILE`, `SPACELIFT_POOL_PRIVATE_KEY_FILE`, for systemd credentials and Kubernetes
 * secret volumes, so the secrets stay out of the environment) and the extra CA bundle. Read once, at
 * load, bounded; a problem says why the file cannot be used (missing, a directory, not readable by
 * this user, too large) and never shows its content.
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { resolve } from "node:path";
import { certificatesFromPem, MAX_CA_BUNDLE_BYTES } from "../pki/trust.ts";
import { fail, ok, quote, type ParseResult } from "./parse-result.ts";

/** A token or key file is a few KiB; a larger one is not what the variable should name. */
const MAX_CREDENTIAL_BYTES = 1024 * 1024;

/** The whole file as text, at most `max` bytes. `good` shows a value that would work. */
function readBoundedFile(text: string, max: number, good: string): ParseResult<string> {
  const path = resolve(text);
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (err) {
    return fail(`${quote(text)} ${openProblem(err)}`, good);
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) return fail(`${quote(text)} is not a regular file`, good);
    if (stat.size > max) return fail(`${quote(text)} is ${stat.size} bytes, more than the ${max} this file may hold`, good);
    const buffer = Buffer.alloc(stat.size);
    let read = 0;
    while (read < stat.size) {
      const n = readSync(fd, buffer, read, stat.size - read, read);
      if (n === 0) break;
      read += n;
    }
    return ok(buffer.subarray(0, read).toString("utf8"));
  } catch (err) {
    return fail(`${quote(text)} ${openProblem(err)}`, good);
  } finally {
    closeSync(fd);
  }
}

function openProblem(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === "ENOENT" || code === "ENOTDIR") return "does not exist";
  if (code === "EACCES" || code === "EPERM") return `is not readable by this user (uid ${process.getuid?.() ?? "?"})`;
  if (code === "EISDIR") return "is a directory, not a file";
  return `cannot be read (${code ?? "unknown error"})`;
}

/** A credential file's content, surrounding whitespace (the usual trailing newline) removed. */
export function readCredentialFile(text: string, good: string): ParseResult<string> {
  const content = readBoundedFile(text, MAX_CREDENTIAL_BYTES, good);
  if (!content.ok) return content;
  const trimmed = content.value.trim();
  return trimmed === "" ? fail(`${quote(text)} is empty`, good) : ok(trimmed);
}

/** A PEM bundle of extra CA certificates. */
export function readCaBundle(text: string): ParseResult<{ path: string; pems: string[] }> {
  const good = "give a PEM file of CA certificates, e.g. /etc/ssl/certs/corporate-root.pem";
  const content = readBoundedFile(text, MAX_CA_BUNDLE_BYTES, good);
  if (!content.ok) return content;
  const certs = certificatesFromPem(content.value, quote(text));
  return certs.ok ? ok({ path: resolve(text), pems: certs.pems }) : { ok: false, problems: [certs.problem] };
}
