/**
 * Test images are made locally: a rootfs tarball holding only Debian's static busybox (no libc inside),
 * imported through the Engine API (`POST /images/create?fromSrc=-`, what `docker import` does).
 */
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sh } from "./util.ts";

export const BUSYBOX_IMAGE = "spacelift-test/busybox:latest";
const BUSYBOX = "/bin/busybox";

/** Writes a busybox-only rootfs tarball to `out`. */
export function buildBusyboxRootfs(out: string): void {
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
    sh("tar", ["-C", root, "-cf", out, "."]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** Imports the busybox rootfs as BUSYBOX_IMAGE unless the engine already has it. */
export async function ensureBusyboxImage(dockerHost: string, log: (m: string) => void): Promise<string> {
  const call = (path: string, init: RequestInit = {}) =>
    dockerHost.startsWith("unix://")
      ? fetch(`http://docker${path}`, { ...init, unix: dockerHost.slice("unix://".length) })
      : fetch(`http://${dockerHost.replace(/^tcp:\/\//, "")}${path}`, init);
  const inspect = await call(`/images/${encodeURIComponent(BUSYBOX_IMAGE)}/json`);
  await inspect.arrayBuffer();
  if (inspect.ok) return BUSYBOX_IMAGE;
  const dir = mkdtempSync(join(tmpdir(), "slwp-image-"));
  try {
    const tarball = join(dir, "rootfs.tar");
    buildBusyboxRootfs(tarball);
    const [repo, tag] = BUSYBOX_IMAGE.split(":") as [string, string];
    const res = await call(`/images/create?fromSrc=-&repo=${encodeURIComponent(repo)}&tag=${tag}`, {
      method: "POST",
      headers: { "content-type": "application/x-tar" },
      body: Bun.file(tarball),
    });
    const body = await res.text();
    if (!res.ok || body.includes('"error"')) throw new Error(`importing ${BUSYBOX_IMAGE} failed: ${body.trim()}`);
    log(`imported ${BUSYBOX_IMAGE} from Debian's busybox-static`);
    return BUSYBOX_IMAGE;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
