/**
 * Git fixtures for the source tests: a small bare repository made with the host's git, and a "dumb
 * HTTP" git server for it on loopback (static files after `git update-server-info`, no git on the
 * serving side), which records every path it is asked for.
 */
import { mkdirSync, realpathSync, writeFileSync } from "node:fs";
import { join, resolve, sep } from "node:path";

const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: "Test",
  GIT_AUTHOR_EMAIL: "test@example.com",
  GIT_COMMITTER_NAME: "Test",
  GIT_COMMITTER_EMAIL: "test@example.com",
  GIT_CONFIG_GLOBAL: "/dev/null",
};

export function git(cwd: string, ...args: string[]): string {
  const r = Bun.spawnSync(["git", ...args], { cwd, env: GIT_ENV, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`git ${args.join(" ")}: ${r.stderr.toString()}`);
  return r.stdout.toString().trim();
}

export interface TestRepository {
  /** The first commit on main (infra/version = 1). */
  first: string;
  /** The head of main (infra/version = 2). */
  main: string;
  /** The head of feature (infra/version = feature). */
  feature: string;
}

/**
 * A bare repository at `bare` with two commits on `main` (infra/version = 1, then 2) and a branch
 * `feature` (infra/version = feature), ready to be served over dumb HTTP.
 */
export function makeRepository(root: string, bare: string): TestRepository {
  const work = join(root, "repo-work");
  mkdirSync(join(work, "infra"), { recursive: true });
  git(work, "init", "--quiet", "--initial-branch=main");
  writeFileSync(join(work, "infra/version"), "1\n");
  git(work, "add", ".");
  git(work, "commit", "--quiet", "-m", "one");
  const first = git(work, "rev-parse", "HEAD");
  writeFileSync(join(work, "infra/version"), "2\n");
  git(work, "commit", "--quiet", "-am", "two");
  const main = git(work, "rev-parse", "HEAD");
  git(work, "checkout", "--quiet", "-b", "feature");
  writeFileSync(join(work, "infra/version"), "feature\n");
  git(work, "commit", "--quiet", "-am", "feature");
  const feature = git(work, "rev-parse", "HEAD");
  git(work, "checkout", "--quiet", "main");
  mkdirSync(bare, { recursive: true });
  git(root, "clone", "--quiet", "--bare", work, bare);
  git(bare, "update-server-info");
  return { first, main, feature };
}

export interface DumbHttpServer {
  /** http://127.0.0.1:<port> */
  url: string;
  /** Every request path, in order. */
  requests: string[];
  stop(): void;
}

/** Serves the files under `root` read-only on 127.0.0.1 (port 0): what a dumb-HTTP git clone needs. */
export function serveDumbHttp(root: string): DumbHttpServer {
  const base = realpathSync(root);
  const requests: string[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const path = decodeURIComponent(new URL(req.url).pathname);
      requests.push(path);
      const file = resolve(base, `.${path}`);
      if (req.method !== "GET" || !file.startsWith(base + sep)) return new Response("", { status: 404 });
      const body = Bun.file(file);
      return (await body.exists()) ? new Response(body) : new Response("Not Found", { status: 404 });
    },
  });
  return { url: `http://127.0.0.1:${server.port}`, requests, stop: () => void server.stop(true) };
}
