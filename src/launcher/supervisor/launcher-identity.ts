/**
 * The launcher's identity: a ULID in `<scratch>/launcher-id` (0600), made on the first start on a
 * scratch dir and read on every later one. Unlike the worker id (new at most starts, agent/worker-id.ts)
 * it stays across restarts, so it is what labels a run container as this launcher's: at start the
 * orphan cleanup removes exactly the containers carrying it, and never those of another launcher
 * sharing the Docker daemon (each launcher has its own scratch dir, see agent/scratch-lock.ts).
 */
import { closeSync, linkSync, mkdirSync, openSync, readSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { SpaceliftError, errorMessage } from "../../errors.ts";
import { ULID_PATTERN, ulid } from "../../protocol/ulid.ts";

/** @testSeam */
export const LAUNCHER_ID_FILE = "launcher-id";
/** A ULID and a line break; anything longer is not a file we wrote. */
const MAX_FILE_BYTES = 64;

/** Reads the identity of `scratchDir`, making it first when there is none. */
export function launcherIdentity(scratchDir: string): string {
  const path = join(scratchDir, LAUNCHER_ID_FILE);
  const existing = readIdentity(path);
  if (existing !== undefined) return existing;
  try {
    mkdirSync(scratchDir, { recursive: true, mode: 0o755 });
    // Written whole under a temporary name, then linked into place: a crash leaves no half-written
    // identity, and of two starts racing the first link wins and the other reads it.
    const temp = `${path}.${process.pid}.tmp`;
    const fd = openSync(temp, "w", 0o600);
    try {
      writeSync(fd, `${ulid()}\n`);
    } finally {
      closeSync(fd);
    }
    try {
      linkSync(temp, path);
    } catch (error) {
      if ((error as { code?: unknown }).code !== "EEXIST") throw error;
    } finally {
      rmSync(temp, { force: true });
    }
  } catch (cause) {
    throw new SpaceliftError("launcher-identity", `cannot make the launcher identity ${path}: ${errorMessage(cause)}`, { cause });
  }
  const made = readIdentity(path);
  if (made === undefined) throw new SpaceliftError("launcher-identity", `the launcher identity ${path} vanished as it was made; start the launcher again`);
  return made;
}

/** The identity in `path`, undefined when there is no file; a file that holds something else is an error. */
function readIdentity(path: string): string | undefined {
  let text: string;
  try {
    const fd = openSync(path, "r");
    try {
      const buffer = Buffer.alloc(MAX_FILE_BYTES + 1);
      text = buffer.toString("utf8", 0, readAll(fd, buffer));
    } finally {
      closeSync(fd);
    }
  } catch (error) {
    if ((error as { code?: unknown }).code === "ENOENT") return undefined;
    throw new SpaceliftError("launcher-identity", `cannot read the launcher identity ${path}: ${errorMessage(error)}`, { cause: error });
  }
  const id = text.trim();
  if (text.length > MAX_FILE_BYTES || !ULID_PATTERN.test(id)) {
    throw new SpaceliftError(
      "launcher-identity",
      `${path} does not hold a launcher identity (one ULID); remove the file to make a new one — the containers labelled with the old identity are then left to remove by hand (docker ps --filter label=io.spacelift.managed=true)`,
    );
  }
  return id;
}

function readAll(fd: number, buffer: Buffer): number {
  let length = 0;
  for (;;) {
    const n = readSync(fd, buffer, length, buffer.length - length, null);
    length += n;
    if (n === 0 || length >= buffer.length) return length;
  }
}
