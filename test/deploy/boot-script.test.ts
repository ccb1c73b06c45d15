/**
 * The EC2 boot script (build/user-data/spacelift-boot.sh) executed for real, as root, in a throwaway
 * mount namespace (test/deploy/boot-sandbox.ts), against loopback stand-ins: s3rver with the `aws`
 * CLI, Secrets Manager, IMDSv2 and a mothership's /downloads (test/deploy/boot-world.ts). The launcher
 * it installs is then started as systemd would start it and must register with the mothership.
 * What this cannot check: a real EC2 instance, cloud-init, systemd as PID 1 (systemctl is recorded,
 * not run) and Amazon Linux's update-ca-trust (Debian's update-ca-certificates runs instead).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { missingDeployTools } from "../../scripts/testenv/deploy-tools.ts";
import { dist } from "../../scripts/demo/world.ts";
import { dockerTestEnv, hostCapability } from "../support/env.ts";
import { BootSandbox, type BootResult } from "./boot-sandbox.ts";
import { BootWorld, INSTANCE, LAUNCHER_NAME, TAMPERED_MARKER } from "./boot-world.ts";

const docker = dockerTestEnv();
const tools = missingDeployTools(["aws", "curl", "jq", "gpg", "gpgv", "unshare", "setpriv", "useradd", "update-ca-certificates", "systemd-analyze"]);
const ready =
  docker !== undefined &&
  hostCapability(`root, the tools ${tools.join(", ") || "(all present)"} and a built ${LAUNCHER_NAME}`, process.getuid?.() === 0 && tools.length === 0 && existsSync(join(dist, LAUNCHER_NAME)));

/** Run in the namespace after the boot script: what systemd would do with the unit, and a look around. */
const AFTER = (dockerHost: string, stopFile: string) => `
set -u
out="$1"
systemd-analyze verify /etc/systemd/system/spacelift-launcher.service >"$out/verify.out" 2>&1; echo $? >"$out/verify-exit"
stat -c '%n %a %U' /etc/spacelift /etc/spacelift/token /etc/spacelift/pool-private-key /etc/spacelift/launcher.env /usr/local/bin/spacelift-launcher >"$out/modes.out"
id spacelift >"$out/id.out" 2>&1 || true
unit=/etc/systemd/system/spacelift-launcher.service
user=$(sed -n 's/^User=//p' "$unit.d/10-boot.conf")
# The unit's user cannot read the credentials where the boot script left them (root's, 0600, in a 0700 dir).
setpriv --reuid="$user" --regid="$user" --init-groups cat /etc/spacelift/token >/dev/null 2>"$out/unreadable.out"; echo $? >"$out/unreadable-exit"
# As systemd: LoadCredential= copies each file into a directory only the unit's user reads (%d, on a
# tmpfs here as under /run/credentials), Environment= points the launcher at it, EnvironmentFile= is read
# by root; then the launcher runs as the unit's user.
mount -t tmpfs -o mode=0755 tmpfs /srv
creds=/srv/credentials/spacelift-launcher.service
install -d -m 0500 -o "$user" -g "$user" "$creds"
sed -n 's/^LoadCredential=\\([^:]*\\):\\(.*\\)$/\\1 \\2/p' "$unit" | while read -r name path; do install -m 0400 -o "$user" -g "$user" "$path" "$creds/$name"; done
ls "$creds" >"$out/credentials.out"
environment=$(sed -n 's/^Environment=//p' "$unit" | sed "s|%d|$creds|g")
( set -a; . /etc/spacelift/launcher.env; set +a
  export $environment DOCKER_HOST='${dockerHost}'
  exec setpriv --reuid="$user" --regid="$user" --init-groups /usr/local/bin/spacelift-launcher ) >"$out/launcher.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do [ -e '${stopFile}' ] && break; kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -TERM "$pid" 2>/dev/null; wait "$pid"; echo $? >"$out/launcher-exit"
`;

describe.skipIf(!ready)("boot script on a throwaway root (cannot check: real EC2, cloud-init, systemd as PID 1, update-ca-trust)", () => {
  const world = new BootWorld(docker?.host ?? "");
  const sandbox = new BootSandbox();
  const log = (m: string) => console.error(`boot-script test: ${m}`);

  beforeAll(async () => {
    rmSync(TAMPERED_MARKER, { force: true });
    await world.start(log);
  }, 120_000);

  afterAll(async () => {
    await world.close();
    sandbox.close();
  });

  /** Boots, and while the launcher it installed runs, waits for it to register; then stops it. */
  async function bootAndRegister(name: string, settings: Record<string, string>): Promise<{ boot: BootResult; workers: Array<{ metadata: Record<string, string> }> }> {
    const stopFile = join(sandbox.dir, `${name}.stop`);
    const booting = sandbox.boot(name, world.settings(settings), world.bootEnv(), AFTER(docker!.host, stopFile));
    let workers: Array<{ metadata: Record<string, string> }> = [];
    const registered = (async () => {
      const deadline = Date.now() + 90_000;
      while (Date.now() < deadline && !existsSync(stopFile)) {
        workers = (await world.world.workers<{ metadata: Record<string, string> }>().catch(() => [])).filter((w) => w.metadata.instance_id === INSTANCE["instance-id"]);
        if (workers.length > 0) break;
        await Bun.sleep(250);
      }
      writeFileSync(stopFile, "");
    })();
    const boot = await booting;
    writeFileSync(stopFile, "");
    await registered;
    return { boot, workers };
  }

  test("S3 bucket, signature, proxy, CA, custom user data, spacelift user: installed, verified, registered", async () => {
    const { boot, workers } = await bootAndRegister("s3-good", {
      BINARIES_BUCKET: "genuine",
      RELEASE_PUBLIC_KEY: world.publicKey,
      HTTP_PROXY_CONFIG: "http://proxy.example.com:1234",
      HTTPS_PROXY_CONFIG: "http://proxy.example.com:4321",
      NO_PROXY_CONFIG: "127.0.0.1,localhost,169.254.169.254",
      ADDITIONAL_ROOT_CAS_SECRET_NAME: "spacelift/ca-certs",
      CUSTOM_USER_DATA_SECRET_NAME: "spacelift/userdata",
    });
    expect(boot.exit, boot.output).toBe(0);
    expect(boot.output).toContain("SHA256SUMS signature verified");
    expect(boot.systemctl).toEqual(["daemon-reload", "restart docker.service", "daemon-reload", "enable --now spacelift-launcher.service"]);
    // The binary is the release's, root's and 0755; credentials and environment root-only.
    expect(world.sha256(boot.changed("/usr/local/bin/spacelift-launcher"))).toBe(world.sha256(join(world.releaseDir, LAUNCHER_NAME)));
    const modes = readFileSync(join(boot.dir, "modes.out"), "utf8");
    expect(modes).toContain("/etc/spacelift 700 root");
    expect(modes).toContain("/etc/spacelift/token 600 root");
    expect(modes).toContain("/etc/spacelift/pool-private-key 600 root");
    expect(modes).toContain("/etc/spacelift/launcher.env 600 root");
    expect(modes).toContain("/usr/local/bin/spacelift-launcher 755 root");
    // The token and key as the secret holds them, one file each, read through the _FILE variables.
    expect(readFileSync(boot.changed("/etc/spacelift/token"), "utf8")).toBe(`${world.world.token}\n`);
    expect(readFileSync(boot.changed("/etc/spacelift/pool-private-key"), "utf8")).toBe(`${Buffer.from(world.key).toString("base64")}\n`);
    expect(existsSync(boot.changed("/etc/spacelift/credentials.env"))).toBe(false);
    const env = readFileSync(boot.changed("/etc/spacelift/launcher.env"), "utf8");
    expect(env).not.toContain("SPACELIFT_TOKEN");
    expect(env).not.toContain("SPACELIFT_POOL_PRIVATE_KEY");
    expect(readFileSync(join(boot.dir, "credentials.out"), "utf8")).toBe("pool-private-key\ntoken\n");
    // The launcher's user is refused (not merely pointed at a missing file).
    expect(readFileSync(join(boot.dir, "unreadable-exit"), "utf8").trim()).not.toBe("0");
    expect(readFileSync(join(boot.dir, "unreadable.out"), "utf8")).toContain("Permission denied");
    // Neither the token nor the key shows in what the script printed or logged.
    const bootLog = readFileSync(boot.changed("/var/log/spacelift-boot.log"), "utf8");
    for (const text of [boot.output, bootLog]) {
      expect(text).not.toContain(world.world.token.slice(0, 40));
      expect(text).not.toContain(Buffer.from(world.key).toString("base64").slice(0, 40));
    }
    expect(statSync(boot.changed("/var/log/spacelift-boot.log")).mode & 0o777).toBe(0o600);
    // UID 1983 in the docker group; the unit runs as it.
    expect(readFileSync(join(boot.dir, "id.out"), "utf8")).toMatch(/^uid=1983\(spacelift\) gid=\d+\(spacelift\) groups=.*\(docker\)/);
    const dropIn = readFileSync(boot.changed("/etc/systemd/system/spacelift-launcher.service.d/10-boot.conf"), "utf8");
    expect(dropIn).toContain("User=spacelift\n");
    expect(dropIn).toContain("OnFailure=poweroff.target\n");
    // The unit is the repository's, and systemd-analyze accepts it with the drop-in.
    expect(readFileSync(boot.changed("/etc/systemd/system/spacelift-launcher.service"), "utf8")).toBe(readFileSync(join(import.meta.dir, "../../build/systemd/spacelift-launcher.service"), "utf8"));
    expect(readFileSync(join(boot.dir, "verify-exit"), "utf8").trim(), readFileSync(join(boot.dir, "verify.out"), "utf8")).toBe("0");
    // Proxy: for the launcher, whitelisted for runs, and for the Docker daemon.
    expect(env).toContain("HTTPS_PROXY=http://proxy.example.com:4321\n");
    expect(env).toContain("https_proxy=http://proxy.example.com:4321\n");
    expect(env).toContain("SPACELIFT_WHITELIST_ENVS=HTTP_PROXY,http_proxy,HTTPS_PROXY,https_proxy,NO_PROXY,no_proxy\n");
    expect(readFileSync(boot.changed("/etc/systemd/system/docker.service.d/http-proxy.conf"), "utf8")).toContain('Environment="HTTP_PROXY=http://proxy.example.com:1234"');
    // The CA is in the system bundle, which stays readable by everyone.
    const bundle = boot.changed("/etc/ssl/certs/ca-certificates.crt");
    expect(readFileSync(bundle, "utf8")).toContain(readFileSync(join(world.world.data, "ca", "ca.crt"), "utf8").split("\n")[1]!);
    expect(statSync(bundle).mode & 0o444).toBe(0o444);
    // The custom user data ran and added to the launcher's environment.
    expect(existsSync(boot.changed("/etc/spacelift/custom-user-data-ran"))).toBe(true);
    // Started as the unit says, the launcher registered with the instance's metadata.
    expect(workers.length, readFileSync(join(boot.dir, "launcher.log"), "utf8")).toBe(1);
    expect(workers[0]!.metadata).toMatchObject({ instance_id: INSTANCE["instance-id"], ami_id: INSTANCE["ami-id"], asg_id: INSTANCE["tags/instance/aws:autoscaling:groupName"], custom: "from-user-data" });
    // Only IMDSv2: every metadata read carried a session token.
    expect(world.imds.tokenless).toEqual([]);
    expect(world.imds.requests.some((r) => r.startsWith("GET /latest/meta-data/iam/security-credentials/"))).toBe(true);
  }, 180_000);

  test("mothership /downloads over HTTPS (its CA from the CA secret), key as PEM in the secret, launcher as root: installed and registered", async () => {
    const { boot, workers } = await bootAndRegister("downloads-root", {
      SECRET_NAME: "spacelift/pool-credentials-pem",
      DOWNLOADS_URL: `${world.httpUrl()}/downloads`,
      RELEASE_PUBLIC_KEY: world.publicKey,
      ADDITIONAL_ROOT_CAS_SECRET_NAME: "spacelift/ca-certs",
      RUN_LAUNCHER_AS_SPACELIFT_USER: "false",
    });
    expect(boot.exit, boot.output).toBe(0);
    expect(boot.output).toContain(`installed ${LAUNCHER_NAME}`);
    expect(readFileSync(join(boot.dir, "id.out"), "utf8")).toContain("no such user");
    expect(readFileSync(boot.changed("/etc/systemd/system/spacelift-launcher.service.d/10-boot.conf"), "utf8")).toContain("User=root\n");
    expect(existsSync(boot.changed("/etc/systemd/system/docker.service.d/http-proxy.conf"))).toBe(false);
    expect(readFileSync(boot.changed("/etc/spacelift/pool-private-key"), "utf8")).toBe(`${world.key.trim()}\n`);
    expect(workers.length, readFileSync(join(boot.dir, "launcher.log"), "utf8")).toBe(1);
  }, 180_000);

  test("a tampered binary aborts before it runs, and PowerOffOnError=true powers off", async () => {
    const boot = await sandbox.boot("tampered-binary", world.settings({ BINARIES_BUCKET: "tampered-binary" }), world.bootEnv());
    expect(boot.exit).toBe(1);
    expect(boot.output).toContain(`FAILED: ${LAUNCHER_NAME} does not match SHA256SUMS`);
    expect(boot.systemctl).toEqual(["poweroff"]);
    expect(existsSync(boot.changed("/usr/local/bin/spacelift-launcher"))).toBe(false);
    expect(existsSync(TAMPERED_MARKER)).toBe(false);
  }, 120_000);

  test("a SHA256SUMS that does not match its signature aborts, and PowerOffOnError=false leaves the instance up", async () => {
    const boot = await sandbox.boot("tampered-sums", world.settings({ BINARIES_BUCKET: "tampered-sums", RELEASE_PUBLIC_KEY: world.publicKey, POWER_OFF_ON_ERROR: "false" }), world.bootEnv());
    expect(boot.exit).toBe(1);
    expect(boot.output).toContain("FAILED: the signature on SHA256SUMS does not verify");
    expect(boot.output).toContain("POWER_OFF_ON_ERROR is false");
    expect(boot.systemctl).toEqual([]);
    expect(existsSync(boot.changed("/usr/local/bin/spacelift-launcher"))).toBe(false);
    expect(existsSync(TAMPERED_MARKER)).toBe(false);
  }, 120_000);

  test("a missing credentials secret is logged and powers off", async () => {
    const boot = await sandbox.boot("no-secret", world.settings({ BINARIES_BUCKET: "genuine", SECRET_NAME: "spacelift/missing" }), world.bootEnv());
    expect(boot.exit).toBe(1);
    expect(boot.output).toContain("FAILED: could not read the secret spacelift/missing");
    expect(readFileSync(boot.changed("/var/log/spacelift-boot.log"), "utf8")).toContain("FAILED: could not read the secret spacelift/missing");
    expect(boot.systemctl).toEqual(["poweroff"]);
  }, 120_000);
});
