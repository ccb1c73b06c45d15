// DOCKER_HOST=tcp://host:port (the DinD sidecar case), on loopback only: a scripted engine on an ephemeral
// port, and the real test daemon reached over TCP through a loopback relay to its unix socket.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect, createServer, type Server, type Socket } from "node:net";
import { createDockerClient } from "../../../src/docker/client.ts";
import { isDockerError } from "../../../src/docker/errors.ts";
import type { DockerClient } from "../../../src/docker/types.ts";
import { dockerTestEnv } from "../../support/env.ts";
import { FAKE_API_VERSION, fakeEngine } from "./fake-engine.ts";
import { busybox, collect, removeSuiteContainers, TEST_LABEL } from "./helpers.ts";

const env = dockerTestEnv();
const SUITE = `tcp-${process.pid}`;

describe("tcp:// DOCKER_HOST", () => {
  test("ping and version reach a fake engine on tcp://127.0.0.1:<ephemeral port>", async () => {
    const engine = await fakeEngine((req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ Version: "20.10.99-fake", ApiVersion: FAKE_API_VERSION, Os: "linux", Arch: "amd64", Host: req.headers.host }));
    }, "tcp");
    try {
      expect(engine.host).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
      const docker = createDockerClient({ host: engine.host, connectTimeoutMs: 1000 });
      expect(await docker.ping()).toEqual({ apiVersion: FAKE_API_VERSION });
      expect((await docker.version()).version).toBe("20.10.99-fake");
      expect(engine.requests).toEqual([`GET /v${FAKE_API_VERSION}/version`]);
      await docker.close();
    } finally {
      await engine.close();
    }
  });

  test("a tcp:// port with nothing listening is daemon-unreachable", async () => {
    const probe = createServer();
    const port = await new Promise<number>((resolve) => probe.listen(0, "127.0.0.1", () => resolve((probe.address() as { port: number }).port)));
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const err = await createDockerClient({ host: `tcp://127.0.0.1:${port}`, connectTimeoutMs: 1000 }).ping().catch((e: unknown) => e);
    expect(isDockerError(err, "daemon-unreachable")).toBe(true);
    expect((err as Error).message).toContain(`tcp://127.0.0.1:${port}`);
  });
});

describe.skipIf(!env?.host.startsWith("unix://"))("tcp:// to the real daemon (loopback relay to its socket)", () => {
  const sockets = new Set<Socket>();
  let relay: Server | undefined;
  let d: DockerClient;
  beforeAll(async () => {
    const socketPath = env!.host.slice("unix://".length);
    relay = createServer((client) => {
      const daemon = connect(socketPath);
      for (const s of [client, daemon]) {
        sockets.add(s);
        s.on("close", () => sockets.delete(s));
        s.on("error", () => undefined);
      }
      client.pipe(daemon).pipe(client);
    });
    const port = await new Promise<number>((resolve) => relay!.listen(0, "127.0.0.1", () => resolve((relay!.address() as { port: number }).port)));
    d = createDockerClient({ host: `tcp://127.0.0.1:${port}` });
  });
  afterAll(async () => {
    await removeSuiteContainers(d, SUITE);
    await d.close();
    sockets.forEach((s) => s.destroy());
    await new Promise<void>((resolve) => (relay ? relay.close(() => resolve()) : resolve()));
  });

  test("ping, version, and a container run with attach over TCP", async () => {
    expect((await d.ping()).apiVersion).toMatch(/^1\.\d+$/);
    expect((await d.version()).os).toBe("linux");
    const id = await d.containerCreate(busybox(env!, SUITE, "echo over-tcp; echo err >&2"));
    const attached = await d.containerAttach(id);
    const out = collect(attached.frames);
    await d.containerStart(id);
    expect((await d.containerWait(id)).exitCode).toBe(0);
    expect(await out).toMatchObject({ stdout: "over-tcp\n", stderr: "err\n" });
    expect((await d.containerList({ labels: { [TEST_LABEL]: SUITE } })).map((c) => c.id)).toEqual([id]);
  });
});
