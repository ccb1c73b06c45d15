/**
 * The compiled launcher as an operator runs it (targets in docs/architecture.md), against baselines measured in the same run:
 * - start to registered on loopback (target <= 300 ms), against starting the same binary for `version`;
 * - RSS when idle (target <= 45 MB), against an idle Bun runtime;
 * - peak RSS while a run prints 200 MB that goes all the way to the mothership's store (target <= 90 MB),
 *   against the idle figure, with the end-to-end log throughput.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { buildBinaries, DemoWorld } from "../demo/world.ts";

const dockerHost = process.env.DOCKER_HOST ?? "unix:///var/run/docker.sock";
const image = process.env.TEST_BUSYBOX_IMAGE ?? "spacelift-test/busybox:latest";
const ROUNDS = 5;
const BURST_MB = Number(process.env.BENCH_BURST_MB ?? 200);

/** Resident set of a process in MB, from /proc (undefined once it is gone). */
function rssMb(pid: number): number | undefined {
  try {
    const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
    return kb === undefined ? undefined : Number(kb) / 1024;
  } catch {
    return undefined;
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

const row = (name: string, value: string, baseline: string, note: string) => console.log(`${name.padEnd(34)} ${value.padStart(10)}  ${baseline.padStart(22)}  ${note}`);

const bin = buildBinaries(() => undefined);
const world = new DemoWorld(bin, dockerHost, () => undefined);
let failed = false;
try {
  await world.startMothership();
  await world.createPool("bench-pool");

  // Baseline: the same binary started for `version` (process start and Bun's own start-up).
  const versionMs: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const t = performance.now();
    spawnSync(bin.launcher, ["version"], { stdio: "ignore" });
    versionMs.push(performance.now() - t);
  }

  // Start to registered: spawn, then the launcher's own "registered" log line.
  const registerMs: number[] = [];
  let idle = 0;
  for (let i = 0; i < ROUNDS; i++) {
    const t = performance.now();
    const launcher = world.startLauncher();
    await world.waitFor("registration", async () => launcher.log().includes('"registered"'), 20_000);
    registerMs.push(performance.now() - t);
    if (i < ROUNDS - 1) {
      await launcher.stop();
      continue;
    }
    // The last one stays: idle RSS after it has settled.
    await Bun.sleep(3_000);
    idle = rssMb(launcher.pid) ?? NaN;
  }
  const launcher = world.launchers.at(-1)!;

  // Baseline for memory: the Bun runtime doing nothing.
  const bare = Bun.spawn([process.execPath, "-e", "setInterval(() => {}, 1000)"], { stdio: ["ignore", "ignore", "ignore"] });
  await Bun.sleep(1_500);
  const bareRss = rssMb(bare.pid) ?? NaN;
  bare.kill();

  // A run that prints 200 MB; its log goes through masking, the spool and MQTT into the store.
  const stack = (
    await world.cliOk([
      "stack", "create", "--name", "burst", "--pool", world.pool, "--image", image, "--secret", "BENCH_SECRET=bench-secret-value",
      "--phase", `burst=yes 'spacelift launcher burst benchmark line 0123456789' | head -c ${BURST_MB * 1024 * 1024}`,
    ])
  ).trim();
  const run = (await world.cliOk(["run", "trigger", stack, "--type", "TRACKED"])).trim();
  const t = performance.now();
  let peak = 0;
  let shown = { state: "", reason: "", messages: [] as string[] };
  while (!["FINISHED", "FAILED", "CANCELED"].includes(shown.state)) {
    for (let i = 0; i < 10; i++) {
      peak = Math.max(peak, rssMb(launcher.pid) ?? 0);
      await Bun.sleep(50);
    }
    shown = await world.json<typeof shown>(["run", "show", run]);
  }
  const seconds = (performance.now() - t) / 1000;
  if (shown.state !== "FINISHED") throw new Error(`the burst run ended ${shown.state} (${shown.reason}): ${shown.messages.join("; ")}`);

  const reg = median(registerMs);
  const ver = median(versionMs);
  console.log(`launcher (compiled, ${bin.launcher.split("/").at(-1)}), median of ${ROUNDS} starts`);
  row("start to registered", `${reg.toFixed(0)} ms`, `version: ${ver.toFixed(0)} ms`, `+${(reg - ver).toFixed(0)} ms over process start (target <= 300 ms)`);
  row("RSS idle", `${idle.toFixed(1)} MB`, `bare Bun: ${bareRss.toFixed(1)} MB`, `${(idle / bareRss).toFixed(2)}x the runtime alone (target <= 45 MB)`);
  row(`RSS peak, ${BURST_MB} MB run log`, `${peak.toFixed(1)} MB`, `idle: ${idle.toFixed(1)} MB`, `+${(peak - idle).toFixed(1)} MB (target <= 90 MB)`);
  row("run log to the store", `${(BURST_MB / seconds).toFixed(1)} MB/s`, "", `${seconds.toFixed(1)} s for ${BURST_MB} MB, trigger to FINISHED`);
} catch (err) {
  failed = true;
  console.error(`launcher bench failed: ${err instanceof Error ? err.message : String(err)}`);
  for (const l of world.launchers.slice(-1)) console.error(l.log().split("\n").slice(-10).join("\n"));
  console.error(readFileSync(`${world.dir}/mothership.log`, "utf8").split("\n").slice(-15).join("\n"));
} finally {
  await world.close();
}
process.exit(failed ? 1 : 0);
