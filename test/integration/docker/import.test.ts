// `docker import` through our client: a busybox-only rootfs tarball becomes a runnable image.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildBusyboxRootfs } from "../../../scripts/testenv/images.ts";
import { isDockerError } from "../../../src/docker/errors.ts";
import { dockerTestEnv } from "../../support/env.ts";
import { busybox, collect, removeSuiteContainers, testClient } from "./helpers.ts";

const env = dockerTestEnv();
const SUITE = `import-${process.pid}`;
const TAG = `import-${process.pid}`;
const REPO = "spacelift-test/imported";

describe.skipIf(!env)("image import", () => {
  const docker = testClient(env!);
  const dir = mkdtempSync(join(tmpdir(), "slwp-import-"));
  afterAll(async () => {
    await removeSuiteContainers(docker, SUITE);
    await fetch(`http://docker/images/${encodeURIComponent(`${REPO}:${TAG}`)}?force=1`, { method: "DELETE", unix: env!.host.replace("unix://", "") })
      .then((r) => r.arrayBuffer()).catch(() => undefined);
    await docker.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("a rootfs tarball is imported, inspected and runs", async () => {
    const tarball = join(dir, "rootfs.tar");
    buildBusyboxRootfs(tarball);
    await docker.imageImport(new Uint8Array(readFileSync(tarball)), REPO, TAG);
    const image = await docker.imageInspect(`${REPO}:${TAG}`);
    expect(image.repoTags).toContain(`${REPO}:${TAG}`);
    expect(image.os).toBe("linux");

    const id = await docker.containerCreate({ ...busybox(env!, SUITE, "echo imported-ok"), image: `${REPO}:${TAG}` });
    const attached = await docker.containerAttach(id);
    const out = collect(attached.frames);
    await docker.containerStart(id);
    expect((await docker.containerWait(id)).exitCode).toBe(0);
    expect((await out).stdout).toBe("imported-ok\n");
  });

  test("a tarball that is not a tar is refused with the daemon's message", async () => {
    const err = await docker.imageImport(new TextEncoder().encode("definitely not a tarball"), REPO, `${TAG}-bad`).catch((e: unknown) => e);
    expect(isDockerError(err)).toBe(true);
    expect((err as Error).message).toStartWith(`import image ${REPO}:${TAG}-bad: `);
  });
});
