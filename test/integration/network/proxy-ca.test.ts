// Corporate networks, with the compiled launcher and a real `mothership serve`: both transports work
// through a CONNECT proxy on loopback (which sees only tunnels to the mothership's ports) and NO_PROXY
// bypasses it; a comms URL behind a TLS-terminating proxy whose certificate comes from another CA is
// accepted only when that CA is given (SPACELIFT_ADDITIONAL_CA_CERTIFICATES[_FILE]); a run container
// sees the extra CAs at /opt/spacelift-ca with the documented variables.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DemoWorld, type Binaries } from "../../../scripts/demo/world.ts";
import { dockerTestEnv } from "../../support/env.ts";
import { makeForeignCa, snapshotBinaries, startConnectProxy, startTlsReverseProxy, type ConnectProxy } from "./helpers.ts";

setDefaultTimeout(120_000);
const docker = dockerTestEnv();
const binDir = mkdtempSync(join(tmpdir(), "network-bin-"));
const bin: Binaries = snapshotBinaries(binDir);
const quiet = () => {};

interface TokenJson { comms_url: string; broker: { endpoint: string }; ca: string }

describe.skipIf(!docker)("the launcher behind a proxy and a corporate CA", () => {
  let world: DemoWorld;
  let proxy: ConnectProxy;
  let token: TokenJson;
  beforeAll(async () => {
    world = new DemoWorld(bin, docker!.host, quiet);
    await world.startMothership();
    await world.createPool("corporate");
    token = JSON.parse(Buffer.from(world.token, "base64").toString("utf8")) as TokenJson;
    proxy = await startConnectProxy();
  });
  afterAll(async () => {
    await world?.close();
    rmSync(binDir, { recursive: true, force: true });
    await proxy?.close();
  });

  const workers = () => world.workers<{ id: string }>();
  const registered = (launcher?: { log(): string }) =>
    world.waitFor("the worker registered", async () => ((await workers()).length === 1 ? true : null)).catch((err: unknown) => {
      throw new Error(`${String(err)}; the launcher's log:\n${launcher?.log() ?? ""}`);
    });
  const gone = () => world.waitFor("no live worker", async () => (await workers()).length === 0);
  const port = (url: string) => new URL(url).port;

  for (const protocol of ["mqtt", "poll"] as const) {
    test(`${protocol} through HTTPS_PROXY: registered, and the proxy saw a tunnel to the mothership's port only`, async () => {
      const target = protocol === "mqtt" ? token.broker.endpoint : token.comms_url;
      const before = proxy.tunnels.length;
      const launcher = world.startLauncher({ SPACELIFT_WORKER_COMMS_PROTOCOL: protocol, HTTPS_PROXY: proxy.url });
      await registered(launcher);
      const tunnels = proxy.tunnels.slice(before);
      expect(tunnels.length).toBeGreaterThanOrEqual(1);
      expect(new Set(tunnels)).toEqual(new Set([`127.0.0.1:${port(target)}`]));
      expect(launcher.records().find((r) => r.msg === "comms")).toMatchObject({ proxy: `${proxy.url} (HTTPS_PROXY)` });
      await launcher.stop();
      await gone();
    });

    test(`${protocol} with NO_PROXY naming the mothership: registered directly, no tunnel`, async () => {
      const before = proxy.tunnels.length;
      const launcher = world.startLauncher({ SPACELIFT_WORKER_COMMS_PROTOCOL: protocol, https_proxy: proxy.url, no_proxy: "example.com,127.0.0.0/8" });
      await registered(launcher);
      expect(proxy.tunnels.length).toBe(before);
      expect(launcher.records().find((r) => r.msg === "comms")).toMatchObject({ proxy: "none" });
      await launcher.stop();
      await gone();
    });
  }

  test("a comms URL behind a TLS proxy with another CA: refused without the CA, registered with it, and runs see it", async () => {
    const corp = makeForeignCa(world.dir);
    const lb = startTlsReverseProxy(corp, token.comms_url, token.ca);
    try {
      const env = { SPACELIFT_WORKER_COMMS_PROTOCOL: "poll", SPACELIFT_WORKER_COMMS_URL: lb.url };
      const without = world.startLauncher(env);
      await world.waitFor("a refused TLS handshake", async () => without.records().some((r) => r.msg === "mothership unreachable, retrying"));
      await Bun.sleep(3_000);
      expect(await workers()).toHaveLength(0);
      expect(lb.requests()).toBe(0);
      await without.stop();

      const bundle = join(world.dir, "corp-bundle.pem");
      writeFileSync(bundle, corp.caPem);
      const json = Buffer.from(JSON.stringify({ caCertificates: [Buffer.from(corp.caPem).toString("base64")] })).toString("base64");
      for (const extra of [{ SPACELIFT_ADDITIONAL_CA_CERTIFICATES_FILE: bundle }, { SPACELIFT_ADDITIONAL_CA_CERTIFICATES: json }] as Array<Record<string, string>>) {
        const launcher = world.startLauncher({ ...env, ...extra });
        await registered();
        expect(lb.requests()).toBeGreaterThan(0);
        if ("SPACELIFT_ADDITIONAL_CA_CERTIFICATES" in extra) {
          const stack = await world.stack("sees-the-ca", docker!.image, [
            "plan=head -n 1 /opt/spacelift-ca/additional-ca-certificates.pem; grep -c BEGIN /opt/spacelift-ca/ca-bundle.pem; echo ssl=$SSL_CERT_FILE git=$GIT_SSL_CAINFO node=$NODE_EXTRA_CA_CERTS requests=$REQUESTS_CA_BUNDLE; touch /opt/spacelift-ca/x 2>/dev/null || echo read-only",
          ]);
          const run = await world.trigger(stack);
          expect(await world.runEnded(run)).toMatchObject({ state: "FINISHED" });
          const log = await world.runLogs(run);
          expect(log).toContain("-----BEGIN CERTIFICATE-----\n");
          const count = Number(/^(\d+)$/m.exec(log)?.[1]);
          expect(count).toBeGreaterThan(100); // the public roots and the corporate CA
          expect(log).toContain("ssl=/opt/spacelift-ca/ca-bundle.pem git=/opt/spacelift-ca/ca-bundle.pem node=/opt/spacelift-ca/additional-ca-certificates.pem requests=/opt/spacelift-ca/ca-bundle.pem");
          expect(log).toContain("read-only");
        }
        await launcher.stop();
        await gone();
      }
    } finally {
      lb.stop();
    }
  });
});
