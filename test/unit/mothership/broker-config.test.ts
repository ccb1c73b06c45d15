// External broker files: the CRL the mothership writes is one OpenSSL takes (signed by the CA, the
// revoked serial refused by `openssl verify -crl_check`, a live one accepted); written atomically and
// world-readable whatever the umask; `broker-config mosquitto` writes the files the docs name, the ACL
// keeps pools to their own subtrees; and `serve --broker` flags are checked.
import "reflect-metadata";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as x509 from "@peculiar/x509";
import { silentLogger } from "../../../src/log/logger.ts";
import { mosquittoAcl, writeMosquittoConfig } from "../../../src/mothership/broker-config.ts";
import { parseArgs } from "../../../src/mothership/cli/args.ts";
import { makeCrl, writeCrlFile } from "../../../src/mothership/crl.ts";
import { SERVE_FLAGS, serveConfigFromArgs } from "../../../src/mothership/serve-config.ts";
import { issuePoolCertificate, loadOrCreateCa, type CertificateAuthority } from "../../../src/pki/ca.ts";

let dir = "";
let ca: CertificateAuthority;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "broker-config-"));
  ca = await loadOrCreateCa(join(dir, "ca"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function poolCert(id: string) {
  const keys = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"])) as CryptoKeyPair;
  const spki = await crypto.subtle.exportKey("spki", keys.publicKey);
  return issuePoolCertificate(ca, id, new x509.PublicKey(spki));
}

function openssl(args: string[]): { code: number; out: string } {
  const r = Bun.spawnSync(["openssl", ...args], { stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode ?? -1, out: r.stdout.toString() + r.stderr.toString() };
}

describe("the CA's CRL", () => {
  test("OpenSSL verifies it with the CA and refuses exactly the revoked pool certificates", async () => {
    const revoked = await poolCert("01REVOKED000000000000000000");
    const live = await poolCert("01LIVE000000000000000000000");
    const crlPath = join(dir, "ca.crl");
    await writeCrlFile(crlPath, await makeCrl(ca, [{ serial: revoked.serial, revoked_at: "2026-01-02T03:04:05Z" }]));
    await writeFile(join(dir, "ca.crt"), ca.certificatePem);
    await writeFile(join(dir, "revoked.crt"), revoked.pem);
    await writeFile(join(dir, "live.crt"), live.pem);
    expect(openssl(["crl", "-in", crlPath, "-CAfile", join(dir, "ca.crt"), "-noout"]).out).toContain("verify OK");
    expect(openssl(["crl", "-in", crlPath, "-noout", "-text"]).out.toUpperCase()).toContain(revoked.serial.toUpperCase());
    const base = ["verify", "-CAfile", join(dir, "ca.crt"), "-CRLfile", crlPath, "-crl_check"];
    const refused = openssl([...base, join(dir, "revoked.crt")]);
    expect(refused.code).not.toBe(0);
    expect(refused.out).toContain("certificate revoked");
    expect(openssl([...base, join(dir, "live.crt")])).toMatchObject({ code: 0 });
  });

  test("written whole, 0644 even under umask 077 (the broker may run as another user)", async () => {
    const old = process.umask(0o077);
    try {
      const path = join(dir, "umask.crl");
      await writeCrlFile(path, await makeCrl(ca, []));
      expect((await stat(path)).mode & 0o777).toBe(0o644);
      expect(await readFile(path, "utf8")).toStartWith("-----BEGIN X509 CRL-----\n");
    } finally {
      process.umask(old);
    }
  });
});

describe("broker-config mosquitto", () => {
  test("writes the conf, ACL, CA, CRL and a server certificate for the listen address; the key is 0600", async () => {
    const out = join(dir, "mq");
    const files = await writeMosquittoConfig({ out, dataDir: join(dir, "fresh-data"), listen: { host: "127.0.0.1", port: 18883 }, namespace: "acme", serverNames: ["mq.example.com"], logger: silentLogger });
    const conf = await readFile(files.conf, "utf8");
    for (const line of ["listener 18883 127.0.0.1", "require_certificate true", "use_identity_as_username true", `crlfile ${join(out, "ca.crl")}`, `acl_file ${join(out, "acl")}`, "allow_anonymous false"]) {
      expect(conf.split("\n")).toContain(line);
    }
    expect((await stat(join(out, "server.key"))).mode & 0o777).toBe(0o600);
    // The CA was made first, in the new data dir, and the broker's certificate chains to it.
    const caPem = await readFile(join(dir, "fresh-data", "ca", "ca.crt"), "utf8");
    expect(await readFile(files.ca, "utf8")).toBe(caPem);
    const server = new x509.X509Certificate(await readFile(join(out, "server.crt"), "utf8"));
    expect(server.issuer).toBe(new x509.X509Certificate(caPem).subject);
    const names = server.getExtension(x509.SubjectAlternativeNameExtension)!.names.items.map((n) => n.value);
    expect(names).toEqual(expect.arrayContaining(["127.0.0.1", "mq.example.com"]));
    expect(openssl(["crl", "-in", files.crl, "-CAfile", files.ca, "-noout"]).out).toContain("verify OK");
  });

  test("the ACL: a pool (user = certificate CN) writes only its uplinks and reads only its downlinks; the mothership all of the namespace", () => {
    expect(mosquittoAcl("acme").split("\n").filter((l) => l !== "" && !l.startsWith("#"))).toEqual([
      "pattern write acme/writeonly/%u/+",
      "pattern read acme/readonly/%u/+",
      "user mothership",
      "topic readwrite acme/#",
    ]);
  });
});

describe("serve --broker flags", () => {
  const settings = (argv: string[]) => serveConfigFromArgs(parseArgs(argv, SERVE_FLAGS), {});

  test("--broker replaces the embedded broker and is what tokens advertise unless --broker-endpoint says otherwise", () => {
    const s = settings(["--broker", "mqtts://mq.internal:8883", "--broker-crl", "/etc/mosquitto/spacelift/ca.crl", "--broker-reload-command", "systemctl reload mosquitto"]);
    expect(s.externalBroker).toEqual({ url: "mqtts://mq.internal:8883", caFile: undefined, crlPath: "/etc/mosquitto/spacelift/ca.crl", reloadCommand: "systemctl reload mosquitto" });
    expect(s.brokerEndpoint).toBe("mqtts://mq.internal:8883");
    expect(settings(["--broker", "mqtts://mq.internal:8883", "--broker-endpoint", "mqtts://mq.example.com:443"]).brokerEndpoint).toBe("mqtts://mq.example.com:443");
    expect(settings([]).externalBroker).toBeUndefined();
  });

  test("usage errors say what goes with what", () => {
    expect(() => settings(["--broker", "mqtt://mq:1883"])).toThrow("--broker must be mqtts://HOST:PORT");
    expect(() => settings(["--broker", "mqtts://mq:8883", "--mqtt", "0.0.0.0:8883"])).toThrow("give one of them");
    expect(() => settings(["--broker-crl", "/x.crl"])).toThrow("--broker-crl goes with --broker");
    expect(() => settings(["--broker", "mqtts://mq:8883", "--broker-reload-command", "true"])).toThrow("give --broker-crl PATH too");
  });
});
