/**
 * External broker mode (`serve --broker mqtts://HOST:PORT`): the mothership is an MQTT client of a
 * broker someone else runs (Mosquitto configured by `broker-config mosquitto`, EMQX, AWS IoT Core;
 * docs/external-broker.md), instead of running its own. It connects with its own client
 * certificate from the mothership's CA (CN `mothership`, made once and kept in the data dir),
 * subscribes to `<ns>/writeonly/+/+` and publishes each worker's messages to
 * `<ns>/readonly/<pool>/<worker>`. The pool of an uplink is the one in its topic: the broker's ACL lets
 * a pool's certificate write only its own subtree, so the topic is as good as the certificate.
 *
 * The session is persistent (clean: false, QoS 1), so what launchers publish while the mothership
 * restarts waits at the broker. The `mqtt`-family imports of external broker mode stay in this file.
 */
import { connect, type IClientOptions, type MqttClient } from "mqtt";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import * as x509 from "@peculiar/x509";
import { errorMessage, SpaceliftError } from "../errors.ts";
import type { Logger } from "../log/logger.ts";
import { toPem } from "../pki/der.ts";
import type { CertificateAuthority } from "../pki/ca.ts";
import { allWriteonlyFilter, mqttClientId, parseTopic, readonlyTopic } from "../protocol/topics.ts";
import { MAX_MQTT_PACKET_BYTES } from "./mqtt-packet-limit.ts";
import type { Outbox } from "./outbox.ts";

/** The CN (and so, with `use_identity_as_username`, the broker user name) of the mothership's client certificate. */
export const MOTHERSHIP_BROKER_USER = "mothership";
const DAY = 24 * 60 * 60 * 1000;
const KEY_ALG = { name: "ECDSA", namedCurve: "P-256" } as const;

export interface BrokerClientIdentity {
  certificatePem: string;
  keyPem: string;
}

/**
 * The mothership's client certificate for an external broker, in `<data>/broker-client/`
 * (`mothership.key` 0600, `mothership.crt`): made on first use, issued again when it has less than
 * 30 days left or another CA issued it.
 */
export async function loadOrCreateBrokerClientIdentity(dataDir: string, ca: CertificateAuthority): Promise<BrokerClientIdentity> {
  const dir = join(dataDir, "broker-client");
  const certPath = join(dir, "mothership.crt");
  const keyPath = join(dir, "mothership.key");
  const existing = await Promise.all([readFile(certPath, "utf8"), readFile(keyPath, "utf8")]).catch(() => null);
  if (existing) {
    const cert = new x509.X509Certificate(existing[0]);
    const fresh = cert.notAfter.getTime() - Date.now() > 30 * DAY;
    if (fresh && cert.issuer === ca.certificate.subject && (await cert.verify({ publicKey: ca.certificate.publicKey, signatureOnly: true }))) {
      return { certificatePem: existing[0], keyPem: existing[1] };
    }
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const keys = (await crypto.subtle.generateKey(KEY_ALG, true, ["sign", "verify"])) as CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: "01" + Buffer.from(crypto.getRandomValues(new Uint8Array(15))).toString("hex"),
    subject: `CN=${MOTHERSHIP_BROKER_USER}, O=Spacelift mothership`,
    issuer: ca.certificate.subject,
    notBefore: new Date(now - 5 * 60 * 1000),
    notAfter: new Date(now + 397 * DAY),
    publicKey: keys.publicKey,
    signingKey: ca.privateKey,
    signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth], false),
      await x509.AuthorityKeyIdentifierExtension.create(ca.certificate, false),
    ],
  });
  const keyPem = toPem("PRIVATE KEY", await crypto.subtle.exportKey("pkcs8", keys.privateKey));
  const certificatePem = cert.toString("pem") + "\n";
  await writeFile(keyPath, keyPem, { mode: 0o600 });
  await writeFile(certPath, certificatePem, { mode: 0o600 });
  return { certificatePem, keyPem };
}

export interface ExternalBrokerOptions {
  /** `mqtts://HOST:PORT`. */
  url: string;
  namespace: string;
  identity: BrokerClientIdentity;
  /** CA certificates the broker's server certificate must chain to. */
  caPems: readonly string[];
  onUplink(pool: string, worker: string, payload: Buffer): void;
  /** The connection to the broker was lost (false) or made again (true). */
  onLink?(up: boolean): void;
  /** How long `connectExternalBroker` waits for the first connection before it returns anyway (retrying). */
  firstConnectMs?: number;
  logger: Logger;
}

export interface ExternalBroker extends Outbox {
  /**
   * Ends the broker sessions of these workers of `pool` (a reset or deleted pool): the mothership
   * connects with each one's client id, which makes the broker drop the launcher's connection. The
   * launcher's reconnect then meets the broker's CRL.
   */
  kick(pool: string, workers: readonly string[]): Promise<void>;
  connected(): boolean;
  close(): Promise<void>;
}

export async function connectExternalBroker(o: ExternalBrokerOptions): Promise<ExternalBroker> {
  const log = o.logger.child({ component: "external-broker" });
  const tls = { key: o.identity.keyPem, cert: o.identity.certificatePem, ca: [...o.caPems], rejectUnauthorized: true };
  const options: IClientOptions = {
    ...tls,
    protocolVersion: 4,
    clientId: `${MOTHERSHIP_BROKER_USER}.${o.namespace}`,
    clean: false,
    reconnectPeriod: 1000,
    connectTimeout: 10_000,
    keepalive: 30,
  };
  const client: MqttClient = connect(o.url, options);
  // An object, not a `let`: the event handlers change it while the first-connect loop below waits.
  const link: { state: "connecting" | "connected" | "down"; closing: boolean } = { state: "connecting", closing: false };

  client.on("connect", (connack) => {
    log.info("connected to the external broker", { url: o.url, session_present: connack.sessionPresent });
    link.state = "connected";
    o.onLink?.(true);
    // A kept session keeps its subscription; subscribing again is harmless and covers a broker that forgot it.
    client.subscribe(allWriteonlyFilter(o.namespace), { qos: 1 }, (err, granted) => {
      if (err) log.error("subscription to the launchers' topics failed", { error: err.message });
      else if (granted?.some((g) => g.qos === 128)) log.error("the broker refused the subscription to the launchers' topics; its ACL must let user mothership read <ns>/#", { filter: allWriteonlyFilter(o.namespace) });
    });
  });
  client.on("close", () => {
    if (link.state === "connected" && !link.closing) {
      log.warn("external broker connection lost; reconnecting every second", { url: o.url });
      o.onLink?.(false);
    }
    link.state = "down";
  });
  client.on("error", (err) => {
    // Warned once per outage: a broker that stays down would otherwise fill the log every second.
    if (link.state === "down") log.debug("external broker connection error", { url: o.url, error: err.message });
    else log.warn("external broker connection error", { url: o.url, error: err.message });
  });
  client.on("message", (topic, payload) => {
    if (payload.byteLength > MAX_MQTT_PACKET_BYTES) {
      log.warn("message over the size limit from the broker dropped", { topic: topic.slice(0, 200), bytes: payload.byteLength });
      return;
    }
    const addr = parseTopic(topic);
    if (!addr || addr.direction !== "writeonly" || addr.namespace !== o.namespace) return;
    try {
      o.onUplink(addr.pool, addr.worker, payload);
    } catch (err) {
      log.error("uplink handler failed", { pool: addr.pool, worker: addr.worker, error: err });
    }
  });

  const deadline = Date.now() + (o.firstConnectMs ?? 10_000);
  while (!client.connected && Date.now() < deadline) await Bun.sleep(50);
  if (!client.connected) log.warn("the external broker does not answer yet; the mothership keeps trying", { url: o.url });

  return {
    deliver(pool, worker, message) {
      // MQTT.js would queue without bound while the broker is away; a launcher learns its state again
      // from the answer to its next hello, and an unconfirmed schedule goes back to the queue.
      if (!client.connected) return Promise.reject(new SpaceliftError("broker-unavailable", "the external broker is not connected"));
      return client.publishAsync(readonlyTopic(o.namespace, pool, worker), message, { qos: 1 }).then(() => undefined);
    },
    async kick(pool, workers) {
      for (const worker of workers) {
        const taker = connect(o.url, { ...tls, protocolVersion: 4, clientId: mqttClientId(pool, worker), clean: true, reconnectPeriod: 0, connectTimeout: 5000 });
        await new Promise<void>((resolve) => {
          const done = () => resolve();
          taker.once("connect", done);
          taker.once("error", done);
          taker.once("close", done);
        });
        await taker.endAsync(true).catch(() => {});
        log.info("broker session of a revoked pool's worker ended", { pool, worker });
      }
    },
    connected: () => client.connected,
    async close() {
      link.closing = true;
      await client.endAsync().catch((err: unknown) => log.debug("external broker close", { error: errorMessage(err) }));
    },
  };
}
