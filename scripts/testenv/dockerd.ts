/**
 * A Docker Engine for the tests: reuse one that answers (DOCKER_HOST, then /var/run/docker.sock), otherwise
 * start a private dockerd with its own data root, exec root, pidfile and unix socket under `stateDir`.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, openSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { stopPid, waitFor } from "./util.ts";

export interface DockerEnv {
  /** Value for DOCKER_HOST. */
  host: string;
  /** PID of the dockerd we started, or undefined when an existing engine is reused. */
  pid?: number;
}

/** `_ping` against a DOCKER_HOST value (unix:// or tcp://). */
export async function pingDocker(host: string, timeoutMs = 2000): Promise<boolean> {
  try {
    const signal = AbortSignal.timeout(timeoutMs);
    const res = host.startsWith("unix://")
      ? await fetch("http://docker/_ping", { unix: host.slice("unix://".length), signal })
      : await fetch(`http://${host.replace(/^tcp:\/\//, "")}/_ping`, { signal });
    return res.ok && (await res.text()) === "OK";
  } catch {
    return false;
  }
}

export async function findRunningDocker(): Promise<DockerEnv | undefined> {
  const candidates = [process.env.DOCKER_HOST, "unix:///var/run/docker.sock"].filter(
    (h): h is string => typeof h === "string" && h !== "",
  );
  for (const host of candidates) if (await pingDocker(host)) return { host };
  return undefined;
}

export async function startPrivateDocker(stateDir: string, log: (m: string) => void): Promise<DockerEnv> {
  const dir = join(stateDir, "docker");
  mkdirSync(dir, { recursive: true });
  const socket = join(dir, "docker.sock");
  const pidfile = join(dir, "dockerd.pid");
  const out = openSync(join(dir, "dockerd.log"), "a");
  const child = spawn(
    "dockerd",
    [
      "--data-root", join(dir, "data"),
      "--exec-root", join(dir, "exec"),
      "--pidfile", pidfile,
      "--host", `unix://${socket}`,
      "--log-level", "warn",
    ],
    { detached: true, stdio: ["ignore", out, out] },
  );
  child.unref();
  const host = `unix://${socket}`;
  log(`starting a private dockerd (pid ${child.pid}) on ${host}`);
  try {
    await waitFor("dockerd", 60_000, async () => {
      if (child.exitCode !== null) throw new Error(`dockerd exited with code ${child.exitCode}`);
      return await pingDocker(host, 1000);
    });
  } catch (err) {
    const tail = readFileSync(join(dir, "dockerd.log"), "utf8").split("\n").slice(-15).join("\n");
    throw new Error(`${(err as Error).message}; dockerd log:\n${tail}`);
  }
  return { host, pid: child.pid! };
}

export async function stopPrivateDocker(env: DockerEnv, stateDir: string): Promise<void> {
  if (env.pid === undefined) return;
  await stopPid(env.pid, 20_000);
  const dir = join(stateDir, "docker");
  // dockerd can leave mounts behind in its own dirs (the host network's namespace under exec/netns,
  // overlays of a container it did not get to stop): detach them, deepest first, then remove the dir.
  for (const mountpoint of mountsUnder(dir).reverse()) spawnSync("umount", ["-l", mountpoint], { stdio: "ignore" });
  try {
    rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  } catch (err) {
    console.error(`test-env: could not remove ${dir} (${(err as NodeJS.ErrnoException).code ?? String(err)}); remove it by hand`);
  }
}

/** Mount points at or below `dir`, in /proc/self/mounts order (parents before children). */
function mountsUnder(dir: string): string[] {
  let table = "";
  try {
    table = readFileSync("/proc/self/mounts", "utf8");
  } catch {
    return [];
  }
  // Fields are space-separated with spaces in paths written as \040.
  const points = table.split("\n").map((l) => (l.split(" ")[1] ?? "").replace(/\\040/g, " "));
  return points.filter((m) => m === dir || m.startsWith(dir + "/"));
}
