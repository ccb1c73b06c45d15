/**
 * A private Docker registry for the tests (Debian `docker-registry`, i.e. distribution v2) on a loopback port
 * with htpasswd (bcrypt) auth, holding the busybox test image. dockerd treats 127.0.0.0/8 registries as
 * insecure by default, so plain HTTP on loopback works without daemon configuration.
 */
import { spawn } from "node:child_process";
import { mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, stopPid, waitFor } from "./util.ts";

export interface RegistryEnv {
  address: string; // 127.0.0.1:PORT
  username: string;
  password: string;
  /** An image pushed to the registry: ADDRESS/spacelift-test/busybox:pushed */
  image: string;
  pid?: number;
}

export async function startPrivateRegistry(stateDir: string, log: (m: string) => void): Promise<RegistryEnv> {
  const dir = join(stateDir, "registry");
  mkdirSync(join(dir, "data"), { recursive: true });
  const username = "spacelift";
  const password = crypto.randomUUID();
  const hash = await Bun.password.hash(password, { algorithm: "bcrypt", cost: 6 });
  writeFileSync(join(dir, "htpasswd"), `${username}:${hash}\n`);
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  writeFileSync(
    join(dir, "config.yml"),
    [
      "version: 0.1",
      "log:",
      "  level: warn",
      "storage:",
      "  filesystem:",
      `    rootdirectory: ${join(dir, "data")}`,
      "http:",
      `  addr: ${address}`,
      "auth:",
      "  htpasswd:",
      "    realm: spacelift-test",
      `    path: ${join(dir, "htpasswd")}`,
      "",
    ].join("\n"),
  );
  const out = openSync(join(dir, "registry.log"), "a");
  const child = spawn("docker-registry", ["serve", join(dir, "config.yml")], { detached: true, stdio: ["ignore", out, out] });
  child.unref();
  log(`starting a private registry (pid ${child.pid}) on ${address}`);
  try {
    await waitFor("docker-registry", 15_000, async () => {
      if (child.exitCode !== null) throw new Error(`docker-registry exited with code ${child.exitCode}`);
      const res = await fetch(`http://${address}/v2/`);
      return res.status === 401;
    });
  } catch (err) {
    const tail = readFileSync(join(dir, "registry.log"), "utf8").split("\n").slice(-10).join("\n");
    throw new Error(`${(err as Error).message}; registry log:\n${tail}`);
  }
  return { address, username, password, image: `${address}/spacelift-test/busybox:pushed`, pid: child.pid! };
}

/** Tags `localImage` into the registry and pushes it with the registry's credentials (Engine API). */
export async function pushToRegistry(dockerHost: string, localImage: string, reg: RegistryEnv): Promise<void> {
  const call = (path: string, init: RequestInit = {}) =>
    dockerHost.startsWith("unix://")
      ? fetch(`http://docker${path}`, { ...init, unix: dockerHost.slice("unix://".length) })
      : fetch(`http://${dockerHost.replace(/^tcp:\/\//, "")}${path}`, init);
  const [repo, tag] = [reg.image.slice(0, reg.image.lastIndexOf(":")), reg.image.slice(reg.image.lastIndexOf(":") + 1)];
  const tagged = await call(`/images/${encodeURIComponent(localImage)}/tag?repo=${encodeURIComponent(repo)}&tag=${tag}`, { method: "POST" });
  if (!tagged.ok) throw new Error(`tagging ${localImage} as ${reg.image} failed: ${await tagged.text()}`);
  const auth = Buffer.from(JSON.stringify({ username: reg.username, password: reg.password, serveraddress: reg.address })).toString("base64url");
  const pushed = await call(`/images/${encodeURIComponent(repo)}/push?tag=${tag}`, { method: "POST", headers: { "X-Registry-Auth": auth } });
  const body = await pushed.text();
  if (!pushed.ok || body.includes('"error"')) throw new Error(`pushing ${reg.image} failed: ${body.trim()}`);
}

export async function stopPrivateRegistry(env: RegistryEnv): Promise<void> {
  if (env.pid !== undefined) await stopPid(env.pid, 5_000);
}
