/**
 * Extra mount lists (`SPACELIFT_WORKER_EXTRA_MOUNTS` and its read-only/write-run variants):
 * `/host:/container[:ro|:rw]`, comma-separated. Docker's own bind syntax, restricted to absolute paths
 * on both sides: a relative host path would be resolved against the Docker daemon's working directory
 * (not the launcher's), which is never what the operator meant. Both paths are normalized before any
 * check (`/mnt//workspace`, `/mnt/./workspace`, `/mnt/x/../workspace` and `/mnt/workspace/` are all
 * `/mnt/workspace`), and only the normalized form goes on to Docker, so no spelling slips past a guard.
 */
import { posix } from "node:path";
import { fail, ok, problem, quote, type ParseResult } from "./parse-result.ts";

export interface Mount {
  readonly source: string;
  readonly target: string;
  readonly readOnly: boolean;
}

const GOOD = "e.g. /opt/cache:/mnt/cache,/etc/ssl/certs:/etc/ssl/certs:ro";

/**
 * Container paths the launcher mounts itself; an extra mount there would hide the workspace.
 * The worker bundle lives under the scratch dir and is checked by whoever builds the container.
 */
const RESERVED_TARGETS: readonly string[] = ["/mnt/workspace"];

/** An absolute path in its one canonical spelling: no `.`, `..`, doubled or trailing slashes. */
export function normalizeMountPath(path: string): string {
  const normal = posix.normalize(path);
  return normal.length > 1 ? normal.replace(/\/+$/, "") : normal;
}

/** Parse a mount list; every bad item is reported, each as its own problem naming the item. */
export function parseMounts(text: string): ParseResult<Mount[]> {
  if (text === "") return fail("is empty (unset it for no extra mounts)", GOOD);
  const items = text.split(",");
  const mounts: Mount[] = [];
  const problems: string[] = [];
  const seenTargets = new Set<string>();
  items.forEach((raw, index) => {
    const item = raw.trim();
    const where = `item ${index + 1}`;
    if (item === "") {
      problems.push(problem(`${where} is empty (a doubled, leading or trailing comma)`, GOOD));
      return;
    }
    const parts = item.split(":");
    if (parts.length < 2) {
      problems.push(problem(`${where} ${quote(item)} has no colon between host and container path`, GOOD));
      return;
    }
    if (parts.length > 3) {
      problems.push(problem(`${where} ${quote(item)} has too many colons (paths with colons are not supported)`, GOOD));
      return;
    }
    const [source = "", target = "", mode] = parts;
    if (mode !== undefined && mode !== "ro" && mode !== "rw") {
      problems.push(problem(`${where} ${quote(item)} has unknown mode ${quote(mode)} (only ro or rw)`, GOOD));
      return;
    }
    if (!source.startsWith("/")) {
      problems.push(problem(`${where} ${quote(item)}: host path ${quote(source)} is not absolute`, GOOD));
      return;
    }
    if (!target.startsWith("/")) {
      problems.push(problem(`${where} ${quote(item)}: container path ${quote(target)} is not absolute`, GOOD));
      return;
    }
    const normalizedTarget = normalizeMountPath(target);
    if (normalizedTarget === "/" || RESERVED_TARGETS.includes(normalizedTarget)) {
      problems.push(problem(`${where} ${quote(item)}: the launcher owns container path ${quote(normalizedTarget)}`, GOOD));
      return;
    }
    if (seenTargets.has(normalizedTarget)) {
      problems.push(problem(`${where} ${quote(item)}: container path ${quote(normalizedTarget)} is mounted twice`, GOOD));
      return;
    }
    seenTargets.add(normalizedTarget);
    mounts.push({ source: normalizeMountPath(source), target: normalizedTarget, readOnly: mode === "ro" });
  });
  return problems.length > 0 ? { ok: false, problems } : ok(mounts);
}

/** Docker's bind string for a mount (HostConfig.Binds). */
export function bindString(m: Mount): string {
  return `${m.source}:${m.target}${m.readOnly ? ":ro" : ""}`;
}
