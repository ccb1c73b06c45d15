// A daemon that is not there, or does not answer, is a daemon-unreachable / timeout error within the
// configured connect and idle timeouts — never a hang.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createDockerClient } from "../../../src/docker/client.ts";
import { isDockerError } from "../../../src/docker/errors.ts";

const dir = mkdtempSync(join(tmpdir(), "slwp-docker-unreachable-"));
const servers: Server[] = [];
afterAll(() => {
  for (const s of servers) s.close();
  rmSync(dir, { recursive: true, force: true });
});

function listen(server: Server, path: string): Promise<void> {
  servers.push(server);
  return new Promise((resolve) => server.listen(path, resolve));
}

describe("unreachable Docker", () => {
  test("a socket path with nothing behind it", async () => {
    const docker = createDockerClient({ host: `unix://${join(dir, "missing.sock")}`, connectTimeoutMs: 1000 });
    const started = Date.now();
    const err = await docker.ping().catch((e: unknown) => e);
    expect(isDockerError(err, "daemon-unreachable")).toBe(true);
    expect((err as Error).message).toContain("missing.sock");
    expect(Date.now() - started).toBeLessThan(5000);
  });

  test("a path that is a plain file, not a socket", async () => {
    const file = join(dir, "not-a-socket");
    writeFileSync(file, "");
    const err = await createDockerClient({ host: `unix://${file}`, connectTimeoutMs: 1000 }).ping().catch((e: unknown) => e);
    expect(isDockerError(err, "daemon-unreachable")).toBe(true);
  });

  test("a socket that accepts but never answers times out", async () => {
    const path = join(dir, "silent.sock");
    await listen(createServer(() => {}), path);
    const docker = createDockerClient({ host: `unix://${path}`, connectTimeoutMs: 1000, idleTimeoutMs: 500 });
    const err = await docker.ping().catch((e: unknown) => e);
    expect(isDockerError(err, "timeout")).toBe(true);
  });

  test("a daemon older than the minimum API version is an api-version error", async () => {
    const path = join(dir, "old.sock");
    await listen(
      createServer((sock) => sock.once("data", () => sock.end("HTTP/1.1 200 OK\r\nApi-Version: 1.24\r\nContent-Length: 2\r\n\r\nOK"))),
      path,
    );
    const err = await createDockerClient({ host: `unix://${path}` }).ping().catch((e: unknown) => e);
    expect(isDockerError(err, "api-version")).toBe(true);
    expect((err as Error).message).toContain("1.24");
  });

  test("bad DOCKER_HOST values are rejected with an example", () => {
    expect(() => createDockerClient({ host: "ssh://somewhere" })).toThrow("use unix:///path/to/docker.sock or tcp://host:port");
    expect(() => createDockerClient({ host: "unix://relative.sock" })).toThrow("absolute");
  });
});
