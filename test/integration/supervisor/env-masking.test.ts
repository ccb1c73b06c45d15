// What a run container sees and what leaves it, on the real Docker Engine: secrets (the run's and
// SPACELIFT_MASK_ENVS) never reach the sink however they are written; ro_/wo_ variables and RO/WO mounts
// reach exactly the right kind of run.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { LauncherConfig } from "../../../src/config/launcher-config.ts";
import type { DockerClient } from "../../../src/docker/types.ts";
import type { RunSupervisor } from "../../../src/launcher/supervisor/run-supervisor.ts";
import { dockerTestEnv } from "../../support/env.ts";
import {
  RecordingSink, dockerClient, ensureLauncherBuilt, leftoverWorkspaces, managedContainers, scratch, spec, supervisor, testConfig,
  type Scratch,
} from "./harness.ts";

const env = dockerTestEnv();
const never = new AbortController().signal;

const RUN_SECRET = "run-secret-0123456789";
const LAUNCHER_SECRET = "launcher-mask-ABCDEFGHIJ";
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
    sup = supervisor(env!, config);
    await sup.ready();
  }, 120_000);

  afterEach(async () => {
    expect(await managedContainers(docker)).toEqual([]);
    expect(leftoverWorkspaces(dir.dir)).toEqual([]);
  });

  afterAll(async () => {
    dir.cleanup();
    await docker.close();
  });

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

  test("run secrets stay out of the container's configuration; plain variables are in it", async () => {
    const sink = new RecordingSink();
    let inspected: Record<string, string> | undefined;
    const run = spec(env!.image, [{ name: "planning", commands: ["echo ready; sleep 2"] }], {
      environment: [{ name: "TOKEN", value: RUN_SECRET, secret: true }, { name: "PLAIN", value: "plain-value" }],
    });
    const origLog = sink.log.bind(sink);
    sink.log = async (chunk) => {
      await origLog(chunk);
      if (inspected === undefined && Buffer.from(chunk.data).toString().includes("ready")) {
        const [c] = await docker.containerList({ labels: { "io.spacelift.run": run.id } });
        const raw = await fetch(`http://docker/containers/${c!.id}/json`, { unix: env!.host.replace("unix://", "") } as RequestInit);
        const body = (await raw.json()) as { Config: { Env: string[] } };
        inspected = Object.fromEntries(body.Config.Env.map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]));
      }
    };
    const result = await sup.execute(run, sink, never);
    expect(result.messages).toEqual([]);
    expect(result.reason).toBe("ok");
    expect(inspected?.PLAIN).toBe("plain-value");
    expect(inspected?.TOKEN).toBeUndefined();
    expect(JSON.stringify(inspected)).not.toContain(RUN_SECRET);
  }, 30_000);
});
