// The launcher's Docker probe against the real dockerd through a relay the test stops and starts,
// and against a socket that accepts but never answers: the status, its one-line reason, and that
// listeners hear each change once (the agent sends a heartbeat on each).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createDockerClient } from "../../../src/docker/client.ts";
import { DockerHealth } from "../../../src/launcher/agent/docker-health.ts";
import { silentLogger } from "../../../src/log/logger.ts";
import type { DockerHealthReport } from "../../../src/protocol/messages.ts";
import { DockerRelay } from "../../support/docker-relay.ts";
import { dockerTestEnv } from "../../support/env.ts";

const env = dockerTestEnv();
const dir = mkdtempSync(join(tmpdir(), "docker-health-"));
let silent: Server | undefined;
afterAll(() => {
  silent?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!env)("Docker health probe", () => {
  let relay: DockerRelay;
  beforeAll(async () => {
    relay = new DockerRelay(join(dir, "relay.sock"), env!.host);
    await relay.start();
  });
  afterAll(async () => relay?.stop());

  test("ok while Docker answers; not ok with the reason when it is gone; ok again when it is back; each change heard once", async () => {
    const docker = createDockerClient({ host: relay.dockerHost, connectTimeoutMs: 1000 });
    const health = new DockerHealth({ ping: (signal) => docker.ping(signal), endpoint: relay.dockerHost, logger: silentLogger });
    const heard: DockerHealthReport[] = [];
    health.onChange((s) => heard.push(s));
    try {
      expect(await health.probe()).toEqual({ ok: true, message: "" });
      expect(heard).toEqual([]);
      await relay.stop();
      const down = await health.probe();
      expect(down.ok).toBe(false);
      expect(down.message).toStartWith(`cannot reach Docker at ${relay.dockerHost}`);
      expect(down.message).not.toContain("\n");
      expect(await health.probe()).toEqual(down);
      expect(heard).toEqual([down]);
      expect(health.status).toEqual(down);
      await relay.start();
      expect(await health.probe()).toEqual({ ok: true, message: "" });
      expect(heard).toEqual([down, { ok: true, message: "" }]);
    } finally {
      await docker.close();
    }
  });

  test("a daemon that accepts but never answers is not ok within the probe's limit, and the reason says so", async () => {
    const path = join(dir, "silent.sock");
    silent = createServer(() => {});
    await new Promise<void>((resolve) => silent!.listen(path, resolve));
    const docker = createDockerClient({ host: `unix://${path}` });
    const health = new DockerHealth({ ping: (signal) => docker.ping(signal), endpoint: `unix://${path}`, logger: silentLogger, timeoutMs: 500 });
    const started = Date.now();
    try {
      expect(await health.probe()).toEqual({ ok: false, message: `Docker at unix://${path} did not answer /_ping within 0.5 s` });
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      await docker.close();
    }
  });
});
