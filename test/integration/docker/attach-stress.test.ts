// Attach demultiplexing under load: interleaved streams, binary bytes, long lines, and 100 MB of output
// checked by hash while RSS stays bounded (backpressure to the consumer, no buffering of the output).
import { afterAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { dockerTestEnv } from "../../support/env.ts";
import type { DockerClient } from "../../../src/docker/types.ts";
import { busybox, collect, removeSuiteContainers, testClient } from "./helpers.ts";

const env = dockerTestEnv();
const SUITE = `attach-${process.pid}`;

async function runAttached(docker: DockerClient, script: string) {
  const id = await docker.containerCreate(busybox(env!, SUITE, script));
  const attached = await docker.containerAttach(id);
  await docker.containerStart(id);
  return { id, frames: attached.frames };
}

describe.skipIf(!env)("attach", () => {
  const docker = testClient(env!);
  afterAll(async () => {
    await removeSuiteContainers(docker, SUITE);
    await docker.close();
  });

  test("interleaved stdout and stderr arrive separated and in order per stream", async () => {
    const { frames } = await runAttached(docker, "i=0; while [ $i -lt 200 ]; do echo out$i; echo err$i >&2; i=$((i+1)); done");
    const out = await collect(frames);
    const want = (p: string) => Array.from({ length: 200 }, (_, i) => `${p}${i}\n`).join("");
    expect(out.stdout).toBe(want("out"));
    expect(out.stderr).toBe(want("err"));
    expect(new Set(out.order)).toEqual(new Set(["stdout", "stderr"]));
  });

  test("binary bytes pass unchanged (hash computed inside the container)", async () => {
    const { frames } = await runAttached(docker, "head -c 3000000 /dev/urandom > /tmp/blob; sha256sum /tmp/blob | cut -d' ' -f1 >&2; cat /tmp/blob");
    const hash = createHash("sha256");
    let stderr = "";
    for await (const f of frames) {
      if (f.stream === "stdout") hash.update(f.data);
      else stderr += new TextDecoder().decode(f.data);
    }
    expect(hash.digest("hex")).toBe(stderr.trim());
  });

  test("a 2 MB line without a newline arrives whole", async () => {
    const { frames } = await runAttached(docker, "head -c 2097152 /dev/zero | tr '\\0' 'x'");
    const out = await collect(frames);
    expect(out.stdout.length).toBe(2097152);
    expect(/^x+$/.test(out.stdout)).toBe(true);
  });

  test("100 MB of output: content checked by hash, memory held stays bounded", async () => {
    const size = 100 * 1024 * 1024;
    const line = "spacelift worker pool attach throughput line 0123456789\n";
    const { frames } = await runAttached(docker, `yes '${line.slice(0, -1)}' | head -c ${size}`);
    const expected = createHash("sha256");
    const block = Buffer.from(line.repeat(Math.ceil(65536 / line.length)));
    for (let left = size; left > 0; left -= block.length) expected.update(block.subarray(0, Math.min(left, block.length)));

    // What the client holds on to: live heap and buffers after a full collection. (RSS would also count
    // garbage not yet collected, which depends on what else ran in this process, not on the client.)
    const held = () => {
      Bun.gc(true);
      const m = process.memoryUsage();
      return m.heapUsed + m.external;
    };
    const before = held();
    let peak = before;
    let bytes = 0;
    let samples = 0;
    const got = createHash("sha256");
    for await (const f of frames) {
      got.update(f.data);
      bytes += f.data.length;
      if ((bytes & 0xffffff) < f.data.length) {
        peak = Math.max(peak, held());
        samples++;
      }
    }
    expect(bytes).toBe(size);
    expect(got.digest("hex")).toBe(expected.digest("hex"));
    expect(samples).toBeGreaterThanOrEqual(5);
    // The output is 100 MB; holding it (or a large part of it) would show here.
    expect(peak - before).toBeLessThan(32 * 1024 * 1024);
  }, 120_000);
});
