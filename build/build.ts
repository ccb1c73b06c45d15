/**
 * `make build`: compiles the launcher (worker included) and the mothership into single executables for
 * linux x86_64 and aarch64, and writes dist/SHA256SUMS in `sha256sum -c` format.
 *
 *   bun build/build.ts [--target x86_64|aarch64]...   (default: both)
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { ASSET_BUNDLE_PREFIX, ASSET_BUNDLE_SUFFIX, buildClientAssets, encodeAssets } from "../src/mothership/web/client-build.ts";

const root = join(import.meta.dir, "..");
const dist = join(root, "dist");
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };

const TARGETS = { x86_64: "bun-linux-x64", aarch64: "bun-linux-arm64" } as const;
type Arch = keyof typeof TARGETS;
// The web UI's files, bundled once and embedded in the mothership (src/mothership/web/assets.ts finds them).
const webAssets = join(dist, "web", `${ASSET_BUNDLE_PREFIX}${ASSET_BUNDLE_SUFFIX}`);
/**
 * The launcher runs on every host, so it gets the compile options that make it start faster and lighter in
 * memory (measured in docs/performance.md): module top levels compiled to bytecode at build time (depth 0:
 * deeper bytecode saves ~3 MB more resident memory but makes the binary 5 MB larger), ESM so the parts
 * loaded lazily stay lazy, laid out hot-first by a recorded profile (build/launcher-bytecode-order.txt).
 */
const LAUNCHER_ORDER = join(root, "build", "launcher-bytecode-order.txt");
const LAUNCHER_FLAGS = ["--bytecode", "--bytecode-depth=0", "--format=esm", ...(existsSync(LAUNCHER_ORDER) ? [`--bytecode-order=${LAUNCHER_ORDER}`] : [])];
const PROGRAMS = [
  { name: "spacelift-launcher", entry: "src/launcher/main.ts", embed: [], flags: LAUNCHER_FLAGS },
  { name: "mothership", entry: "src/mothership/main.ts", embed: [webAssets], flags: [] },
] as const;
/** A launcher binary (worker included) stays under this size (the 110 MB target is in docs/performance.md). */
const MAX_LAUNCHER_BYTES = 120 * 1024 * 1024;

function gitCommit(): string {
  const r = spawnSync("git", ["rev-parse", "--short=12", "HEAD"], { cwd: root, encoding: "utf8" });
  if (r.status !== 0) return "unknown";
  const dirty = spawnSync("git", ["status", "--porcelain", "--untracked-files=no"], { cwd: root, encoding: "utf8" });
  return r.stdout.trim() + (dirty.stdout.trim() ? "-dirty" : "");
}

function selectedArchs(argv: string[]): Arch[] {
  const picked: Arch[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] !== "--target") continue;
    const v = argv[++i];
    if (v !== "x86_64" && v !== "aarch64") throw new Error(`--target must be x86_64 or aarch64, got ${v ?? "nothing"}`);
    picked.push(v);
  }
  return picked.length ? picked : ["x86_64", "aarch64"];
}

const commit = gitCommit();
mkdirSync(join(dist, "web"), { recursive: true });
writeFileSync(webAssets, encodeAssets(await buildClientAssets()));
const outputs: string[] = [];
for (const arch of selectedArchs(process.argv.slice(2))) {
  for (const program of PROGRAMS) {
    const outfile = join(dist, `${program.name}-${arch}`);
    const define = {
      SPACELIFT_BUILD_VERSION: pkg.version,
      SPACELIFT_BUILD_COMMIT: commit,
      SPACELIFT_BUILD_TARGET: `linux-${arch}`,
    };
    const args = [
      "build", "--compile", `--target=${TARGETS[arch]}`, "--minify", "--sourcemap=none", ...program.flags,
      ...Object.entries(define).map(([k, v]) => `--define=${k}=${JSON.stringify(v)}`),
      join(root, program.entry), ...program.embed, "--outfile", outfile,
    ];
    const started = performance.now();
    const r = spawnSync(process.execPath, args, { cwd: root, encoding: "utf8" });
    if (r.status !== 0) {
      console.error(r.stdout, r.stderr);
      throw new Error(`building ${basename(outfile)} failed`);
    }
    const size = statSync(outfile).size;
    console.log(`built ${basename(outfile)}: ${(size / 1048576).toFixed(1)} MB in ${((performance.now() - started) / 1000).toFixed(1)}s`);
    if (program.name === "spacelift-launcher" && size > MAX_LAUNCHER_BYTES) {
      throw new Error(`${basename(outfile)} is ${size} bytes, over the ${MAX_LAUNCHER_BYTES}-byte limit`);
    }
    outputs.push(outfile);
  }
}

// Checksums for every binary in dist/, so a partial rebuild keeps the others' lines.
const lines = outputs
  .map((file) => `${createHash("sha256").update(readFileSync(file)).digest("hex")}  ${basename(file)}`)
  .sort((a, b) => a.slice(66).localeCompare(b.slice(66)));
const sumsFile = join(dist, "SHA256SUMS");
let previous: string[] = [];
try {
  previous = readFileSync(sumsFile, "utf8").split("\n").filter((l) => l && existsSync(join(dist, l.slice(66))) && !lines.some((n) => n.slice(66) === l.slice(66)));
} catch {
  // first build
}
writeFileSync(sumsFile, [...previous, ...lines].sort((a, b) => a.slice(66).localeCompare(b.slice(66))).join("\n") + "\n");
console.log(`wrote ${sumsFile}`);
