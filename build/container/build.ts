/**
 * Builds the launcher image of build/container/Dockerfile without a base image, a builder or the
 * network: a rootfs holding the release binary, the glibc loader and the libraries `ldd` lists for it
 * (copied from this host, at the same paths), a `spacelift` user (UID 1983) and its scratch dir, imported
 * through the Docker Engine API (`POST /images/create?fromSrc=-`, what `docker import` does) with the
 * Dockerfile's USER, ENV, WORKDIR and ENTRYPOINT as the import's changes (SIGTERM, the Dockerfile's
 * STOPSIGNAL, is Docker's default stop signal: an import cannot set one).
 *
 *   bun build/container/build.ts [--binary dist/spacelift-launcher-x86_64] [--tag spacelift-launcher:0.1.0]
 *
 * The Docker Engine is DOCKER_HOST (unix:// or tcp://), else /var/run/docker.sock. A SHA256SUMS beside
 * the binary that lists it must match it. The host's libraries are the image's, so the binary must be
 * for this host's architecture (for the other one, use the Dockerfile with `docker buildx --platform`).
 * See docs/deploy/container.md.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";

export const IMAGE_UID = 1983;
const IMAGE_SCRATCH_DIR = "/opt/spacelift";
const LAUNCHER_PATH = "/usr/local/bin/spacelift-launcher";
/** The Dockerfile's image configuration, as `docker import --change` lines. */
const CHANGES = [
  `USER ${IMAGE_UID}:${IMAGE_UID}`,
  `ENV SPACELIFT_LAUNCHER_SCRATCH_DIR=${IMAGE_SCRATCH_DIR}`,
  `WORKDIR ${IMAGE_SCRATCH_DIR}`,
  `ENTRYPOINT ["${LAUNCHER_PATH}"]`,
];
/** ELF e_machine of each launcher architecture, and Node's name for it. */
const MACHINES: Record<number, { arch: string; node: string }> = { 0x3e: { arch: "x86_64", node: "x64" }, 0xb7: { arch: "aarch64", node: "arm64" } };

export interface LauncherImageOptions {
  /** The launcher executable (a release's spacelift-launcher-<arch>). */
  binary: string;
  /** `repo:tag`; default spacelift-launcher:<the binary's version>. */
  tag?: string;
  dockerHost?: string;
  log?: (message: string) => void;
}

class BuildError extends Error {}

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", maxBuffer: 16 * 1024 * 1024 });
  if (r.error) throw new BuildError(`${cmd} could not be run (${r.error.message}); ${cmd === "ldd" ? "install libc-bin" : `install ${cmd}`}`);
  if (r.status !== 0) throw new BuildError(`${cmd} ${args.join(" ")} exited with ${r.status}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** The binary's architecture from its ELF header; refuses anything but this host's. */
function checkArchitecture(binary: string): string {
  const header = Buffer.alloc(20);
  const fd = openSync(binary, "r");
  try {
    readSync(fd, header, 0, 20, 0);
  } finally {
    closeSync(fd);
  }
  if (header.readUInt32BE(0) !== 0x7f454c46) throw new BuildError(`${binary} is not an ELF executable; give a release's spacelift-launcher-<arch>`);
  const machine = MACHINES[header.readUInt16LE(18)];
  if (!machine) throw new BuildError(`${binary} is for neither x86_64 nor aarch64`);
  if (machine.node !== process.arch) {
    throw new BuildError(`${binary} is for ${machine.arch} but this host is ${process.arch}: its libraries would not fit; build on an ${machine.arch} host, or use build/container/Dockerfile with docker buildx --platform`);
  }
  return machine.arch;
}

/** When a SHA256SUMS lies beside the binary and lists it, the binary must match its line. */
function checkSums(binary: string, log: (m: string) => void): void {
  const sums = join(dirname(binary), "SHA256SUMS");
  if (!existsSync(sums)) return;
  const line = readFileSync(sums, "utf8").split("\n").find((l) => l.replace(/^[0-9a-f]{64} [ *]/, "") === basename(binary));
  if (!line) return;
  const got = createHash("sha256").update(readFileSync(binary)).digest("hex");
  if (got !== line.slice(0, 64)) throw new BuildError(`${binary} does not match ${sums} (sha256 ${got}, expected ${line.slice(0, 64)}); not building`);
  log(`${basename(binary)} matches ${sums}`);
}

/** The loader and libraries `ldd` lists (absolute paths; symlinks are followed when copying). */
function libraries(binary: string): string[] {
  const paths = [...run("ldd", [binary]).matchAll(/(\/\S+) \(0x[0-9a-f]+\)/g)].map((m) => m[1]!);
  if (!paths.some((p) => /\/ld-linux[-.\w]*\.so\.\d+$/.test(p))) throw new BuildError(`ldd lists no glibc loader for ${binary}; is this host glibc-based?`);
  return [...new Set(paths)];
}

/** Writes the image's rootfs tarball: root's files, then the scratch dir owned by UID 1983. */
function writeRootfs(binary: string, libs: string[], out: string): void {
  const root = mkdtempSync(join(tmpdir(), "launcher-rootfs-"));
  try {
    const copy = (from: string, to: string, mode: number): void => {
      mkdirSync(join(root, dirname(to)), { recursive: true, mode: 0o755 });
      copyFileSync(from, join(root, to));
      chmodSync(join(root, to), mode);
    };
    copy(binary, LAUNCHER_PATH, 0o755);
    for (const lib of libs) copy(lib, lib, 0o755);
    for (const d of ["etc", "tmp", "proc", "sys", "dev", "run", IMAGE_SCRATCH_DIR.slice(1)]) mkdirSync(join(root, d), { recursive: true, mode: 0o755 });
    chmodSync(join(root, "tmp"), 0o1777);
    writeFileSync(join(root, "etc/passwd"), `root:x:0:0:root:/root:/sbin/nologin\nspacelift:x:${IMAGE_UID}:${IMAGE_UID}:spacelift:${IMAGE_SCRATCH_DIR}:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n`);
    writeFileSync(join(root, "etc/group"), `root:x:0:\nspacelift:x:${IMAGE_UID}:\nnogroup:x:65534:\n`);
    const scratch = `./${IMAGE_SCRATCH_DIR.slice(1)}`;
    run("tar", ["-C", root, "--numeric-owner", "--owner=0", "--group=0", `--exclude=${scratch}`, "-cf", out, "."]);
    run("tar", ["-C", root, "--numeric-owner", `--owner=${IMAGE_UID}`, `--group=${IMAGE_UID}`, "-rf", out, scratch]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** A request to the Docker Engine at `dockerHost` (unix:///path or tcp://host:port). */
function engine(dockerHost: string): (path: string, init?: RequestInit) => Promise<Response> {
  if (dockerHost.startsWith("unix://")) return (path, init = {}) => fetch(`http://docker${path}`, { ...init, unix: dockerHost.slice("unix://".length) });
  if (dockerHost.startsWith("tcp://")) return (path, init = {}) => fetch(`http://${dockerHost.slice("tcp://".length)}${path}`, init);
  throw new BuildError(`DOCKER_HOST must be unix:///path or tcp://host:port, not ${dockerHost}`);
}

/** Builds and imports the image; returns its `repo:tag`. */
export async function buildLauncherImage(options: LauncherImageOptions): Promise<string> {
  const log = options.log ?? (() => {});
  const binary = resolve(options.binary);
  if (!existsSync(binary)) throw new BuildError(`${binary} does not exist; build it with \`make build\` or give --binary`);
  const arch = checkArchitecture(binary);
  checkSums(binary, log);
  const version = /^spacelift-launcher (\S+)/.exec(run(binary, ["version"]))?.[1];
  if (!version) throw new BuildError(`${binary} version did not print a launcher version`);
  const tag = options.tag ?? `spacelift-launcher:${version}`;
  const [repo, label] = tag.includes(":") ? [tag.slice(0, tag.lastIndexOf(":")), tag.slice(tag.lastIndexOf(":") + 1)] : [tag, "latest"];

  const dir = mkdtempSync(join(tmpdir(), "launcher-image-"));
  try {
    const tarball = join(dir, "rootfs.tar");
    const libs = libraries(binary);
    writeRootfs(binary, libs, tarball);
    const query = new URLSearchParams({ fromSrc: "-", repo, tag: label });
    for (const change of [...CHANGES, `LABEL org.opencontainers.image.title=spacelift-launcher org.opencontainers.image.version=${version}`]) query.append("changes", change);
    const call = engine(options.dockerHost ?? "unix:///var/run/docker.sock");
    const res = await call(`/images/create?${query}`, { method: "POST", headers: { "content-type": "application/x-tar" }, body: Bun.file(tarball) });
    const body = await res.text();
    if (!res.ok || body.includes('"error"')) throw new BuildError(`the Docker Engine refused the import of ${repo}:${label}: ${body.trim().slice(0, 500)}`);
    log(`imported ${repo}:${label} (${arch}, launcher ${version}, ${libs.length} libraries from this host)`);
    return `${repo}:${label}`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function flag(argv: string[], name: string): string | undefined {
  const at = argv.indexOf(name);
  if (at < 0) return undefined;
  const value = argv[at + 1];
  if (value === undefined || value.startsWith("--")) throw new BuildError(`${name} needs a value`);
  return value;
}

if (import.meta.main) {
  const argv = process.argv.slice(2);
  const arch = process.arch === "arm64" ? "aarch64" : "x86_64";
  try {
    const unknown = argv.filter((a, i) => a.startsWith("--") && !["--binary", "--tag"].includes(a) && !["--binary", "--tag"].includes(argv[i - 1] ?? ""));
    if (unknown.length > 0) throw new BuildError(`unknown option ${unknown[0]}; usage: bun build/container/build.ts [--binary PATH] [--tag REPO:TAG]`);
    const image = await buildLauncherImage({
      binary: flag(argv, "--binary") ?? join(import.meta.dir, "../../dist", `spacelift-launcher-${arch}`),
      tag: flag(argv, "--tag"),
      dockerHost: process.env.DOCKER_HOST || undefined,
      log: (m) => console.log(m),
    });
    console.log(image);
  } catch (error) {
    if (!(error instanceof BuildError)) throw error;
    console.error(`build/container/build.ts: ${error.message}`);
    process.exit(1);
  }
}
