/**
 * The flags that say more about a run than its stack, and which workers a drain means:
 * `run trigger --commit SHA --branch B --metadata KEY=VALUE... --metadata-file PATH...` and
 * `worker drain|undrain --pool P --tag KEY=VALUE...`. Checked here so a typo is a usage error that
 * says what a good value looks like, before anything reaches the API (which checks again).
 */
import { all, flag, keyValue, usageError, type ParsedArgs } from "./args.ts";
import { readSecretFile } from "./secret-input.ts";

export interface TriggerBody {
  commit?: string;
  branch?: string;
  user_provided_metadata?: string[];
}

/**
 * `--metadata KEY=VALUE` (repeatable) becomes ONE entry of the run's user-provided metadata, the JSON
 * object of the pairs in the order given (a policy reads it with `json.unmarshal`); each
 * `--metadata-file PATH` is one more entry, the file's text (e.g. a signed token; one trailing newline
 * trimmed, at most 64 KiB).
 */
export async function triggerOptions(a: ParsedArgs): Promise<TriggerBody> {
  const out: TriggerBody = {};
  const commit = flag(a, "commit");
  if (commit !== undefined) {
    if (!/^[0-9a-fA-F]{4,64}$/.test(commit)) throw usageError(`--commit must be a commit hash (4 to 64 hex digits, e.g. $(git rev-parse HEAD)), not ${JSON.stringify(commit)}`);
    out.commit = commit;
  }
  const branch = flag(a, "branch");
  if (branch !== undefined) {
    if (!/^[^\s\p{Cc}]{1,255}$/u.test(branch)) throw usageError(`--branch must be a branch name without spaces, not ${JSON.stringify(branch)}`);
    out.branch = branch;
  }
  const metadata: string[] = [];
  const pairs = all(a, "metadata");
  if (pairs.length > 0) {
    const object: Record<string, string> = {};
    for (const item of pairs) {
      const [key, value] = keyValue(item, "--metadata");
      if (Object.hasOwn(object, key)) throw usageError(`--metadata ${key} is given twice; give each key once`);
      object[key] = value;
    }
    metadata.push(JSON.stringify(object));
  }
  for (const path of all(a, "metadata-file")) metadata.push(await readSecretFile(path, "--metadata-file"));
  if (metadata.length > 0) out.user_provided_metadata = metadata;
  return out;
}

/** `--tag KEY=VALUE`, repeatable: a worker matches when its metadata holds every one. */
export function tagSelector(a: ParsedArgs): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const item of all(a, "tag")) {
    const [key, value] = keyValue(item, "--tag");
    if (Object.hasOwn(tags, key) && tags[key] !== value) throw usageError(`--tag ${key} is given twice with different values; a worker has one value per tag`);
    tags[key] = value;
  }
  return tags;
}
