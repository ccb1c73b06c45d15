/**
 * Test images are made locally: a rootfs tarball holding only Debian's static busybox (no libc inside),
 * imported through the Engine API (`POST /images/create?fromSrc=-`, what `docker import` does). The git
 * image adds the host's git (with its HTTP transport helper and the libraries `ldd` lists) on top, for
 * runs that clone a source; it is built on demand by the tests that need it, and so is its variant
 * that runs as the unprivileged user 1983, as the reference runner images do.
 */
import { appendFileSync, chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { DockerClient } from "../../src/docker/types.ts";
import { isDockerError } from "../../src/docker/errors.ts";
import { sh } from "./util.ts";

export const BUSYBOX_IMAGE = "spacelift-test/busybox:latest";
export const GIT_IMAGE = "spacelift-test/git:latest";
/** The git image as the reference runner images are: `USER 1983` (spacelift in its /etc/passwd, HOME /home/spacelift). */
export const NONROOT_GIT_IMAGE = "spacelift-test/git-nonroot:latest";
export const NONROOT_UID = 1983;
const BUSYBOX = "/bin/busybox";
/** Debian's git: the main executable (every builtin) and the helper behind http:// and https:// remotes. */
const GIT = "/usr/bin/git";
const GIT_CORE = "/usr/lib/git-core";

/** Writes a busybox-only rootfs tarball to `out`; `extra` may add files to the tree first. */
export function buildBusyboxRootfs(out: string, extra?: (root: string) => void): void {
  const root = mkdtempSync(join(tmpdir(), "slwp-rootfs-"));
  try {
    for (const d of ["bin", "tmp", "etc", "proc", "sys", "dev", "root", "mnt/workspace"]) {
      mkdirSync(join(root, d), { recursive: true });
    }
    chmodSync(join(root, "tmp"), 0o1777);
    copyFileSync(BUSYBOX, join(root, "bin/busybox"));
    chmodSync(join(root, "bin/busybox"), 0o755);
    const applets = sh(BUSYBOX, ["--list"]).split("\n").filter((a) => a !== "" && a !== "busybox");
    for (const applet of applets) symlinkSync("busybox", join(root, "bin", applet));
    writeFileSync(join(root, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n");
    writeFileSync(join(root, "etc/group"), "root:x:0:\nnogroup:x:65534:\n");
    extra?.(root);
    sh("tar", ["-C", root, "-cf", out, "."]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** Imports the busybox rootfs as BUSYBOX_IMAGE unless the engine already has it. */
export async function ensureBusyboxImage(dockerHost: string, log: (m: string) => void): Promise<string> {
  if (await importRootfs(dockerHost, BUSYBOX_IMAGE, (tarball) => buildBusyboxRootfs(tarball), [])) {
    log(`imported ${BUSYBOX_IMAGE} from Debian's busybox-static`);
  }
  return BUSYBOX_IMAGE;
}

/**
 * Imports the busybox + git rootfs with the user `spacelift` (1983:1983, home /home/spacelift owned by
 * it) as NONROOT_GIT_IMAGE with `USER 1983` (the import's `changes`, as `docker import --change` does),
 * unless the engine has it: a runner image that does not run as root.
 */
export async function ensureNonRootGitImage(dockerHost: string, log: (m: string) => void): Promise<string> {
  const build = (tarball: string) => buildBusyboxRootfs(tarball, (root) => {
    addHostGit(root);
    appendFileSync(join(root, "etc/passwd"), `spacelift:x:${NONROOT_UID}:${NONROOT_UID}:spacelift:/home/spacelift:/bin/sh\n`);
    appendFileSync(join(root, "etc/group"), `spacelift:x:${NONROOT_UID}:\n`);
    mkdirSync(join(root, "home/spacelift"), { recursive: true, mode: 0o755 });
    chownSync(join(root, "home/spacelift"), NONROOT_UID, NONROOT_UID);
  });
  if (await importRootfs(dockerHost, NONROOT_GIT_IMAGE, build, [`USER ${NONROOT_UID}`])) {
    log(`imported ${NONROOT_GIT_IMAGE} (USER ${NONROOT_UID}) from busybox-static and the host's git`);
  }
  return NONROOT_GIT_IMAGE;
}

/** `docker import [--change ...]` through the Engine API, unless `image` exists; true when it imported. */
async function importRootfs(dockerHost: string, image: string, build: (tarball: string) => void, changes: string[]): Promise<boolean> {
  const call = (path: string, init: RequestInit = {}) =>
    dockerHost.startsWith("unix://")
      ? fetch(`http://docker${path}`, { ...init, unix: dockerHost.slice("unix://".length) })
      : fetch(`http://${dockerHost.replace(/^tcp:\/\//, "")}${path}`, init);
  const inspect = await call(`/images/${encodeURIComponent(image)}/json`);
  await inspect.arrayBuffer();
  if (inspect.ok) return false;
  const dir = mkdtempSync(join(tmpdir(), "slwp-image-"));
  try {
    const tarball = join(dir, "rootfs.tar");
    build(tarball);
    const [repo, tag] = image.split(":") as [string, string];
    const query = new URLSearchParams({ fromSrc: "-", repo, tag });
    for (const change of changes) query.append("changes", change);
    const res = await call(`/images/create?${query}`, {
      method: "POST",
      headers: { "content-type": "application/x-tar" },
      body: Bun.file(tarball),
    });
    const body = await res.text();
    if (!res.ok || body.includes('"error"')) throw new Error(`importing ${image} failed: ${body.trim()}`);
    return true;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Adds the host's git to a rootfs at the same paths: `git` (also as the exec-path copy that git runs
 * for its own subcommands), `git-remote-http(s)`, the glibc loader and every library `ldd` lists for
 * them, and an empty template dir (so `git clone` does not warn).
 */
export function addHostGit(root: string): void {
  const copy = (path: string, to = path): void => {
    mkdirSync(join(root, dirname(to)), { recursive: true });
    copyFileSync(path, join(root, to)); // follows symlinks: the library itself, under its soname
    chmodSync(join(root, to), 0o755);
  };
  const helper = join(GIT_CORE, "git-remote-http");
  copy(GIT);
  copy(GIT, join(GIT_CORE, "git"));
  copy(helper);
  symlinkSync("git-remote-http", join(root, GIT_CORE, "git-remote-https"));
  const libraries = new Set<string>();
  for (const binary of [GIT, helper]) {
    for (const match of sh("ldd", [binary]).matchAll(/(\/\S+) \(0x[0-9a-f]+\)/g)) libraries.add(match[1]!);
  }
  for (const library of libraries) copy(library);
  mkdirSync(join(root, "usr/share/git-core/templates"), { recursive: true });
}

/** Imports the busybox + git rootfs as GIT_IMAGE through our Docker client, unless the engine has it. */
export async function ensureGitImage(docker: Pick<DockerClient, "imageInspect" | "imageImport">, log: (m: string) => void): Promise<string> {
  try {
    await docker.imageInspect(GIT_IMAGE);
    return GIT_IMAGE;
  } catch (error) {
    if (!isDockerError(error, "not-found")) throw error;
  }
  const dir = mkdtempSync(join(tmpdir(), "slwp-image-"));
  try {
    const tarball = join(dir, "rootfs.tar");
    buildBusyboxRootfs(tarball, addHostGit);
    const [repo, tag] = GIT_IMAGE.split(":") as [string, string];
    await docker.imageImport(Bun.file(tarball), repo, tag);
    log(`imported ${GIT_IMAGE} from busybox-static and the host's git`);
    return GIT_IMAGE;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
