// Fault suite: the launcher's log spool runs out of space mid-run (a 1 MiB tmpfs mounted on the spool
// dir by the test, as root), with the compiled binaries, a real mothership and the real dockerd. The run
// stops FAILED with a reason that names the disk, everything the mothership acknowledged before is
// still in its log, and the launcher keeps serving: once space is back the next run FINISHES.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildBinaries, DemoWorld, type Binaries } from "../../scripts/demo/world.ts";
import { dockerTestEnv, hostCapability } from "../support/env.ts";

setDefaultTimeout(180_000);
const docker = dockerTestEnv();
const root = hostCapability("root (to mount a tmpfs on the spool dir)", process.getuid?.() === 0);

interface RunJson { id: string; state: string; reason: string | null; messages: string[] }

describe.skipIf(!docker || !root)("spool out of space", () => {
  let bin: Binaries;
  let world: DemoWorld;
  let spool = "";
  let mounted = false;

  beforeAll(async () => {
    bin = buildBinaries(() => {});
    world = new DemoWorld(bin, docker!.host, () => {});
    await world.startMothership();
    await world.createPool("faults-spool");
    spool = join(world.scratch, "spool");
    mkdirSync(spool, { recursive: true, mode: 0o700 });
    const m = spawnSync("mount", ["-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", spool], { encoding: "utf8" });
    if (m.status !== 0) throw new Error(`mount -t tmpfs failed: ${m.stderr}`);
    mounted = true;
  });

  afterAll(async () => {
    for (const l of world?.launchers ?? []) await l.stop().catch(() => {});
    if (mounted) spawnSync("umount", ["-l", spool]);
    await world?.close();
  });

  /** Fills the tmpfs to the last byte with one file; its path. */
  function fill(): string {
    const filler = join(spool, "filler");
    const block = Buffer.alloc(64 * 1024, 0x78);
    let size = 0;
    try {
      for (;;) {
        writeFileSync(filler, block, { flag: size === 0 ? "w" : "a" });
        size += block.length;
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOSPC") throw err;
    }
    // tmpfs takes whole pages: top it up byte by byte to the very end.
    const one = Buffer.alloc(1, 0x78);
    try {
      for (;;) writeFileSync(filler, one, { flag: "a" });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOSPC") throw err;
    }
    return filler;
  }

  test("the run stops FAILED naming the disk, acknowledged output is kept, the next run FINISHES once space is back", async () => {
    const launcher = world.startLauncher();
    await world.waitFor("worker registered", async () => ((await world.workers()).length === 1 ? true : null));
    // Prints a first line, waits for the disk to fill, then 2 MB: more than the spool can take.
    const stack = await world.stack("spool-full", docker!.image, [
      "plan=echo acknowledged-before; while [ ! -e /mnt/workspace/go ]; do sleep 0.1; done; i=0; while [ $i -lt 2000 ]; do printf '%01000d\\n' $i; i=$((i+1)); done; echo the-end",
    ]);
    const run = await world.trigger(stack);
    await world.waitFor("the first line stored", async () => (await world.runLogs(run)).includes("acknowledged-before\n"));
    const filler = fill();
    // The phase waits for this file in its workspace (<scratch>/workspaces/<run>, not on the full tmpfs).
    writeFileSync(join(world.scratch, "workspaces", run, "go"), "");

    const ended = await world.runEnded<RunJson>(run, 90_000);
    expect(ended.state).toBe("FAILED");
    expect(ended.reason).toBe("system-error");
    // The reason reaches the operator with the run (its log cannot say it: the spool is full).
    expect(ended.messages.join("\n")).toMatch(/cannot write the run's output to the log spool .*\(ENOSPC: no space left on device.*\); free space on that disk/);
    expect(launcher.records().some((r) => r.msg === "run finished" && r.run === run && r.reason === "system-error")).toBe(true);
    const text = await world.runLogs(run);
    expect(text.startsWith("acknowledged-before\n")).toBe(true);
    expect(text).not.toContain("the-end");
    expect(launcher.proc.exitCode).toBeNull();

    // Space is back: the same launcher takes the next run.
    rmSync(filler);
    const next = await world.trigger(await world.stack("after-space", docker!.image, ["plan=echo space is back"]));
    expect(await world.runEnded<RunJson>(next, 60_000)).toMatchObject({ state: "FINISHED", reason: "ok" });
    expect(await world.runLogs(next)).toContain("space is back\n");
    expect(launcher.proc.exitCode).toBeNull();
  });
});
