import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { ParseResult } from "../../../src/config/parse-result.ts";
import {
  parseBoolean,
  parseDockerConfigDir,
  parseDockerHost,
  parseHttpUrl,
  parseImageReference,
  parseNetworkName,
  parseProtocol,
  parseReadableFile,
} from "../../../src/config/values.ts";
import { unprivilegedJson } from "../../support/unprivileged.ts";

function value<T>(r: ParseResult<T>): T {
  if (!r.ok) throw new Error(r.problems.join(" | "));
  return r.value;
}
function problem<T>(r: ParseResult<T>): string {
  if (r.ok) throw new Error(`expected a problem, got ${JSON.stringify(r.value)}`);
  return r.problems.join(" | ");
}

describe("booleans", () => {
  test.each(["true", "TRUE", "1", "yes", "Yes"])("%p is true", (t) => expect(value(parseBoolean(t))).toBe(true));
  test.each(["false", "False", "0", "no", "NO"])("%p is false", (t) => expect(value(parseBoolean(t))).toBe(false));
  test.each(["maybe", "on", "", "2", "t"])("%p is an error", (t) => expect(problem(parseBoolean(t))).toContain("not a boolean; use true or false"));
});

test("protocols", () => {
  expect(value(parseProtocol("MQTT"))).toBe("mqtt");
  expect(value(parseProtocol("poll"))).toBe("poll");
  expect(problem(parseProtocol("http"))).toContain("\"http\" is not a protocol; use mqtt");
});

test("http(s) URLs", () => {
  expect(value(parseHttpUrl("https://mothership.internal:8443/"))).toBe("https://mothership.internal:8443");
  expect(problem(parseHttpUrl("mothership.internal"))).toContain("is not a URL");
  expect(problem(parseHttpUrl("ftp://x"))).toContain("is not an http(s) URL");
});

test("Docker host: unix socket or tcp host:port only", () => {
  expect(value(parseDockerHost("unix:///var/run/docker.sock"))).toEqual({ kind: "unix", socketPath: "/var/run/docker.sock", url: "unix:///var/run/docker.sock" });
  expect(value(parseDockerHost("tcp://127.0.0.1:2375"))).toMatchObject({ kind: "tcp", host: "127.0.0.1", port: 2375 });
  expect(value(parseDockerHost("tcp://[::1]:2376"))).toMatchObject({ kind: "tcp", host: "::1", port: 2376 });
  expect(problem(parseDockerHost("ssh://me@host"))).toContain("unsupported scheme");
  expect(problem(parseDockerHost("npipe:////./pipe/docker_engine"))).toContain("unsupported scheme");
  expect(problem(parseDockerHost("/var/run/docker.sock"))).toContain("unsupported scheme");
  expect(problem(parseDockerHost("unix://docker.sock"))).toContain("socket path is not absolute");
  expect(problem(parseDockerHost("tcp://docker"))).toContain("needs a host and a port");
  expect(problem(parseDockerHost("tcp://docker:99999"))).toContain("not a tcp://host:port");
  expect(problem(parseDockerHost("tcp://docker:2375/v1.41"))).toContain("must be only tcp://host:port");
});

test("network and image names", () => {
  expect(value(parseNetworkName("my_net.1"))).toBe("my_net.1");
  expect(problem(parseNetworkName("-net"))).toContain("not a Docker network name");
  expect(problem(parseNetworkName("my net"))).toContain("not a Docker network name");
  for (const ok of [
    "alpine",
    "alpine:3.20",
    "public.ecr.aws/spacelift/runner-terraform:latest",
    "localhost:5000/team/runner:v1.2.3",
    "registry.internal:5000/runner@sha256:" + "a".repeat(64),
    "[::1]:5000/runner",
  ]) {
    expect(value(parseImageReference(ok))).toBe(ok);
  }
  for (const bad of ["Alpine", "alpine:", "runner image", "a//b", ":tag", "alpine@sha256:xyz"]) {
    expect(problem(parseImageReference(bad))).toContain("not a Docker image reference");
  }
});

describe("files and directories (checked at load)", () => {
  let dir = "";
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "config-values-"));
    // Reachable by the unprivileged child that checks the unreadable file.
    chmodSync(dir, 0o755);
    writeFileSync(join(dir, "policy.rego"), "package spacelift\n");
    writeFileSync(join(dir, "secret.rego"), "package spacelift\n");
    chmodSync(join(dir, "secret.rego"), 0o000);
    mkdirSync(join(dir, "docker"));
    writeFileSync(join(dir, "docker", "config.json"), "{}");
    mkdirSync(join(dir, "empty"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("a readable policy file; missing and a directory are errors", () => {
    expect(value(parseReadableFile(join(dir, "policy.rego"), "good"))).toBe(join(dir, "policy.rego"));
    expect(problem(parseReadableFile(join(dir, "nope.rego"), "good"))).toContain("does not exist; good");
    expect(problem(parseReadableFile(dir, "good"))).toContain("is not a regular file");
  });

  test("a file the launcher's user cannot read is an error (as an ordinary user: root reads everything)", () => {
    const values = resolve(import.meta.dir, "../../../src/config/values.ts");
    const script = `import { parseReadableFile } from ${JSON.stringify(values)};
      const path = await Bun.stdin.json();
      console.log(JSON.stringify({ uid: process.getuid(), result: parseReadableFile(path, "good") }));`;
    const secret = unprivilegedJson<{ uid: number; result: ParseResult<string> }>(script, join(dir, "secret.rego"));
    expect(secret.uid).not.toBe(0);
    expect(problem(secret.result)).toBe(`"${join(dir, "secret.rego")}" is not readable by this user; good`);
    // The same child reads a readable file, so the error above is about the mode, not the child.
    expect(value(unprivilegedJson<{ result: ParseResult<string> }>(script, join(dir, "policy.rego")).result)).toBe(join(dir, "policy.rego"));
  });

  test("Docker config dir: absolute, existing, holding config.json", () => {
    expect(value(parseDockerConfigDir(join(dir, "docker")))).toBe(join(dir, "docker"));
    expect(problem(parseDockerConfigDir("docker"))).toContain("is not an absolute path");
    expect(problem(parseDockerConfigDir(join(dir, "missing")))).toContain("does not exist");
    expect(problem(parseDockerConfigDir(join(dir, "policy.rego")))).toContain("is not a directory");
    expect(problem(parseDockerConfigDir(join(dir, "empty")))).toContain("has no readable config.json");
  });
});
