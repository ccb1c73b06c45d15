/**
 * Where the CLI takes secrets from without putting them on its command line, which every user of the
 * machine can read (`ps`, /proc/PID/cmdline): a file (`--secret-file NAME=PATH`, `--token-file PATH`)
 * or standard input (`--secret NAME=-`, `--secret-stdin NAME`). `--secret NAME=VALUE` and `--token`
 * keep working, with a warning on stderr naming the safer way.
 */
import { open } from "node:fs/promises";
import { errorMessage, hasCode } from "../../errors.ts";
import { all, keyValue, usageError, type ParsedArgs } from "./args.ts";

/** A secret read from a file or stdin is bounded: anything larger is a wrong path, not a secret. */
const MAX_SECRET_BYTES = 64 * 1024;

export const TOKEN_ON_ARGV_WARNING =
  "mothership: warning: --token puts the admin token on the command line, where other users of this machine can read it (ps); use --token-file PATH, MOTHERSHIP_TOKEN or --data DIR instead";
const SECRET_ON_ARGV_WARNING =
  "mothership: warning: --secret NAME=VALUE puts the value on the command line, where other users of this machine can read it (ps); use --secret-file NAME=PATH or --secret NAME=- (value from stdin) instead";

/** One trailing newline (`\n` or `\r\n`) is what `echo` or an editor adds, not part of the value. */
const trimNewline = (s: string): string => s.replace(/\r?\n$/, "");

/** The file's text, at most MAX_SECRET_BYTES, trailing newline trimmed; `what` names the flag in errors. */
export async function readSecretFile(path: string, what: string): Promise<string> {
  let text: string;
  try {
    const f = await open(path, "r");
    try {
      const buf = Buffer.alloc(MAX_SECRET_BYTES + 1);
      const { bytesRead } = await f.read(buf, 0, buf.length, 0);
      if (bytesRead > MAX_SECRET_BYTES) throw usageError(`${what}: ${path} is larger than ${MAX_SECRET_BYTES} bytes; give the file that holds just the secret`);
      text = buf.subarray(0, bytesRead).toString("utf8");
    } finally {
      await f.close();
    }
  } catch (err) {
    if (hasCode(err, "usage")) throw err;
    throw usageError(`${what}: cannot read ${path}: ${errorMessage(err)}`);
  }
  const value = trimNewline(text);
  if (value === "") throw usageError(`${what}: ${path} is empty; write the secret into it (a trailing newline is trimmed)`);
  return value;
}

/** All of stdin, at most MAX_SECRET_BYTES, trailing newline trimmed. */
async function readSecretStdin(stdin: AsyncIterable<Uint8Array>, what: string): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stdin) {
    size += chunk.length;
    if (size > MAX_SECRET_BYTES) throw usageError(`${what}: standard input is larger than ${MAX_SECRET_BYTES} bytes; pipe in just the secret`);
    chunks.push(Buffer.from(chunk));
  }
  const value = trimNewline(Buffer.concat(chunks).toString("utf8"));
  if (value === "") throw usageError(`${what}: standard input was empty; pipe the secret in, e.g. printf %s "$VALUE" | mothership ...`);
  return value;
}

export interface SecretSources {
  /** Standard input, read at most once. */
  stdin?: AsyncIterable<Uint8Array>;
  /** Where the warning about a value on the command line goes. */
  warn(text: string): void;
}

/** The stack's secret variables from --secret, --secret-file and --secret-stdin, in that order. */
export async function secretVariables(a: ParsedArgs, src: SecretSources): Promise<Array<{ name: string; value: string }>> {
  const out: Array<{ name: string; value: string }> = [];
  const fromStdin: string[] = [];
  let onArgv = false;
  for (const item of all(a, "secret")) {
    const [name, value] = keyValue(item, "--secret");
    if (value === "-") fromStdin.push(name);
    else {
      onArgv = true;
      out.push({ name, value });
    }
  }
  for (const name of all(a, "secret-stdin")) {
    if (name === "" || name.includes("=")) throw usageError(`--secret-stdin takes the variable NAME only, the value comes from stdin (got ${JSON.stringify(name)})`);
    fromStdin.push(name);
  }
  if (onArgv) src.warn(SECRET_ON_ARGV_WARNING);
  for (const item of all(a, "secret-file")) {
    const [name, path] = keyValue(item, "--secret-file");
    out.push({ name, value: await readSecretFile(path, `--secret-file ${name}`) });
  }
  if (fromStdin.length > 1) {
    throw usageError(`only one secret can come from stdin (got ${fromStdin.join(", ")}); give the others with --secret-file NAME=PATH`);
  }
  const stdinName = fromStdin[0];
  if (stdinName !== undefined) {
    if (!src.stdin) throw usageError(`--secret ${stdinName}=-: no standard input to read from`);
    out.push({ name: stdinName, value: await readSecretStdin(src.stdin, `secret ${stdinName} from stdin`) });
  }
  return out;
}
