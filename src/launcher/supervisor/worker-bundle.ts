/**
 * The worker bundle (see docs/architecture.md): the launcher's own executable plus the glibc dynamic loader and the
 * shared libraries it links, copied into `<scratch>/bundle/<hash>/` and mounted read-only into every run
 * container. The container starts `<bundle>/ld-linux-*.so.* --library-path <bundle> <bundle>/spacelift-launcher
 * worker ...`, so the worker runs in any image — glibc, musl or none at all (busybox, distroless, scratch).
 *
 * The directory is named by the hash of its manifest (each file's sha256), built in a temporary
 * directory and renamed into place, and re-verified file by file whenever it is reused: a bundle that
 * was modified on disk is rebuilt, never mounted.
 */
import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readSync } from "node:fs";
import { chmod, copyFile, mkdir, readdir, rename, rm, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { SpaceliftError, errorMessage } from "../../errors.ts";

/** Where the bundle appears inside run containers. */
export const BUNDLE_MOUNT = "/opt/spacelift-worker";
/** The executable's name inside the bundle. */
const BUNDLE_EXECUTABLE = "spacelift-launcher";
const MANIFEST = "SHA256SUMS";

export interface WorkerBundle {
  /** Host directory to mount (read-only). */
  readonly hostDir: string;
  /** sha256 of the manifest: names this bundle. */
  readonly hash: string;
  /** File name of the dynamic loader inside the bundle, e.g. ld-linux-x86-64.so.2. */
  readonly loader: string;
}

export interface BundleOptions {
  scratchDir: string;
  /** The launcher executable to bundle (a Bun-compiled binary). */
  executable: string;
  /** Override how the needed libraries are found (tests); default `ldd`, else the fixed list. */
  findLibraries?: (executable: string) => Promise<BundleFile[]>;
}

export interface BundleFile {
  /** Name inside the bundle (the soname the executable asks for). */
  name: string;
  /** Path on the host (symlinks are followed when copying). */
  source: string;
}

/** The command that starts the worker from the bundle mounted at `mountDir`. */
export function bundleCommand(bundle: WorkerBundle, mountDir: string, workerArgs: string[]): string[] {
  return [`${mountDir}/${bundle.loader}`, "--library-path", mountDir, `${mountDir}/${BUNDLE_EXECUTABLE}`, "worker", ...workerArgs];
}

export async function materializeWorkerBundle(options: BundleOptions): Promise<WorkerBundle> {
  const libraries = await (options.findLibraries ?? findLibraries)(options.executable);
  const files: BundleFile[] = [{ name: BUNDLE_EXECUTABLE, source: options.executable }, ...libraries];
  const loader = libraries.find((f) => isLoader(f.name));
  if (loader === undefined) throw bundleError(`found no dynamic loader (ld-linux-*.so.*) for ${options.executable}`);

  const sums = await Promise.all(files.map(async (f) => ({ name: f.name, sum: await sha256File(f.source) })));
  const manifest = sums.map((s) => `${s.sum}  ${s.name}\n`).join("");
  const hash = new Bun.CryptoHasher("sha256").update(manifest).digest("hex");
  const root = join(options.scratchDir, "bundle");
  const hostDir = join(root, hash.slice(0, 16));
  const bundle: WorkerBundle = { hostDir, hash, loader: loader.name };

  if (existsSync(hostDir)) {
    if (await verify(hostDir, sums)) return bundle;
    await makeWritable(hostDir);
    await rm(hostDir, { recursive: true, force: true });
  }
  await mkdir(root, { recursive: true, mode: 0o755 });
  const tmp = join(root, `.tmp-${process.pid}-${crypto.randomUUID()}`);
  try {
    await mkdir(tmp, { mode: 0o755 });
    for (const f of files) {
      await copyFile(f.source, join(tmp, f.name));
      await chmod(join(tmp, f.name), 0o555);
    }
    await writeFile(join(tmp, MANIFEST), manifest, { mode: 0o444 });
    if (!(await verify(tmp, sums))) throw bundleError(`the copied files in ${tmp} do not match their sources`);
    try {
      await rename(tmp, hostDir);
    } catch (cause) {
      // Another launcher sharing the scratch dir made the same bundle first: use theirs if it is intact.
      if (!(existsSync(hostDir) && (await verify(hostDir, sums)))) throw bundleError(`cannot move the bundle into ${hostDir}`, cause);
    }
  } finally {
    if (existsSync(tmp)) {
      await makeWritable(tmp);
      await rm(tmp, { recursive: true, force: true });
    }
  }
  return bundle;
}

/** True when every file in `dir` has the expected hash. */
async function verify(dir: string, sums: ReadonlyArray<{ name: string; sum: string }>): Promise<boolean> {
  for (const { name, sum } of sums) {
    try {
      if ((await sha256File(join(dir, name))) !== sum) return false;
    } catch {
      return false;
    }
  }
  return true;
}

async function makeWritable(dir: string): Promise<void> {
  for (const name of await readdir(dir).catch(() => [])) await chmod(join(dir, name), 0o644).catch(() => undefined);
}

/** Streams the file through the hasher: the executable is ~100 MB, and the launcher's RSS must stay small. */
async function sha256File(path: string): Promise<string> {
  // One reused buffer, read synchronously a MiB at a time with a turn of the event loop between reads:
  // a read stream allocates a fresh buffer per chunk, and hashing the ~110 MB executable twice at every
  // start left ~12 MB of freed chunks resident for the launcher's whole life (docs/performance.md).
  const hasher = new Bun.CryptoHasher("sha256");
  const buffer = Buffer.allocUnsafe(1 << 20);
  const fd = openSync(path, "r");
  try {
    for (let n = readSync(fd, buffer); n > 0; n = readSync(fd, buffer)) {
      hasher.update(buffer.subarray(0, n));
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  } finally {
    closeSync(fd);
  }
  return hasher.digest("hex");
}

function isLoader(name: string): boolean {
  return /^ld-linux[-.\w]*\.so\.\d+$/.test(name);
}

/** The libraries glibc's `ldd` reports, or the fixed list when `ldd` is missing or fails. */
async function findLibraries(executable: string): Promise<BundleFile[]> {
  const output = await runLdd(executable);
  const parsed = output === undefined ? [] : parseLdd(output);
  if (parsed.some((f) => isLoader(f.name))) return parsed;
  return fixedLibraries(process.arch);
}

/**
 * `ldd` lines: `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)` for libraries (named by the
 * soname the executable asks for) and `/lib64/ld-linux-x86-64.so.2 (0x...)` for the loader; the vDSO
 * has no file and is skipped.
 * @testSeam
 */
export function parseLdd(output: string): BundleFile[] {
  const files: BundleFile[] = [];
  for (const line of output.split("\n")) {
    const linked = /^\s*(\S+)\s+=>\s+(\/\S+)\s+\(0x[0-9a-f]+\)\s*$/.exec(line);
    if (linked) {
      files.push({ name: linked[1]!, source: linked[2]! });
      continue;
    }
    const direct = /^\s*(\/\S+)\s+\(0x[0-9a-f]+\)\s*$/.exec(line);
    if (direct) files.push({ name: basename(direct[1]!), source: direct[1]! });
  }
  return files;
}

const FIXED_LIBS = ["libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2"];

/** What a Bun executable links on glibc, from the distribution's usual places. */
function fixedLibraries(arch: string): BundleFile[] {
  const [triple, loaderPath] =
    arch === "arm64" ? ["aarch64-linux-gnu", "/lib/ld-linux-aarch64.so.1"] : ["x86_64-linux-gnu", "/lib64/ld-linux-x86-64.so.2"];
  const dir = [`/lib/${triple}`, `/usr/lib/${triple}`].find((d) => existsSync(join(d, "libc.so.6")));
  if (dir === undefined) throw bundleError(`cannot find glibc in /lib/${triple} or /usr/lib/${triple} (and ldd is not available)`);
  const loader = existsSync(loaderPath) ? loaderPath : join(dir, basename(loaderPath));
  if (!existsSync(loader)) throw bundleError(`cannot find the dynamic loader ${basename(loaderPath)}`);
  return [...FIXED_LIBS.map((name) => ({ name, source: join(dir, name) })).filter((f) => existsSync(f.source)), { name: basename(loader), source: loader }];
}

function runLdd(executable: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    let out = "";
    let child;
    try {
      child = spawn("ldd", [executable], { stdio: ["ignore", "pipe", "ignore"], timeout: 10_000 });
    } catch {
      resolve(undefined);
      return;
    }
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.on("error", () => resolve(undefined));
    child.on("close", (code) => resolve(code === 0 ? out : undefined));
  });
}

function bundleError(message: string, cause?: unknown): SpaceliftError {
  const detail = cause === undefined ? "" : `: ${errorMessage(cause)}`;
  return new SpaceliftError("worker-bundle-failed", `worker bundle: ${message}${detail}`, cause === undefined ? undefined : { cause });
}
