// Pulls from the test environment's private registry (htpasswd auth on loopback) with credentials resolved
// from config.json: auths, a credential helper on PATH, bad credentials, no credentials, unknown image.
import { afterAll, beforeEach, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { resolveRegistryAuth } from "../../../src/docker/registry-auth.ts";
import { isDockerError } from "../../../src/docker/errors.ts";
import { registryTestEnv } from "../../support/env.ts";
import { testClient } from "./helpers.ts";

const env = registryTestEnv();
const dirs: string[] = [];

function configDir(config: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), "slwp-pull-"));
  dirs.push(dir);
  writeFileSync(join(dir, "config.json"), JSON.stringify(config));
  return dir;
}

describe.skipIf(!env)("pull from a registry with auth", () => {
  const { docker: dockerEnv, registry } = env!;
  const docker = testClient(dockerEnv);
  const basic = (user: string, pass: string) => ({ auths: { [`http://${registry.address}/v2/`]: { auth: Buffer.from(`${user}:${pass}`).toString("base64") } } });

  beforeEach(async () => {
    // Each test pulls for real: the image must not be present beforehand.
    await fetch(`http://docker/images/${encodeURIComponent(registry.image)}?force=1`, {
      method: "DELETE", unix: dockerEnv.host.replace("unix://", ""),
    }).then((r) => r.arrayBuffer()).catch(() => undefined);
  });
  afterAll(async () => {
    await docker.close();
    dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
  });

  test("good credentials from auths: the image is pulled and progress reported", async () => {
    const auth = await resolveRegistryAuth(configDir(basic(registry.username, registry.password)), registry.image);
    const events: string[] = [];
    await docker.imagePull(registry.image, { ...(auth ? { auth } : {}), onProgress: (e) => e.status && events.push(e.status) });
    expect(events.some((s) => s.startsWith("Status: Downloaded newer image") || s.startsWith("Pull complete"))).toBe(true);
    expect((await docker.imageInspect(registry.image)).repoTags).toContain(registry.image);
  });

  test("good credentials from a credential helper on PATH", async () => {
    const bin = mkdtempSync(join(tmpdir(), "slwp-helper-"));
    dirs.push(bin);
    writeFileSync(join(bin, "docker-credential-slwptest"),
      `#!/bin/sh\nread server\n[ "$server" = "${registry.address}" ] || exit 3\necho '{"Username":"${registry.username}","Secret":"${registry.password}"}'\n`);
    chmodSync(join(bin, "docker-credential-slwptest"), 0o755);
    const auth = await resolveRegistryAuth(configDir({ credHelpers: { [registry.address]: "slwptest" } }), registry.image, { path: `${bin}:${process.env.PATH}` });
    await docker.imagePull(registry.image, auth ? { auth } : {});
    expect((await docker.imageInspect(registry.image)).repoTags).toContain(registry.image);
  });

  test("bad credentials: registry-auth-failed", async () => {
    const auth = await resolveRegistryAuth(configDir(basic(registry.username, "wrong-password")), registry.image);
    const err = await docker.imagePull(registry.image, auth ? { auth } : {}).catch((e: unknown) => e);
    expect(isDockerError(err, "registry-auth-failed")).toBe(true);
  });

  test("no credentials: a clear auth error naming the image", async () => {
    const err = await docker.imagePull(registry.image).catch((e: unknown) => e);
    expect(isDockerError(err, "registry-auth-failed")).toBe(true);
    expect((err as Error).message).toContain(registry.image);
  });

  test("unknown image: pull-failed with the registry's message", async () => {
    const auth = await resolveRegistryAuth(configDir(basic(registry.username, registry.password)), registry.image);
    const ref = `${registry.address}/spacelift-test/does-not-exist:nope`;
    const err = await docker.imagePull(ref, auth ? { auth } : {}).catch((e: unknown) => e);
    expect(isDockerError(err, "pull-failed")).toBe(true);
    expect((err as Error).message).toContain("does-not-exist");
  });
});
