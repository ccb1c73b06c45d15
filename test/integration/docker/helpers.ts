/** Shared pieces of the Docker integration tests: a client on the test engine and label-based cleanup. */
import { createDockerClient } from "../../../src/docker/client.ts";
import type { ContainerSpec, DockerClient } from "../../../src/docker/types.ts";
import type { DockerTestEnv } from "../../support/env.ts";

export const TEST_LABEL = "io.spacelift-test.suite";

export function testClient(env: DockerTestEnv): DockerClient {
  return createDockerClient({ host: env.host });
}

/** A container spec on the busybox test image, labelled so cleanup finds it. */
export function busybox(env: DockerTestEnv, suite: string, script: string, extra: Partial<ContainerSpec> = {}): ContainerSpec {
  return { image: env.image, entrypoint: ["/bin/sh", "-c"], cmd: [script], labels: { [TEST_LABEL]: suite }, ...extra };
}

export async function removeSuiteContainers(docker: DockerClient, suite: string): Promise<void> {
  for (const c of await docker.containerList({ labels: { [TEST_LABEL]: suite } })) {
    await docker.containerRemove(c.id, { force: true });
  }
}

export async function collect(frames: AsyncIterable<{ stream: string; data: Uint8Array }>): Promise<{ stdout: string; stderr: string; order: string[] }> {
  const out = { stdout: "", stderr: "", order: [] as string[] };
  const dec = { stdout: new TextDecoder(), stderr: new TextDecoder() };
  for await (const f of frames) {
    if (f.stream !== "stdout" && f.stream !== "stderr") continue;
    out[f.stream] += dec[f.stream].decode(f.data, { stream: true });
    out.order.push(f.stream);
  }
  return out;
}
