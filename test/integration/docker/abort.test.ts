// The caller's AbortSignal mid-flight on the real daemon: after the attach upgrade, during a wait and during
// follow logs. Each call ends promptly with a DockerError (aborted, or timeout for AbortSignal.timeout), and
// the container itself is not affected. Without a signal, a quiet attachment is never timed out.
import { afterAll, describe, expect, test } from "bun:test";
import { createDockerClient } from "../../../src/docker/client.ts";
import { isDockerError, type DockerError } from "../../../src/docker/errors.ts";
import type { OutputFrame } from "../../../src/docker/demux.ts";
import { dockerTestEnv } from "../../support/env.ts";
import { busybox, collect, removeSuiteContainers, testClient } from "./helpers.ts";

const env = dockerTestEnv();
const SUITE = `abort-${process.pid}`;
const TICKING = "while true; do echo tick; sleep 0.05; done";

/** Reads frames until the stream fails; `onFrame` runs for each. Returns the failure and when it came. */
async function readUntilFailure(frames: AsyncIterable<OutputFrame>, onFrame: (n: number) => void): Promise<{ err: DockerError; frames: number; at: number }> {
  let n = 0;
  try {
    for await (const _ of frames) onFrame(++n);
  } catch (err) {
    expect(isDockerError(err)).toBe(true);
    return { err: err as DockerError, frames: n, at: Date.now() };
  }
  throw new Error(`the stream ended normally after ${n} frames`);
}

describe.skipIf(!env)("abort mid-flight", () => {
  const docker = testClient(env!);
  afterAll(async () => {
    await removeSuiteContainers(docker, SUITE);
    await docker.close();
  });

  async function ticking(): Promise<string> {
    return await docker.containerCreate(busybox(env!, SUITE, TICKING));
  }

  test("abort after the attach upgrade ends the frames with aborted; the container keeps running", async () => {
    const id = await ticking();
    const ac = new AbortController();
    const attached = await docker.containerAttach(id, { signal: ac.signal });
    await docker.containerStart(id);
    let abortedAt = 0;
    const { err, frames, at } = await readUntilFailure(attached.frames, (n) => {
      if (n === 3) {
        abortedAt = Date.now();
        ac.abort();
      }
    });
    expect(err.code).toBe("aborted");
    expect(err.message).toContain(`attach to container ${id.slice(0, 12)}`);
    expect(frames).toBe(3); // nothing is delivered after the abort
    expect(at - abortedAt).toBeLessThan(1000);
    expect((await docker.containerInspect(id)).state.running).toBe(true);
  });

  test("abort while the consumer is not reading: the next read fails with aborted", async () => {
    const id = await ticking();
    const ac = new AbortController();
    const attached = await docker.containerAttach(id, { signal: ac.signal });
    await docker.containerStart(id);
    await Bun.sleep(300);
    ac.abort();
    const { err, frames } = await readUntilFailure(attached.frames, () => undefined);
    expect(err.code).toBe("aborted");
    expect(frames).toBe(0);
  });

  test("a deadline (AbortSignal.timeout) after the upgrade ends the frames with timeout", async () => {
    const id = await ticking();
    const attached = await docker.containerAttach(id, { signal: AbortSignal.timeout(700) });
    await docker.containerStart(id);
    const started = Date.now();
    const { err, frames, at } = await readUntilFailure(attached.frames, () => undefined);
    expect(err.code).toBe("timeout");
    expect(frames).toBeGreaterThan(0);
    expect(at - started).toBeLessThan(3000);
  });

  test("close() without a signal still ends the frames normally", async () => {
    const id = await ticking();
    const attached = await docker.containerAttach(id);
    await docker.containerStart(id);
    let n = 0;
    for await (const _ of attached.frames) if (++n === 2) attached.close();
    expect(n).toBeGreaterThanOrEqual(2);
  });

  test("a quiet attachment outlives the client's idle timeout (it only bounds the upgrade answer)", async () => {
    const impatient = createDockerClient({ host: env!.host, idleTimeoutMs: 300 });
    try {
      const id = await impatient.containerCreate(busybox(env!, SUITE, "sleep 1.2; echo late"));
      const attached = await impatient.containerAttach(id);
      const out = collect(attached.frames);
      await impatient.containerStart(id);
      expect((await out).stdout).toBe("late\n");
    } finally {
      await impatient.close();
    }
  });

  test("abort during a wait rejects promptly with aborted; a deadline with timeout", async () => {
    const id = await ticking();
    await docker.containerStart(id);
    const ac = new AbortController();
    const waiting = docker.containerWait(id, ac.signal).catch((e: unknown) => e);
    await Bun.sleep(300);
    const abortedAt = Date.now();
    ac.abort();
    const err = await waiting;
    expect(isDockerError(err, "aborted")).toBe(true);
    expect(Date.now() - abortedAt).toBeLessThan(1000);

    const started = Date.now();
    const late = await docker.containerWait(id, AbortSignal.timeout(400)).catch((e: unknown) => e);
    expect(isDockerError(late, "timeout")).toBe(true);
    expect(Date.now() - started).toBeLessThan(2000);
    expect((await docker.containerInspect(id)).state.running).toBe(true);
  });

  test("abort during follow logs ends the stream with aborted", async () => {
    const id = await ticking();
    await docker.containerStart(id);
    const ac = new AbortController();
    const { err, frames } = await readUntilFailure(docker.containerLogs(id, { follow: true, signal: ac.signal }), (n) => n === 2 && ac.abort());
    expect(err.code).toBe("aborted");
    expect(frames).toBe(2);
  });
});
