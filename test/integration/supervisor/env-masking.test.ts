// What a run container sees and what leaves it, on the real Docker Engine: secrets (the run's and
// SPACELIFT_MASK_ENVS) never reach the sink however they are written; ro_/wo_ variables and RO/WO mounts
// reach exactly the right kind of run.
import { beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { LauncherConfig } from "../../../src/config/launcher-config.ts";
import type { DockerClient } from "../../../src/docker/types.ts";
import type { RunSupervisor } from "../../../src/launcher/supervisor/run-supervisor.ts";
import { dockerTestEnv } from "../../support/env.ts";
import { rng } from "../../support/random.ts";
import {
  RecordingSink, containerInspectRaw, dockerClient, ensureLauncherBuilt, scratch, spec, supervisor, testConfig,
  type Scratch, expectCleanTeardown } from "./harness.ts";

const env = dockerTestEnv();
const never = new AbortController().signal;

const RUN_SECRET = "run-secret-0123456789";
const LAUNCHER_SECRET = "launcher-mask-ABCDEFGHIJ";
const WORKER = `test-worker-${crypto.randomUUID()}`;
const MULTILINE_SECRET = "-----BEGIN KEY-----\nline-one-of-the-key\nline-two-of-the-key\n-----END KEY-----";

describe.skipIf(env === undefined)("run supervisor: environment, mounts and masking", () => {
  const docker = env ? dockerClient(env) : (undefined as unknown as DockerClient);
  let dir: Scratch;
  let config: LauncherConfig;
  let sup: RunSupervisor;

  beforeAll(async () => {
    ensureLauncherBuilt();
    dir = scratch();
    for (const name of ["all", "ro", "wo"]) {
      mkdirSync(join(dir.dir, "mounts", name), { recursive: true });
      writeFileSync(join(dir.dir, "mounts", name, "marker"), `mount-${name}\n`);
    }
    const m = (name: string) => `${join(dir.dir, "mounts", name)}:/mnt/${name}:ro`;
    config = testConfig(env!, dir.dir, {
      SPACELIFT_WHITELIST_ENVS: "FOR_ALL,ro_FOR_PLANS,wo_FOR_APPLIES",
      SPACELIFT_MASK_ENVS: "LAUNCHER_SECRET",
      FOR_ALL: "value-all",
      FOR_PLANS: "value-plans",
      FOR_APPLIES: "value-applies",
      LAUNCHER_SECRET,
      SPACELIFT_WORKER_EXTRA_MOUNTS: m("all"),
      SPACELIFT_WORKER_RO_EXTRA_MOUNTS: m("ro"),
      SPACELIFT_WORKER_WO_EXTRA_MOUNTS: m("wo"),
    });
    sup = supervisor(env!, config, { workerId: WORKER });
    await sup.ready();
  }, 120_000);

  expectCleanTeardown(docker, () => dir);

  const probe = [
    'echo "env ${FOR_ALL:-unset} ${FOR_PLANS:-unset} ${FOR_APPLIES:-unset}"',
    "for m in all ro wo; do if [ -e /mnt/$m/marker ]; then cat /mnt/$m/marker; else echo no-$m; fi; done",
    "touch /mnt/all/x 2>/dev/null && echo all-writable || echo all-read-only",
  ];

  test("a read-only (PROPOSED) run gets the all and ro_ variables and mounts, never the wo_ ones", async () => {
    const sink = new RecordingSink();
    const result = await sup.execute(spec(env!.image, [{ name: "planning", commands: probe }], { type: "PROPOSED" }), sink, never);
    expect(result.reason).toBe("ok");
    expect(sink.byPhase()[1]!.text).toBe("env value-all value-plans unset\nmount-all\nmount-ro\nno-wo\nall-read-only\n");
  }, 30_000);

  for (const type of ["TRACKED", "TASK", "DESTROY"] as const) {
    test(`a write (${type}) run gets the all and wo_ variables and mounts, never the ro_ ones`, async () => {
      const sink = new RecordingSink();
      const result = await sup.execute(spec(env!.image, [{ name: "applying", commands: probe }], { type }), sink, never);
      expect(result.reason).toBe("ok");
      expect(sink.byPhase()[1]!.text).toBe("env value-all unset value-applies\nmount-all\nno-ro\nmount-wo\nall-read-only\n");
    }, 30_000);
  }

  test("secrets never reach the sink: whole, split across writes and reads, multi-line, from the launcher's mask list", async () => {
    const sink = new RecordingSink();
    const half = RUN_SECRET.length / 2;
    const run = spec(
      env!.image,
      [
        {
          name: "planning",
          commands: [
            'echo "whole: $TOKEN"',
            `printf 'split: ${RUN_SECRET.slice(0, half)}'; sleep 0.3; printf '${RUN_SECRET.slice(half)}\\n'`,
            `printf 'split-err: ${RUN_SECRET.slice(0, 5)}' >&2; sleep 0.2; printf '${RUN_SECRET.slice(5)}\\n' >&2`,
            'printf "key: %s\\n" "$KEY"',
            'echo "launcher: $LAUNCHER_SECRET"',
            // A secret right before a phase marker, and one byte at a time.
            `for c in $(echo ${LAUNCHER_SECRET} | sed 's/./& /g'); do printf %s $c; sleep 0.01; done; echo`,
          ],
        },
        { name: "applying", commands: ['printf "%s" "$TOKEN"'] },
      ],
      {
        environment: [
          { name: "TOKEN", value: RUN_SECRET, secret: true },
          { name: "KEY", value: MULTILINE_SECRET, secret: true },
          { name: "PLAIN", value: "not-a-secret" },
        ],
      },
    );
    const result = await sup.execute(run, sink, never);
    expect(result.reason).toBe("ok");
    const phases = sink.byPhase();
    expect(phases[1]!.text).toBe(
      "whole: *****\nsplit: *****\nsplit-err: *****\nkey: *****\nlauncher: *****\n*****\n",
    );
    expect(phases[2]!.text).toBe("*****");
    const all = sink.text();
    for (const secret of [RUN_SECRET, LAUNCHER_SECRET, ...MULTILINE_SECRET.split("\n")]) expect(all).not.toContain(secret);
    for (const chunk of sink.chunks) expect(Buffer.from(chunk.data).toString()).not.toContain(RUN_SECRET.slice(0, half + 1));
  }, 30_000);

  const SEED = 0x5ec7e7;
  test(`property (seed ${SEED}): a secret and a multi-line secret cut at 30 random points across two writes never reach the sink`, async () => {
    const random = rng(SEED);
    const commands: string[] = [];
    let expected = "";
    for (let i = 0; i < 30; i++) {
      const secret = random() < 0.5 ? RUN_SECRET : MULTILINE_SECRET;
      const cut = 1 + Math.floor(random() * (secret.length - 1));
      // Two writes with a pause between them: two reads on the launcher's side.
      commands.push(`printf '%s' 'case ${i}: ${secret.slice(0, cut)}'; sleep 0.02; printf '%s\\n' '${secret.slice(cut)}'`);
      expected += `case ${i}: *****\n`;
    }
    const sink = new RecordingSink();
    const run = spec(env!.image, [{ name: "planning", commands }], {
      environment: [{ name: "TOKEN", value: RUN_SECRET, secret: true }, { name: "KEY", value: MULTILINE_SECRET, secret: true }],
    });
    const result = await sup.execute(run, sink, never);
    expect(result.reason).toBe("ok");
    expect(sink.byPhase()[1]!.text).toBe(expected);
    const all = sink.text();
    for (const secret of [RUN_SECRET, ...MULTILINE_SECRET.split("\n")]) expect(all).not.toContain(secret);
  }, 60_000);

  test("the container as Docker has it: secrets out of its env, network, unprivileged, exactly our binds and labels; the bundle is read-only", async () => {
    const sink = new RecordingSink();
    let inspected: Awaited<ReturnType<typeof containerInspectRaw>> | undefined;
    const run = spec(env!.image, [{
      name: "planning",
      commands: [
        "touch /opt/spacelift-worker/x 2>/dev/null && echo bundle-writable || echo bundle-read-only",
        "if [ -e /var/run/docker.sock ]; then echo docker-sock; else echo no-docker-sock; fi",
        "echo ready; sleep 2",
      ],
    }], {
      environment: [{ name: "TOKEN", value: RUN_SECRET, secret: true }, { name: "PLAIN", value: "plain-value" }],
    });
    const origLog = sink.log.bind(sink);
    sink.log = async (chunk) => {
      await origLog(chunk);
      if (inspected === undefined && sink.text().includes("ready")) {
        const [c] = await docker.containerList({ labels: { "io.spacelift.run": run.id } });
        inspected = await containerInspectRaw(env!, c!.id);
      }
    };
    const result = await sup.execute(run, sink, never);
    expect(result.messages).toEqual([]);
    expect(result.reason).toBe("ok");
    expect(sink.byPhase()[1]!.text).toBe("bundle-read-only\nno-docker-sock\nready\n");
    const body = inspected!;
    const envVars = Object.fromEntries(body.Config.Env.map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]));
    expect(envVars.PLAIN).toBe("plain-value");
    expect(envVars.TOKEN).toBeUndefined();
    expect(JSON.stringify(body)).not.toContain(RUN_SECRET);
    expect(body.HostConfig.NetworkMode).toBe("bridge");
    expect(body.HostConfig.Privileged).toBe(false);
    const extra = (name: string) => `${join(dir.dir, "mounts", name)}:/mnt/${name}:ro`;
    const bundle = body.HostConfig.Binds.find((b) => b.includes(":/opt/spacelift-worker:"));
    expect(bundle).toMatch(new RegExp(`^${dir.dir}/bundle/[0-9a-f]+:/opt/spacelift-worker:ro$`));
    // A write run: workspace, bundle, the extra mounts for every run and for write runs; nothing else.
    expect([...body.HostConfig.Binds].sort()).toEqual(
      [`${join(dir.dir, "workspaces", run.id)}:/mnt/workspace`, bundle!, extra("all"), extra("wo")].sort(),
    );
    expect(JSON.stringify(body.HostConfig.Binds) + JSON.stringify(body.Mounts)).not.toContain("docker.sock");
    expect(Object.fromEntries(body.Mounts.map((m) => [m.Destination, m.RW]))).toEqual({
      "/mnt/workspace": true, "/opt/spacelift-worker": false, "/mnt/all": false, "/mnt/wo": false,
    });
    expect(body.Config.Labels).toMatchObject({
      "io.spacelift.managed": "true", "io.spacelift.pool": "test-pool", "io.spacelift.worker": WORKER, "io.spacelift.run": run.id,
    });
  }, 30_000);
});
