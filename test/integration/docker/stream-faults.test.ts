// Faults inside streaming answers, against a scripted engine on a unix socket in a temp dir: an error inside
// a 200 pull stream, a pull that stalls after its 200, the caller's abort or deadline mid-pull, and a logs
// connection cut mid-stream. Each must end as a DockerError with a stable code, promptly, never a hang.
import { afterEach, describe, expect, test } from "bun:test";
import { createDockerClient } from "../../../src/docker/client.ts";
import { isDockerError, type DockerError } from "../../../src/docker/errors.ts";
import type { PullProgress } from "../../../src/docker/types.ts";
import { fakeEngine, muxFrame, progressLine, type FakeEngine, type Handler } from "./fake-engine.ts";

let engine: FakeEngine | undefined;
const timers: Array<ReturnType<typeof setInterval>> = [];
afterEach(async () => {
  timers.splice(0).forEach(clearInterval);
  await engine?.close();
  engine = undefined;
});

async function client(handler: Handler, options: { pullIdleTimeoutMs?: number } = {}) {
  engine = await fakeEngine(handler);
  return createDockerClient({ host: engine.host, connectTimeoutMs: 1000, idleTimeoutMs: 2000, ...options });
}

/** Answers a pull with 200 and the given lines; `end: false` leaves the stream open afterwards. */
function pullAnswer(lines: object[], end = true): Handler {
  return (_req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    for (const l of lines) res.write(progressLine(l));
    if (end) res.end();
  };
}

/** Answers a pull with a progress line every 50 ms, forever. */
const endlessPull: Handler = (_req, res) => {
  res.writeHead(200, { "content-type": "application/json" });
  let n = 0;
  timers.push(setInterval(() => res.write(progressLine({ status: "Downloading", id: "layer", progressDetail: { current: ++n, total: 1e9 } })), 50));
};

async function failure(p: Promise<unknown>): Promise<{ err: DockerError; ms: number }> {
  const started = Date.now();
  const err = await p.then(() => new Error("expected a failure"), (e: unknown) => e);
  expect(isDockerError(err)).toBe(true);
  return { err: err as DockerError, ms: Date.now() - started };
}

describe("pull stream faults", () => {
  test("an error after progress lines inside the 200 stream is pull-failed with the registry's message", async () => {
    const docker = await client(pullAnswer([
      { status: "Pulling from team/app", id: "v1" },
      { status: "Pulling fs layer", id: "a1b2" },
      { status: "Downloading", id: "a1b2", progressDetail: { current: 10, total: 100 } },
      { errorDetail: { message: "received unexpected HTTP status: 502 Bad Gateway" }, error: "received unexpected HTTP status: 502 Bad Gateway" },
      { status: "never delivered" },
    ]));
    const events: PullProgress[] = [];
    const { err } = await failure(docker.imagePull("registry.example:5000/team/app:v1", { onProgress: (e) => events.push(e) }));
    expect(err.code).toBe("pull-failed");
    expect(err.message).toBe("pull image registry.example:5000/team/app:v1: received unexpected HTTP status: 502 Bad Gateway");
    expect(events.map((e) => e.status)).toEqual(["Pulling from team/app", "Pulling fs layer", "Downloading"]);
    expect(events[2]).toMatchObject({ id: "a1b2", current: 10, total: 100 });
    expect(engine!.requests).toEqual(["POST /v1.41/images/create?fromImage=registry.example%3A5000%2Fteam%2Fapp&tag=v1"]);
  });

  test("an auth error inside the stream (errorDetail code 401) is registry-auth-failed", async () => {
    const docker = await client(pullAnswer([{ status: "Pulling from a" }, { errorDetail: { code: 401, message: "authentication required" }, error: "authentication required" }]));
    const { err } = await failure(docker.imagePull("a"));
    expect(err.code).toBe("registry-auth-failed");
    expect(err.status).toBe(401);
  });

  test("a 200 that then stalls fails with timeout after the pull idle timeout", async () => {
    const docker = await client(pullAnswer([{ status: "Pulling from team/app" }], false), { pullIdleTimeoutMs: 400 });
    const events: PullProgress[] = [];
    const { err, ms } = await failure(docker.imagePull("team/app", { onProgress: (e) => events.push(e) }));
    expect(err.code).toBe("timeout");
    expect(err.message).toContain("no progress from Docker for 0.4s");
    expect(events).toHaveLength(1);
    expect(ms).toBeGreaterThanOrEqual(350);
    expect(ms).toBeLessThan(3000);
  });

  test("the per-call idle timeout overrides the client's", async () => {
    const docker = await client(pullAnswer([{ status: "Pulling from a" }], false), { pullIdleTimeoutMs: 60_000 });
    const { err, ms } = await failure(docker.imagePull("a", { idleTimeoutMs: 300 }));
    expect(err.code).toBe("timeout");
    expect(ms).toBeLessThan(3000);
  });

  test("progress that keeps flowing is not an idle timeout", async () => {
    const docker = await client(endlessPull, { pullIdleTimeoutMs: 300 });
    const ac = new AbortController();
    let events = 0;
    const pulling = docker.imagePull("a", { signal: ac.signal, onProgress: () => void events++ });
    await Bun.sleep(1000); // well past the 300 ms idle timeout
    ac.abort();
    const { err } = await failure(pulling);
    expect(err.code).toBe("aborted");
    expect(events).toBeGreaterThan(5);
  });

  test("the caller's abort mid-pull ends it promptly as aborted", async () => {
    const docker = await client(endlessPull);
    const ac = new AbortController();
    let events = 0;
    const { err, ms } = await failure(docker.imagePull("a", {
      signal: ac.signal,
      onProgress: () => {
        if (++events === 3) ac.abort();
      },
    }));
    expect(err.code).toBe("aborted");
    expect(events).toBe(3);
    expect(ms).toBeLessThan(2000);
  });

  test("a caller's deadline (AbortSignal.timeout) mid-pull is timeout, not aborted", async () => {
    const docker = await client(endlessPull);
    let events = 0;
    const { err, ms } = await failure(docker.imagePull("a", { signal: AbortSignal.timeout(400), onProgress: () => void events++ }));
    expect(err.code).toBe("timeout");
    expect(events).toBeGreaterThan(0);
    expect(ms).toBeLessThan(2000);
  });
});

describe("logs stream faults", () => {
  test("a connection cut mid-stream is a DockerError with the socket error as cause", async () => {
    const docker = await client((_req, res) => {
      res.writeHead(200, { "content-type": "application/vnd.docker.multiplexed-stream" });
      res.write(muxFrame(1, "first line\n"));
      setTimeout(() => res.socket?.destroy(), 100);
    });
    const got: string[] = [];
    const { err } = await failure((async () => {
      for await (const f of docker.containerLogs("abc", { follow: true })) got.push(new TextDecoder().decode(f.data));
    })());
    expect(got).toEqual(["first line\n"]);
    expect(err.message).toStartWith("logs of container abc: ");
    expect(err.cause).toBeInstanceOf(Error);
    expect(isDockerError(err.cause)).toBe(false);
  });

  test("a malformed frame header in a logs stream is daemon-error", async () => {
    const docker = await client((_req, res) => {
      res.writeHead(200);
      res.end(Buffer.from("this is a TTY stream, not a multiplexed one\n"));
    });
    const { err } = await failure((async () => {
      for await (const _ of docker.containerLogs("abc")) void _;
    })());
    expect(err.code).toBe("daemon-error");
    expect(err.message).toContain("malformed Docker stream");
  });
});
