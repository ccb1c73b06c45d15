// Several mothership replicas on one Mosquitto configured only by what `mothership broker-config
// mosquitto` writes (real TLS, the real ACL): each has its own client id and none pushes another off; the
// launchers' uplinks reach each replica's shared subscription exactly once; a downlink from any
// replica reaches the launcher; a replica closed, or SIGKILLed with messages queued for it, leaves
// every later message to the others; two processes with one replica id are reported; and a lone
// replica restarted finds what launchers sent meanwhile.
import "reflect-metadata";
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import * as x509 from "@peculiar/x509";
import mqtt from "mqtt";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../../../scripts/testenv/util.ts";
import { createLogger, silentLogger } from "../../../src/log/logger.ts";
import { writeMosquittoConfig } from "../../../src/mothership/broker-config.ts";
import { loadOrCreateBrokerClientIdentity, type BrokerClientIdentity } from "../../../src/mothership/broker-identity.ts";
import { connectExternalBroker, type ExternalBroker } from "../../../src/mothership/external-broker.ts";
import { issuePoolCertificate, loadOrCreateCa, type CertificateAuthority } from "../../../src/pki/ca.ts";
import { toPem } from "../../../src/pki/der.ts";
import { mqttClientId, readonlyTopic, writeonlyTopic } from "../../../src/protocol/topics.ts";
import { ulid } from "../../../src/protocol/ulid.ts";
import { hostCapability } from "../../support/env.ts";
import { Mosquitto, mosquittoInstalled, repoRoot, waitFor } from "./mosquitto-process.ts";

setDefaultTimeout(120_000);

interface Replica {
  name: string;
  broker: ExternalBroker;
  got: string[];
  log: string[];
}

describe.skipIf(!hostCapability("Debian mosquitto (the mosquitto binary)", mosquittoInstalled()))("mothership replicas on one external broker", () => {
  let dir = "";
  let mosquitto: Mosquitto;
  let url = "";
  let ca: CertificateAuthority;
  let identity: BrokerClientIdentity;
  let launcher: mqtt.MqttClient;
  const pool = ulid();
  const worker = ulid();
  const replicas: Replica[] = [];
  const heard: string[] = [];
  const data = () => join(dir, "data");

  async function replica(name: string): Promise<Replica> {
    const r: Replica = { name, got: [], log: [], broker: null as unknown as ExternalBroker };
    r.broker = await connectExternalBroker({
      url,
      namespace: "spacelift",
      replica: name,
      identity,
      caPems: [ca.certificatePem],
      onUplink: (p, w, payload) => {
        if (p === pool && w === worker) r.got.push(payload.toString("utf8"));
      },
      logger: createLogger({ level: "debug", pretty: false, write: (line) => r.log.push(line) }),
    });
    replicas.push(r);
    return r;
  }

  async function send(prefix: string, n: number): Promise<string[]> {
    const sent: string[] = [];
    for (let i = 0; i < n; i++) {
      sent.push(`${prefix}-${i}`);
      await launcher.publishAsync(writeonlyTopic("spacelift", pool, worker), `${prefix}-${i}`, { qos: 1 });
    }
    return sent;
  }

  const all = (rs: Replica[], extra: string[] = []) => [...rs.flatMap((r) => r.got), ...extra];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "replicas-broker-"));
    const port = await freePort();
    const out = join(dir, "mosquitto");
    // What `broker-config mosquitto` writes; running as root, Mosquitto would drop to a user who cannot read the key.
    await writeMosquittoConfig({ out, dataDir: data(), listen: { host: "127.0.0.1", port }, namespace: "spacelift", serverNames: [], user: process.getuid?.() === 0 ? "root" : undefined, logger: silentLogger });
    mosquitto = new Mosquitto(join(out, "mosquitto.conf"), port, join(dir, "mosquitto.log"));
    await mosquitto.start();
    url = `mqtts://127.0.0.1:${port}`;
    ca = await loadOrCreateCa(join(data(), "ca"));
    identity = await loadOrCreateBrokerClientIdentity(data(), ca);
    // A launcher-like client: the pool's certificate, the worker's client id, the pool's topics only.
    const keys = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"])) as CryptoKeyPair;
    const cert = await issuePoolCertificate(ca, pool, new x509.PublicKey(await crypto.subtle.exportKey("spki", keys.publicKey)));
    const key = toPem("PRIVATE KEY", await crypto.subtle.exportKey("pkcs8", keys.privateKey));
    launcher = await mqtt.connectAsync(url, { key, cert: cert.pem, ca: [ca.certificatePem], clientId: mqttClientId(pool, worker), reconnectPeriod: 0 });
    launcher.on("message", (_topic, payload) => heard.push(payload.toString("utf8")));
    await launcher.subscribeAsync(readonlyTopic("spacelift", pool, worker), { qos: 1 });
  });

  afterAll(async () => {
    await launcher?.endAsync(true);
    for (const r of replicas) await r.broker.close();
    await mosquitto?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test("two replicas stay connected; 1,000 uplinks reach exactly one of them each; a downlink from either reaches the launcher", async () => {
    const [r1, r2] = [await replica("r1"), await replica("r2")];
    const sent = await send("both", 1000);
    await waitFor("every uplink handled", () => all([r1, r2]).length >= 1000, 30_000);
    // Anything delivered twice would come in right behind.
    await Bun.sleep(500);
    expect(all([r1, r2]).sort()).toEqual([...sent].sort());
    expect(r1.got.length).toBeGreaterThan(0);
    expect(r2.got.length).toBeGreaterThan(0);
    expect([r1.broker.connected(), r2.broker.connected()]).toEqual([true, true]);
    expect([...r1.log, ...r2.log].filter((l) => l.includes("connection lost") || l.includes("another process"))).toEqual([]);
    // Neither replica's session is taken from it. (Both may empty the pre-replica `mothership.<ns>`
    // session at start, each pushing the other's short-lived drain off it: harmless, nothing is lost.)
    expect(mosquitto.log()).not.toMatch(/Client mothership\.spacelift\.r[12] already connected/);

    await r1.broker.deliver(pool, worker, "from-r1");
    await r2.broker.deliver(pool, worker, "from-r2");
    await waitFor("both downlinks", () => heard.includes("from-r1") && heard.includes("from-r2"));
  });

  test("a replica closed: the other gets every later message", async () => {
    const [r1, r2] = replicas as [Replica, Replica];
    await r2.broker.close();
    const before = r1.got.length;
    const sent = await send("closed", 500);
    await waitFor("every later uplink at r1", () => r1.got.length - before >= 500, 30_000);
    await Bun.sleep(500);
    expect(r1.got.slice(before).sort()).toEqual([...sent].sort());
  });

  test("a replica SIGKILLed with messages on their way to it: the other takes them, each once", async () => {
    const [r1] = replicas as [Replica];
    const proc = Bun.spawn([process.execPath, join(repoRoot, "test/integration/carriers/replica-process.ts"), url, data(), "r3"], { stdout: "pipe", stderr: "inherit" });
    const lines: string[] = [];
    void (async () => {
      const decoder = new TextDecoder();
      let rest = "";
      for await (const chunk of proc.stdout) {
        rest += decoder.decode(chunk);
        const parts = rest.split("\n");
        rest = parts.pop() ?? "";
        lines.push(...parts);
      }
    })();
    try {
      await waitFor("r3 connected", () => lines.includes("connected"), 20_000);
      const before = r1.got.length;
      const warm = await send("warm", 200);
      await waitFor("the warm-up handled", () => r1.got.length - before + lines.length - 1 >= 200, 30_000);
      expect(lines.length - 1).toBeGreaterThan(0);
      proc.kill("SIGKILL");
      await proc.exited;
      const r3 = lines.filter((l) => l !== "connected");
      const after = r1.got.length;
      const sent = await send("killed", 1000);
      await waitFor("every message after the kill at r1", () => r1.got.length - after >= 1000, 60_000);
      await Bun.sleep(500);
      expect(r1.got.slice(after).sort()).toEqual([...sent].sort());
      expect([...r1.got.slice(before, after), ...r3].sort()).toEqual([...warm].sort());
      expect(r1.log.some((l) => l.includes("took over the broker session of a replica that is down"))).toBe(true);
    } finally {
      proc.kill("SIGKILL");
    }
  });

  test("a second process with the same replica id is reported", async () => {
    const [r1] = replicas as [Replica];
    const twin = await replica("r1");
    await waitFor("the clash reported", () => [...r1.log, ...twin.log].find((l) => l.includes("another process connects to the broker as this replica")), 30_000);
    await twin.broker.close();
    replicas.splice(replicas.indexOf(twin), 1);
    await waitFor("r1 connected again", () => r1.broker.connected(), 10_000);
  });

  test("a lone replica restarted finds what launchers sent while it was away", async () => {
    const r1 = replicas[0]!;
    await r1.broker.close();
    replicas.splice(0, 1);
    const sent = await send("away", 100);
    const back = await replica("r1");
    await waitFor("what was sent while away", () => back.got.length >= 100, 30_000);
    await Bun.sleep(500);
    expect([...back.got].sort()).toEqual([...sent].sort());
  });
});
