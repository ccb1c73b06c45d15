/**
 * The data dir is private to the user the mothership runs as: it holds the CA key, the admin token,
 * the key that encrypts stack secrets and the database. `prepareDataDir` runs at `serve` start before
 * anything in it is opened: it makes the dir (0700) or checks an existing one is ours, and makes every
 * dir in it 0700 and every file 0600, logging what it had to fix. A secret file that group or others
 * could read is fixed with a warning, because whoever could read it may have a copy.
 *
 * New files are made 0600 where they are written (and `mothership serve` runs with umask 077), so this
 * sweep only finds something on a data dir made by an older version or by hand.
 */
import { chmod, lstat, mkdir, open, readdir, stat } from "node:fs/promises";
import { join, relative } from "node:path";
import { errorMessage, SpaceliftError } from "../errors.ts";
import type { Logger } from "../log/logger.ts";

const DIR_MODE = 0o700;
export const FILE_MODE = 0o600;

/** Files whose contents let someone act as the mothership or read stack secrets (relative to the data dir). */
const SECRET_FILES: readonly string[] = ["ca/ca.key", "admin-token", "secrets.key", "secrets.key.new", "downlink/signer.key", "broker-client/mothership.key"];

const octal = (mode: number): string => "0" + (mode & 0o777).toString(8);

function isMissing(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === "ENOENT";
}

function refuse(message: string, cause?: unknown): SpaceliftError {
  return new SpaceliftError("data-dir-unsafe", message, cause === undefined ? undefined : { cause });
}

/** Creates `dir` (0700) or checks that an existing one is a directory owned by this user and makes it 0700. */
async function ownDir(dir: string, log: Logger): Promise<void> {
  const uid = process.getuid?.() ?? -1;
  let st;
  try {
    st = await stat(dir);
  } catch (err) {
    if (!isMissing(err)) throw refuse(`cannot use the data dir ${dir}: ${errorMessage(err)}`, err);
    await mkdir(dir, { recursive: true, mode: DIR_MODE });
    await chmod(dir, DIR_MODE);
    return;
  }
  if (!st.isDirectory()) throw refuse(`the data dir ${dir} is not a directory; give --data a directory (it is made if missing)`);
  if (uid !== -1 && st.uid !== uid) {
    throw refuse(
      `the data dir ${dir} is owned by uid ${st.uid}, not by this user (uid ${uid}); it holds the CA key, the admin token and the secrets key, ` +
        `so the mothership uses only a dir of its own: run it as uid ${st.uid}, or \`chown -R ${uid} ${dir}\` if this user should own it`,
    );
  }
  if ((st.mode & 0o077) !== 0) {
    await chmod(dir, DIR_MODE);
    log.info("data dir was open to group/others; made it private", { dir, was: octal(st.mode), now: octal(DIR_MODE) });
  }
}

/** Every dir below `root` to 0700 and every file to 0600; symbolic links are left alone (and reported). */
async function tighten(root: string, dir: string, log: Logger, fixed: string[]): Promise<void> {
  for (const name of await readdir(dir)) {
    const path = join(dir, name);
    const rel = relative(root, path);
    const st = await lstat(path);
    if (st.isSymbolicLink()) {
      log.warn("data dir holds a symbolic link; its target's mode is not checked", { path });
      continue;
    }
    const want = st.isDirectory() ? DIR_MODE : FILE_MODE;
    if ((st.mode & 0o077) !== 0) {
      try {
        await chmod(path, want);
      } catch (err) {
        throw refuse(`${path} is open to group/others (${octal(st.mode)}) and cannot be made ${octal(want)}: ${errorMessage(err)}`, err);
      }
      if (SECRET_FILES.includes(rel)) {
        log.warn("secret file was readable by group/others; made it 0600 (anyone who could read it may have a copy: rotate it)", { path, was: octal(st.mode) });
      } else fixed.push(`${rel} (was ${octal(st.mode)})`);
    }
    if (st.isDirectory()) await tighten(root, path, log, fixed);
  }
}

/** Makes the data dir private before the mothership opens anything in it. */
export async function prepareDataDir(dir: string, log: Logger): Promise<void> {
  await ownDir(dir, log);
  const fixed: string[] = [];
  await tighten(dir, dir, log, fixed);
  if (fixed.length > 0) log.info("data dir files were open to group/others; made them private (dirs 0700, files 0600)", { dir, fixed });
}

/**
 * Makes `path` an empty 0600 file if it does not exist. SQLite gives its -wal and -shm files the
 * database file's mode, so creating the database this way keeps all three private.
 */
export async function touchPrivate(path: string): Promise<void> {
  const f = await open(path, "a", FILE_MODE);
  await f.close();
}
