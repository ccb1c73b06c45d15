// A daemon that goes away in the middle of an answer (dockerd killed while a run's `wait` is open):
// the error is daemon-unreachable and its message names Docker, so a run that ends this way says why.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createDockerClient } from "../../../src/docker/client.ts";
import { isDockerError } from "../../../src/docker/errors.ts";

const dir = mkdtempSync(join(tmpdir(), "slwp-docker-cut-"));
let server: Server | undefined;
afterAll(() => {
  server?.close();
  rmSync(dir, { recursive: true, force: true });
});

test("a connection Docker closes mid-answer is daemon-unreachable, naming Docker", async () => {
  const path = join(dir, "cut.sock");
  server = createServer((sock) =>
    sock.on("data", (chunk) => {
      if (chunk.toString().includes("/_ping")) {
        sock.write("HTTP/1.1 200 OK\r\nApi-Version: 1.45\r\nContent-Length: 2\r\n\r\nOK");
        return;
      }
      // Headers of a streamed answer, then the daemon is gone.
      sock.write("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
      setTimeout(() => sock.destroy(), 50);
    }),
  );
  await new Promise<void>((resolve) => server!.listen(path, resolve));
  const docker = createDockerClient({ host: `unix://${path}` });
  try {
    const err = await docker.containerWait("c0ffee").catch((e: unknown) => e);
    expect(isDockerError(err, "daemon-unreachable")).toBe(true);
    expect((err as Error).message).toMatch(/^wait for container c0ffee.*: Docker closed the connection \(.+\); did dockerd stop\?$/);
  } finally {
    await docker.close();
  }
});
