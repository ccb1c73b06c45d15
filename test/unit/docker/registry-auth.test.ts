// Registry name normalisation and credential resolution from config.json (auths, credHelpers, credsStore).
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { normaliseRegistry, registryOf, resolveRegistryAuth } from "../../../src/docker/registry-auth.ts";
import { isDockerError } from "../../../src/docker/errors.ts";
import { splitImageRef } from "../../../src/docker/pull.ts";

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
function configDir(config: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), "slwp-dockercfg-"));
  dirs.push(dir);
  writeFileSync(join(dir, "config.json"), typeof config === "string" ? config : JSON.stringify(config));
  return dir;
}
function helper(name: string, script: string): string {
  const dir = mkdtempSync(join(tmpdir(), "slwp-credhelper-"));
  dirs.push(dir);
  const file = join(dir, `docker-credential-${name}`);
  writeFileSync(file, `#!/bin/sh\n${script}\n`);
  chmodSync(file, 0o755);
  return `${dir}:${process.env.PATH}`;
}

describe("registry names", () => {
  test.each([
    ["busybox", "docker.io"],
    ["library/busybox:1.36", "docker.io"],
    ["spacelift/runner-terraform:latest", "docker.io"],
    ["docker.io/library/alpine", "docker.io"],
    ["index.docker.io/library/alpine", "docker.io"],
    ["ghcr.io/org/image:tag", "ghcr.io"],
    ["localhost/image", "localhost"],
    ["127.0.0.1:5000/team/image@sha256:abc", "127.0.0.1:5000"],
    ["Registry.Example.com:443/a/b", "registry.example.com:443"],
  ])("%s pulls from %s", (ref, registry) => expect(registryOf(ref)).toBe(registry));

  test.each([
    ["https://index.docker.io/v1/", "docker.io"],
    ["registry-1.docker.io", "docker.io"],
    ["http://127.0.0.1:5000/v2/", "127.0.0.1:5000"],
    ["ghcr.io", "ghcr.io"],
  ])("config key %s means %s", (key, registry) => expect(normaliseRegistry(key)).toBe(registry));

  test("image refs without tag get latest; digests and ports are kept", () => {
    expect(splitImageRef("busybox")).toEqual({ name: "busybox", tag: "latest" });
    expect(splitImageRef("127.0.0.1:5000/a/b")).toEqual({ name: "127.0.0.1:5000/a/b", tag: "latest" });
    expect(splitImageRef("127.0.0.1:5000/a/b:v1")).toEqual({ name: "127.0.0.1:5000/a/b", tag: "v1" });
    expect(splitImageRef("a/b@sha256:0123")).toEqual({ name: "a/b", tag: "sha256:0123" });
  });
});

describe("credentials from config.json", () => {
  test("auths.auth is base64 user:password; Docker Hub keys match Hub images", async () => {
    const dir = configDir({ auths: { "https://index.docker.io/v1/": { auth: Buffer.from("alice:s3:cret").toString("base64") } } });
    expect(await resolveRegistryAuth(dir, "spacelift/runner:1")).toEqual({
      username: "alice", password: "s3:cret", serveraddress: "https://index.docker.io/v1/",
    });
    expect(await resolveRegistryAuth(dir, "ghcr.io/a/b")).toBeUndefined();
  });

  test("identitytoken is sent instead of a password", async () => {
    const dir = configDir({ auths: { "registry.example.com": { identitytoken: "tok-123" } } });
    expect(await resolveRegistryAuth(dir, "registry.example.com/a/b:1")).toEqual({ identitytoken: "tok-123", serveraddress: "registry.example.com" });
  });

  test("credHelpers win over auths and get the server on stdin", async () => {
    const path = helper("slwp1", 'read server; echo "{\\"ServerURL\\":\\"$server\\",\\"Username\\":\\"bob\\",\\"Secret\\":\\"from-$server\\"}"');
    const dir = configDir({ auths: { "127.0.0.1:5000": { auth: Buffer.from("x:y").toString("base64") } }, credHelpers: { "127.0.0.1:5000": "slwp1" } });
    expect(await resolveRegistryAuth(dir, "127.0.0.1:5000/a/b", { path })).toEqual({
      username: "bob", password: "from-127.0.0.1:5000", serveraddress: "127.0.0.1:5000",
    });
  });

  test("credsStore is the default for registries without an entry; <token> means identity token", async () => {
    const path = helper("slwp2", 'echo "{\\"Username\\":\\"<token>\\",\\"Secret\\":\\"refresh\\"}"');
    const dir = configDir({ credsStore: "slwp2" });
    expect(await resolveRegistryAuth(dir, "quay.io/a/b", { path })).toEqual({ identitytoken: "refresh", serveraddress: "quay.io" });
  });

  test("credsStore is asked before auths; when it has nothing for the registry the auths entry is used", async () => {
    const store = helper("slwp5", 'read server; [ "$server" = quay.io ] || { echo "credentials not found in native keychain"; exit 1; }; echo "{\\"Username\\":\\"store-user\\",\\"Secret\\":\\"store-pass\\"}"');
    const auths = { "quay.io": { auth: Buffer.from("file-user:file-pass").toString("base64") }, "ghcr.io": { auth: Buffer.from("gh:pat").toString("base64") } };
    const dir = configDir({ credsStore: "slwp5", auths });
    expect(await resolveRegistryAuth(dir, "quay.io/a/b", { path: store })).toEqual({ username: "store-user", password: "store-pass", serveraddress: "quay.io" });
    expect(await resolveRegistryAuth(dir, "ghcr.io/a/b", { path: store })).toEqual({ username: "gh", password: "pat", serveraddress: "ghcr.io" });
  });

  test("a helper's not-found answer means anonymous; other helper failures are registry-auth-failed", async () => {
    const notFound = helper("slwp3", "echo 'credentials not found in native keychain'; exit 1");
    expect(await resolveRegistryAuth(configDir({ credsStore: "slwp3" }), "quay.io/a", { path: notFound })).toBeUndefined();
    const broken = helper("slwp4", "echo 'keychain locked' >&2; exit 1");
    const err = await resolveRegistryAuth(configDir({ credsStore: "slwp4" }), "quay.io/a", { path: broken }).catch((e: unknown) => e);
    expect(isDockerError(err, "registry-auth-failed")).toBe(true);
    expect((err as Error).message).toContain("keychain locked");
    const missing = await resolveRegistryAuth(configDir({ credsStore: "nope-not-installed" }), "quay.io/a", { path: "/nonexistent" }).catch((e: unknown) => e);
    expect(isDockerError(missing, "registry-auth-failed")).toBe(true);
    expect((missing as Error).message).toContain("docker-credential-nope-not-installed");
  });

  test("no config dir or no config.json means anonymous; invalid JSON is a clear error", async () => {
    expect(await resolveRegistryAuth(undefined, "busybox")).toBeUndefined();
    const empty = mkdtempSync(join(tmpdir(), "slwp-dockercfg-"));
    dirs.push(empty);
    expect(await resolveRegistryAuth(empty, "busybox")).toBeUndefined();
    const err = await resolveRegistryAuth(configDir("{not json"), "busybox").catch((e: unknown) => e);
    expect((err as Error).message).toContain("config.json is not valid JSON");
  });
});
