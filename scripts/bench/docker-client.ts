/**
 * Our Docker client against dockerode on the same daemon, same operations, same run:
 * 1,000 container inspects; 100 create/start/wait/remove cycles; attach throughput on 200 MB of output.
 * One report row per operation: ours, dockerode as the baseline, and their ratio. The target is "at least
 * as fast on every row", less a noise allowance (MIN_RATIO): a time at most 1/MIN_RATIO of dockerode's, a
 * throughput at least MIN_RATIO of it; `make bench` fails on a row that misses it.
 */
import Dockerode from "dockerode";
import { Writable } from "node:stream";
import { createDockerClient } from "../../src/docker/client.ts";
import { report } from "./lib/report.ts";

const host = process.env.DOCKER_HOST ?? "unix:///var/run/docker.sock";
const image = process.env.TEST_BUSYBOX_IMAGE ?? "spacelift-test/busybox:latest";
const LABEL = { "io.spacelift-bench": "docker-client" };
/** Best-of-N timings on a shared daemon still jitter by a few percent; below this we are really slower. */
const MIN_RATIO = 0.95;
const ours = createDockerClient({ host });
const theirs = new Dockerode(host.startsWith("unix://") ? { socketPath: host.slice(7) } : { host: new URL(host.replace("tcp:", "http:")).hostname, port: Number(new URL(host.replace("tcp:", "http:")).port) });

async function time(fn: () => Promise<void>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

/** Best of `rounds`, alternating which client goes first so neither always gets a warm daemon. */
async function compare(rounds: number, a: () => Promise<void>, b: () => Promise<void>): Promise<[number, number]> {
  let bestA = Infinity;
  let bestB = Infinity;
  for (let i = 0; i < rounds; i++) {
    if (i % 2 === 0) {
      bestA = Math.min(bestA, await time(a));
      bestB = Math.min(bestB, await time(b));
    } else {
      bestB = Math.min(bestB, await time(b));
      bestA = Math.min(bestA, await time(a));
    }
  }
  return [bestA, bestB];
}

/**
 * One row per operation. The value is ours, the baseline dockerode's: a time for calls (lower is better, so
 * the target is a ratio ours/dockerode of at most 1/MIN_RATIO), a rate for throughput (at least MIN_RATIO).
 */
function row(name: string, unit: "ms" | "MB/s", a: number, b: number) {
  const target = unit === "ms" ? { maxRatio: Math.round((1 / MIN_RATIO) * 100) / 100 } : { minRatio: MIN_RATIO };
  report({ name: `Docker client vs dockerode: ${name}`, value: a, unit, baseline: b, target, note: "best of the rounds, alternating which client goes first; baseline: dockerode on the same daemon" });
}

const spec = (cmd: string) => ({ image, entrypoint: ["/bin/sh", "-c"], cmd: [cmd], labels: LABEL });

try {
  // 1,000 inspects of one container.
  const target = await ours.containerCreate(spec("true"));
  const [inspA, inspB] = await compare(
    3,
    async () => { for (let i = 0; i < 1000; i++) await ours.containerInspect(target); },
    async () => { for (let i = 0; i < 1000; i++) await theirs.getContainer(target).inspect(); },
  );
  row("1,000 container inspects", "ms", inspA, inspB);
  await ours.containerRemove(target, { force: true });

  // 100 create/start/wait/remove cycles.
  const [cycA, cycB] = await compare(
    2,
    async () => {
      for (let i = 0; i < 100; i++) {
        const id = await ours.containerCreate(spec("true"));
        await ours.containerStart(id);
        await ours.containerWait(id);
        await ours.containerRemove(id);
      }
    },
    async () => {
      for (let i = 0; i < 100; i++) {
        const c = await theirs.createContainer({ Image: image, Entrypoint: ["/bin/sh", "-c"], Cmd: ["true"], Labels: LABEL });
        await c.start();
        await c.wait();
        await c.remove();
      }
    },
  );
  row("100 create/start/wait/remove", "ms", cycA, cycB);

  // Attach throughput: 200 MB through the hijacked, multiplexed stream.
  const SIZE = 200 * 1024 * 1024;
  const script = `yes 'spacelift attach throughput benchmark line 0123456789' | head -c ${SIZE}`;
  const [attA, attB] = await compare(
    2,
    async () => {
      const id = await ours.containerCreate(spec(script));
      const att = await ours.containerAttach(id);
      await ours.containerStart(id);
      let n = 0;
      for await (const f of att.frames) n += f.data.length;
      if (n !== SIZE) throw new Error(`ours read ${n} bytes`);
      await ours.containerRemove(id, { force: true });
    },
    async () => {
      const c = await theirs.createContainer({ Image: image, Entrypoint: ["/bin/sh", "-c"], Cmd: [script], Labels: LABEL });
      const stream = await c.attach({ stream: true, stdout: true, stderr: true, hijack: true });
      let n = 0;
      const count = () => new Writable({ write(chunk: Buffer, _e, cb) { n += chunk.length; cb(); } });
      const done = new Promise<void>((resolve) => stream.on("end", resolve));
      theirs.modem.demuxStream(stream, count(), count());
      await c.start();
      await done;
      if (n !== SIZE) throw new Error(`dockerode read ${n} bytes`);
      await c.remove({ force: true });
    },
  );
  row("attach 200 MB", "MB/s", 200 / (attA / 1000), 200 / (attB / 1000));
} finally {
  for (const c of await ours.containerList({ labels: LABEL })) await ours.containerRemove(c.id, { force: true });
  await ours.close();
}

