/**
 * `/downloads/<name>`: the release files a host's boot script fetches — the launcher binaries,
 * `SHA256SUMS` and its detached signature — served from one directory (`mothership serve --downloads
 * DIR`), as the stand-in for a downloads bucket. No admin token: these are public release files, and
 * hosts verify them against SHA256SUMS (and its signature) before running anything.
 *
 * Only the names below are served, so no request can name another file or a path outside the
 * directory; a name that is a symlink, not a regular file or over MAX_DOWNLOAD_BYTES is refused.
 */
import { lstat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { SpaceliftError } from "../../errors.ts";
import { route, type Route } from "./router.ts";

/** A launcher is under 120 MB (build/build.ts fails otherwise); this leaves room and still bounds a read. @testSeam */
export const MAX_DOWNLOAD_BYTES = 256 * 1024 * 1024;

const CONTENT_TYPES: Record<string, string> = {
  "spacelift-launcher-x86_64": "application/octet-stream",
  "spacelift-launcher-aarch64": "application/octet-stream",
  SHA256SUMS: "text/plain; charset=utf-8",
  "SHA256SUMS.asc": "application/pgp-signature",
  "SHA256SUMS.sig": "application/pgp-signature",
};

/** The names /downloads serves. */
const DOWNLOAD_NAMES: readonly string[] = Object.keys(CONTENT_TYPES);

/**
 * Where downloads come from without --downloads: the directory of the running binary (a compiled
 * mothership run from `dist/` or a release directory sits beside its launchers), else the repository's
 * `dist/` when run from source. Undefined when that directory has no SHA256SUMS.
 */
export async function defaultDownloadsDir(): Promise<string | undefined> {
  const compiled = import.meta.dir.startsWith("/$bunfs") || import.meta.dir.includes("~BUN");
  const dir = compiled ? dirname(process.execPath) : join(import.meta.dir, "../../../dist");
  const sums = await lstat(join(dir, "SHA256SUMS")).catch(() => null);
  return sums?.isFile() ? dir : undefined;
}

const notFound = (message: string) => new SpaceliftError("not-found", message);

async function serveFile(dir: string | undefined, name: string): Promise<Response> {
  const type = CONTENT_TYPES[name];
  if (!type) throw notFound(`no download ${JSON.stringify(name)}; there are ${DOWNLOAD_NAMES.join(", ")}`);
  if (!dir) throw notFound("this mothership serves no downloads; start it with --downloads DIR (a `make release` directory)");
  const path = join(dir, name);
  const st = await lstat(path).catch(() => null);
  if (!st) throw notFound(`${name} is not in this release`);
  if (!st.isFile()) throw notFound(`${name} is not a regular file in the downloads directory`);
  if (st.size > MAX_DOWNLOAD_BYTES) throw notFound(`${name} is larger than ${MAX_DOWNLOAD_BYTES} bytes and is not served`);
  const headers: Record<string, string> = {
    "content-type": type,
    "content-length": String(st.size),
    "cache-control": "no-cache",
    "x-content-type-options": "nosniff",
  };
  if (type === "application/octet-stream") headers["content-disposition"] = `attachment; filename="${name}"`;
  return new Response(Bun.file(path).slice(0, st.size), { headers });
}

/** The /downloads routes (paths below /downloads); `dir` undefined answers every name with a 404 saying why. */
export function downloadRoutes(dir: string | undefined): Route[] {
  return [route({ method: "GET", path: "/:name", handle: ({ params: { name } }) => serveFile(dir, name) })];
}
