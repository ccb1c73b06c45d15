/**
 * The runner image's non-root USER, resolved inside the image as Docker (runc) resolves it: the user
 * part by name or uid in the image's /etc/passwd (a uid missing there is used as it is, with group 0
 * and home `/`; a name missing there is an error), the group part by name or gid in /etc/group. The
 * worker stays root — it alone read the root-only instructions, and a command cannot signal or trace
 * it — and starts git and every command with this uid and gid (supplementary groups are cleared).
 */
import { chownSync, openSync, readSync, closeSync } from "node:fs";
import { SpaceliftError, errorMessage } from "../errors.ts";

export interface RunAsAccount {
  uid: number;
  gid: number;
  /** The passwd name, when the image has an entry for the uid. */
  name: string | undefined;
  home: string;
}

/** The image's account databases, as text (empty when the file is missing). */
export interface AccountFiles {
  passwd: string;
  group: string;
}

/** /etc/passwd and /etc/group are read up to this size: enough for any real image, bounded for a hostile one. */
const ACCOUNT_FILE_LIMIT = 4 * 1024 * 1024;
const MAX_ID = 2 ** 31 - 1;

/** Resolves Docker's USER value (`user`, `uid`, `user:group`, `uid:gid`, ...) against the image's files. */
export function resolveRunAs(spec: string, files: AccountFiles): RunAsAccount {
  const [userPart, groupPart] = spec.split(":") as [string, string | undefined];
  const users = entries(files.passwd, 7);
  const numericUser = numericId(userPart);
  const entry = users.find((e) => e[0] === userPart) ?? (numericUser !== undefined ? users.find((e) => numericId(e[2]!) === numericUser) : undefined);
  let account: RunAsAccount;
  if (entry !== undefined) {
    const uid = numericId(entry[2]!);
    const gid = numericId(entry[3]!);
    if (uid === undefined || gid === undefined) {
      throw new SpaceliftError("run-as-invalid", `the runner image's /etc/passwd entry of ${JSON.stringify(userPart)} has no valid uid and gid`);
    }
    account = { uid, gid, name: entry[0], home: entry[5] !== "" ? entry[5]! : "/" };
  } else if (numericUser !== undefined) {
    account = { uid: numericUser, gid: 0, name: undefined, home: "/" };
  } else {
    throw new SpaceliftError(
      "run-as-unknown-user",
      `the runner image's USER ${JSON.stringify(userPart)} is not in the image's /etc/passwd; add the user to the image or give USER as a number`,
    );
  }
  if (groupPart === undefined) return account;
  const named = entries(files.group, 3).find((e) => e[0] === groupPart);
  const gid = named !== undefined ? numericId(named[2]!) : numericId(groupPart);
  if (gid === undefined) {
    throw new SpaceliftError(
      "run-as-unknown-group",
      `the runner image's USER group ${JSON.stringify(groupPart)} is not in the image's /etc/group; add the group to the image or give it as a number`,
    );
  }
  return { ...account, gid };
}

/** Reads the account files of the running container's root file system (the image's). */
export function readAccountFiles(root = "/"): AccountFiles {
  return { passwd: readBounded(`${root}etc/passwd`), group: readBounded(`${root}etc/group`) };
}

/**
 * Hands the (still empty) workspace to the run's user, so git and the commands can write to it.
 * The instructions file is gone by then. A failure fails the run: commands that cannot write their
 * workspace would fail later, and less clearly.
 */
export function giveWorkspace(workspace: string, account: RunAsAccount): void {
  try {
    chownSync(workspace, account.uid, account.gid);
  } catch (cause) {
    throw new SpaceliftError(
      "run-as-workspace",
      `cannot give the workspace ${workspace} to the image's user ${account.uid}:${account.gid}: ${errorMessage(cause)}`,
      { cause },
    );
  }
}

/** HOME (unless the image sets its own) and USER for the commands of `account`. */
export function accountEnv(account: RunAsAccount, imageHome: boolean): Record<string, string> {
  return { ...(imageHome ? {} : { HOME: account.home }), ...(account.name !== undefined ? { USER: account.name } : {}) };
}

/** Lines of a colon-separated database, split into at least `fields` fields; comments and short lines skipped. */
function entries(text: string, fields: number): string[][] {
  const out: string[][] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const parts = line.split(":");
    if (parts.length >= fields) out.push(parts);
  }
  return out;
}

function numericId(text: string): number | undefined {
  if (!/^[0-9]{1,10}$/.test(text)) return undefined;
  const n = Number(text);
  return n <= MAX_ID ? n : undefined;
}

function readBounded(path: string): string {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch {
    return "";
  }
  try {
    const buffer = Buffer.alloc(ACCOUNT_FILE_LIMIT);
    let length = 0;
    for (;;) {
      const n = readSync(fd, buffer, length, buffer.length - length, null);
      if (n === 0 || length + n >= buffer.length) return buffer.toString("utf8", 0, length + n);
      length += n;
    }
  } finally {
    closeSync(fd);
  }
}
