/**
 * Fetching the run's source inside the container with the image's own `git` (so the runner image
 * decides the git version, its CA bundle and credential helpers, exactly like the user's commands
 * would see them).
 */
import { SpaceliftError } from "../errors.ts";
import type { RunSource } from "../protocol/run-spec.ts";

/**
 * The URL to clone. A source that names a VCS agent pool reaches a VCS that is only visible
 * from inside the operator's network: its scheme, host and port are replaced by the pool's base
 * endpoint (which may carry a path prefix), the repository path is kept:
 * `https://gitlab.corp/org/repo.git` + `http://vcs-agent:8080/gitlab` ->
 * `http://vcs-agent:8080/gitlab/org/repo.git`.
 */
export function cloneUrl(source: RunSource, mapping: Readonly<Record<string, string>>): string {
  const pool = source.vcs_agent_pool;
  if (pool === undefined) return source.repository_url;
  const base = Object.hasOwn(mapping, pool) ? mapping[pool] : undefined;
  if (base === undefined) {
    const known = Object.keys(mapping);
    throw new SpaceliftError(
      "vcs-pool-unknown",
      `the run's source uses the VCS agent pool ${JSON.stringify(pool)}, which this worker pool does not map ` +
        `(set SPACELIFT_PRIVATEVCS_MAPPING_NAME_<n> and SPACELIFT_PRIVATEVCS_MAPPING_BASE_ENDPOINT_<n> on the launcher; ` +
        `mapped pools: ${known.length > 0 ? known.map((k) => JSON.stringify(k)).join(", ") : "none"})`,
    );
  }
  let path: string;
  try {
    const url = new URL(source.repository_url);
    path = url.pathname + url.search;
  } catch (cause) {
    throw new SpaceliftError("source-url-invalid", "the run's source repository_url is not a URL", { cause });
  }
  return base.replace(/\/+$/, "") + path;
}

/** A URL fit for the run log: any user:password part removed. */
export function displayUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.username === "" && parsed.password === "") return url;
    parsed.username = "";
    parsed.password = "";
    return parsed.toString();
  } catch {
    return "(unparseable URL)";
  }
}

/**
 * The git invocations that check `source` out into `dir`, in order. A commit is checked out
 * detached (the run must see exactly the commit it was scheduled for, even if the branch moved);
 * a branch alone gets its head.
 */
export function gitCommands(source: RunSource, url: string, dir: string): string[][] {
  const branch = source.branch !== undefined ? ["--branch", source.branch] : [];
  if (source.commit === undefined) return [["clone", "--quiet", ...branch, "--", url, dir]];
  return [
    ["clone", "--quiet", "--no-checkout", ...branch, "--", url, dir],
    ["-C", dir, "-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", source.commit],
  ];
}
