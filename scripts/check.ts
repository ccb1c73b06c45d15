// `make check`: the type checker, the type-aware linter, then the unused-exports check. Fails on the
// first that fails.
import { spawnSync } from "node:child_process";

const steps: Array<[string, string[]]> = [
  ["node_modules/.bin/tsc", ["--noEmit", "-p", "tsconfig.json"]],
  // The web UI's browser code, checked against the DOM instead of Bun.
  ["node_modules/.bin/tsc", ["--noEmit", "-p", "src/mothership/web/client/tsconfig.json"]],
  ["node_modules/.bin/eslint", ["--max-warnings=0", "."]],
  [process.execPath, ["scripts/unused-exports.ts"]],
];
for (const [cmd, args] of steps) {
  console.log(`$ ${cmd} ${args.join(" ")}`);
  const r = spawnSync(cmd, args, { stdio: "inherit" });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
