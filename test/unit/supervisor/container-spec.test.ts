// The run container's spec as a pure function, the worker bundle on a temp dir, the run clocks.
import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadLauncherConfig } from "../../../src/config/launcher-config.ts";
import { describeContainerSpec, runContainerSpec, runLogSecrets } from "../../../src/launcher/supervisor/container-spec.ts";
import { RunTimeouts, type TimeoutReason } from "../../../src/launcher/supervisor/run-timeouts.ts";
import { materializeWorkerBundle, parseLdd, type BundleFile } from "../../../src/launcher/supervisor/worker-bundle.ts";
import { parseRunSpec, type RunSpec } from "../../../src/protocol/run-spec.ts";

const config = loadLauncherConfig(
  {
    SPACELIFT_WHITELIST_ENVS: "ALL,ro_PLAN,wo_APPLY",
    SPACELIFT_MASK_ENVS: "MASKED",
    ALL: "all-value",
    PLAN: "plan-value",
    APPLY: "apply-value",
    MASKED: "masked-value",
    SPACELIFT_WORKER_EXTRA_MOUNTS: "/srv/all:/mnt/all",
    SPACELIFT_WORKER_RO_EXTRA_MOUNTS: "/srv/ro:/mnt/ro:ro",
    SPACELIFT_WORKER_WO_EXTRA_MOUNTS: "/srv/wo:/mnt/wo",
    SPACELIFT_WORKER_NETWORK: "runs",
    SPACELIFT_WORKER_RUNTIME: "runsc",
  },
  { requireCredentials: false },
);

function run(type: string): RunSpec {
  return parseRunSpec({
    id: "01HZY8Q3V6X9J2K4M5N6P7R8S9",
    type,
    stack: { id: "stack-1", name: "Stack", branch: "main", repository: "org/repo" },
    commit: { hash: "abc", branch: "main", author: "Ada", message: "msg" },
    environment: [{ name: "TF_VAR_x", value: "x" }, { name: "TOKEN", value: "run-secret", secret: true }, { name: "ALL", value: "run-wins" }],
    phases: [{ name: "planning", commands: ["true"] }],
  });
}

const bundle = { hostDir: "/opt/spacelift/bundle/abc", hash: "abc", loader: "ld-linux-x86-64.so.2" };
const input = (type: string) => ({
  spec: run(type), image: "busybox:1", config, owner: { poolId: "pool-1", workerId: "worker-1", launcherId: "launcher-1" }, bundle,
  workspaceHostDir: "/opt/spacelift/workspaces/01HZY8Q3V6X9J2K4M5N6P7R8S9", instructionsFile: ".spacelift-run.json",
});

describe("run container spec", () => {
  test("a read-only run: ro_ and all variables, masked ones, the run's plain ones on top; no secret in the env", () => {
    const c = runContainerSpec(input("PROPOSED"));
    expect(c.env).toEqual({ ALL: "run-wins", PLAN: "plan-value", MASKED: "masked-value", TF_VAR_x: "x" });
    expect(c.mounts).toEqual([
      { host: "/opt/spacelift/workspaces/01HZY8Q3V6X9J2K4M5N6P7R8S9", container: "/mnt/workspace", readOnly: false },
      { host: "/opt/spacelift/bundle/abc", container: "/opt/spacelift-worker", readOnly: true },
      { host: "/srv/all", container: "/mnt/all", readOnly: false },
      { host: "/srv/ro", container: "/mnt/ro", readOnly: true },
    ]);
  });

  test("a write run: wo_ instead of ro_", () => {
    for (const type of ["TRACKED", "TASK", "DESTROY"]) {
      const c = runContainerSpec(input(type));
      expect(c.env).toEqual({ ALL: "run-wins", APPLY: "apply-value", MASKED: "masked-value", TF_VAR_x: "x" });
      expect(c.mounts?.map((m) => m.container)).toEqual(["/mnt/workspace", "/opt/spacelift-worker", "/mnt/all", "/mnt/wo"]);
    }
  });

  test("labels, the worker from the bundle as the entrypoint, network, runtime, no init", () => {
    const c = runContainerSpec(input("TRACKED"));
    expect(c.labels).toEqual({
      "io.spacelift.managed": "true", "io.spacelift.pool": "pool-1", "io.spacelift.worker": "worker-1",
      "io.spacelift.launcher": "launcher-1", "io.spacelift.run": "01HZY8Q3V6X9J2K4M5N6P7R8S9", "io.spacelift.stack": "stack-1",
    });
    // The container runs as the image says unless the worker must start as root to drop to its user.
    expect(c.user).toBeUndefined();
    expect(runContainerSpec({ ...input("TRACKED"), runAs: { user: "1983", image_home: false } }).user).toBe("0");
    expect(c.entrypoint).toEqual([
      "/opt/spacelift-worker/ld-linux-x86-64.so.2", "--library-path", "/opt/spacelift-worker", "/opt/spacelift-worker/spacelift-launcher",
      "worker", "--spec", "/mnt/workspace/.spacelift-run.json", "--workspace", "/mnt/workspace",
    ]);
    expect(c.cmd).toEqual([]);
    expect(c).toMatchObject({ networkMode: "runs", runtime: "runsc", init: false, tty: false, image: "busybox:1" });
    expect(describeContainerSpec(c)).not.toContain("run-secret");
  });

  test("the log's secrets: the run's secret values and the launcher's masked values", () => {
    expect(runLogSecrets(run("TRACKED"), config.runEnv)).toEqual(["run-secret", "masked-value"]);
  });

  test("an extra mount onto the bundle is refused with a clear message", () => {
    const bad = loadLauncherConfig({ SPACELIFT_WORKER_EXTRA_MOUNTS: "/srv/x:/opt/spacelift-worker/lib" }, { requireCredentials: false });
    expect(() => runContainerSpec({ ...input("TRACKED"), config: bad })).toThrow("which the launcher mounts itself");
  });
});

describe("worker bundle", () => {
  let dir: string;
  afterEach(() => {
    for (const name of readdirSync(dir, { recursive: true }) as string[]) chmodSync(join(dir, name), 0o755);
    rmSync(dir, { recursive: true, force: true });
  });

  test("parses ldd output: sonames, paths, the loader; the vDSO is skipped", () => {
    dir = mkdtempSync(join(tmpdir(), "bundle-test-"));
    const out = [
      "\tlinux-vdso.so.1 (0x00007ffd)",
      "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f64)",
      "\t/lib64/ld-linux-x86-64.so.2 (0x00007f64)",
      "\tlibm.so.6 => /lib/x86_64-linux-gnu/libm.so.6 (0x00007f64)",
    ].join("\n");
    expect(parseLdd(out)).toEqual([
      { name: "libc.so.6", source: "/lib/x86_64-linux-gnu/libc.so.6" },
      { name: "ld-linux-x86-64.so.2", source: "/lib64/ld-linux-x86-64.so.2" },
      { name: "libm.so.6", source: "/lib/x86_64-linux-gnu/libm.so.6" },
    ]);
  });

  test("is made once under a hash-named dir, read-only, reused when intact, rebuilt when tampered with", async () => {
    dir = mkdtempSync(join(tmpdir(), "bundle-test-"));
    const exe = join(dir, "launcher");
    const loader = join(dir, "ld.so");
    writeFileSync(exe, "executable-v1");
    writeFileSync(loader, "loader");
    const libs = async (): Promise<BundleFile[]> => [{ name: "ld-linux-x86-64.so.2", source: loader }];
    const scratch = join(dir, "scratch");
    const first = await materializeWorkerBundle({ scratchDir: scratch, executable: exe, findLibraries: libs });
    expect(first.hostDir).toBe(join(scratch, "bundle", first.hash.slice(0, 16)));
    expect(readFileSync(join(first.hostDir, "spacelift-launcher"), "utf8")).toBe("executable-v1");
    expect(statSync(join(first.hostDir, "spacelift-launcher")).mode & 0o777).toBe(0o555);
    expect(readFileSync(join(first.hostDir, "SHA256SUMS"), "utf8")).toContain("  ld-linux-x86-64.so.2\n");

    const again = await materializeWorkerBundle({ scratchDir: scratch, executable: exe, findLibraries: libs });
    expect(again).toEqual(first);

    chmodSync(join(first.hostDir, "spacelift-launcher"), 0o644);
    writeFileSync(join(first.hostDir, "spacelift-launcher"), "tampered");
    const rebuilt = await materializeWorkerBundle({ scratchDir: scratch, executable: exe, findLibraries: libs });
    expect(rebuilt.hostDir).toBe(first.hostDir);
    expect(readFileSync(join(rebuilt.hostDir, "spacelift-launcher"), "utf8")).toBe("executable-v1");

    writeFileSync(exe, "executable-v2");
    const next = await materializeWorkerBundle({ scratchDir: scratch, executable: exe, findLibraries: libs });
    expect(next.hostDir).not.toBe(first.hostDir);
    expect(readdirSync(join(scratch, "bundle")).filter((n) => n.startsWith(".tmp"))).toEqual([]);
  });

  test("without a loader among the libraries it fails clearly", async () => {
    dir = mkdtempSync(join(tmpdir(), "bundle-test-"));
    writeFileSync(join(dir, "exe"), "x");
    const failure = await materializeWorkerBundle({ scratchDir: dir, executable: join(dir, "exe"), findLibraries: async () => [] }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect((failure as Error).message).toContain("found no dynamic loader");
  });
});

describe("run clocks", () => {
  test("the logs clock fires after silence only; output pushes it back", async () => {
    const fired: TimeoutReason[] = [];
    const t = new RunTimeouts({ logsMs: 60, runMs: 10_000 }, (r) => fired.push(r));
    t.startLogs();
    for (let i = 0; i < 4; i++) {
      await Bun.sleep(30);
      t.touch();
    }
    expect(fired).toEqual([]);
    await Bun.sleep(100);
    expect(fired).toEqual(["timeout-logs"]);
    t.dispose();
  });

  test("the wall clock fires once whatever the output; dispose stops both", async () => {
    const fired: TimeoutReason[] = [];
    const t = new RunTimeouts({ logsMs: 1000, runMs: 50 }, (r) => fired.push(r));
    t.startRun();
    t.startLogs();
    const touching = setInterval(() => t.touch(), 10);
    await Bun.sleep(120);
    clearInterval(touching);
    expect(fired).toEqual(["timeout-run"]);
    t.dispose();
    const quiet = new RunTimeouts({ logsMs: 20, runMs: 20 }, (r) => fired.push(r));
    quiet.startRun();
    quiet.startLogs();
    quiet.dispose();
    await Bun.sleep(60);
    expect(fired).toEqual(["timeout-run"]);
  });
});
