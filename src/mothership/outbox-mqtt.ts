/**
 * The MQTT carrier of `serve`: the embedded broker (broker.ts), or with `--broker` an external one
 * that the mothership is a client of (external-broker.ts), whose CRL it keeps current (crl.ts).
 * Either way the rest of the mothership sees an Outbox, uplinks as (pool, worker, payload), and one
 * call when a pool's certificate is revoked.
 */
import { readFile } from "node:fs/promises";
import { SpaceliftError } from "../errors.ts";
import type { Logger } from "../log/logger.ts";
import type { CertificateAuthority, ServerCredentials } from "../pki/ca.ts";
import { startBroker } from "./broker.ts";
import { CrlPublisher } from "./crl.ts";
import { loadOrCreateBrokerClientIdentity } from "./broker-identity.ts";
import { connectExternalBroker } from "./external-broker.ts";
import type { Outbox } from "./outbox.ts";
import { resolveReplicaId } from "./replica-id.ts";
import { brokerEndpointFor } from "./serve-config.ts";
import type { Store } from "./store/index.ts";

/** `serve --broker` and the flags that go with it (serve-config.ts). */
export interface ExternalBrokerConfig {
  /** `mqtts://HOST:PORT` of the broker. */
  url: string;
  /** PEM bundle the broker's server certificate chains to, when not the mothership's CA (`--broker-ca`). */
  caFile?: string;
  /** Where the broker reads the CA's CRL (`--broker-crl`), rewritten on every pool reset and delete. */
  crlPath?: string;
  /** Run after each CRL write, e.g. `systemctl reload mosquitto` (`--broker-reload-command`). */
  reloadCommand?: string;
  /** This process among the replicas on the broker (`--replica-id`); default the data dir's (replica-id.ts). */
  replicaId?: string;
}

export interface MqttCarrier extends Outbox {
  /** Its name among the carriers (carriers.ts). */
  readonly name: "embedded-broker" | "external-broker";
  /** The broker tokens advertise unless `--broker-endpoint` says otherwise. */
  readonly endpoint: string;
  /** The embedded broker's port; the external broker's port from its URL. */
  readonly port: number;
  /** A pool was reset or deleted: its old certificate no longer gets in, and its live sessions end. */
  poolRevoked(pool: string, workers: readonly string[]): void;
  close(): Promise<void>;
}

export interface MqttCarrierOptions {
  dataDir: string;
  namespace: string;
  mqttHost: string;
  mqttPort: number;
  external?: ExternalBrokerConfig;
  ca: CertificateAuthority;
  server: ServerCredentials;
  store: Store;
  /** Called for one worker's messages one after another, in arrival order: each after the last one settled. */
  onUplink(pool: string, worker: string, payload: Buffer): Promise<void>;
  /** The external broker connection was lost (false) or made again (true). */
  onLink?(up: boolean): void;
  logger: Logger;
}

const DAY = 24 * 60 * 60 * 1000;
/** Most sessions of one revoked pool ended one by one at the external broker. */
const MAX_KICKS = 1000;
/** Between the reload command and ending a revoked pool's sessions. */
const RELOAD_SETTLE_MS = 1000;

/**
 * Runs each worker's uplinks in the order they arrived, one at a time: the broker hands them over
 * without waiting, and handling one reads and writes the store asynchronously. Workers do not wait
 * for each other. A failure is logged and the next message still runs.
 */
function perWorkerInOrder(handle: (pool: string, worker: string, payload: Buffer) => Promise<void>, log: Logger) {
  const tails = new Map<string, Promise<void>>();
  return (pool: string, worker: string, payload: Buffer): void => {
    const key = `${pool}/${worker}`;
    const tail: Promise<void> = (tails.get(key) ?? Promise.resolve())
      .then(() => handle(pool, worker, payload))
      .catch((err: unknown) => log.error("uplink handler failed", { pool, worker, error: err }))
      .then(() => {
        if (tails.get(key) === tail) tails.delete(key);
      });
    tails.set(key, tail);
  };
}

export async function startMqttCarrier(o: MqttCarrierOptions): Promise<MqttCarrier> {
  if (!o.external) {
    const broker = await startBroker({
      host: o.mqttHost,
      port: o.mqttPort,
      namespace: o.namespace,
      caPem: o.ca.certificatePem,
      serverCertPem: o.server.certificatePem,
      serverKeyPem: o.server.keyPem,
      isCertificateValid: (pool, serial) => o.store.pools.isCurrentSerial(pool, serial),
      onUplink: perWorkerInOrder(o.onUplink, o.logger.child({ component: "broker" })),
      logger: o.logger,
    });
    return {
      name: "embedded-broker",
      endpoint: brokerEndpointFor(o.mqttHost, broker.port),
      port: broker.port,
      deliver: (pool, worker, message) => broker.deliver(pool, worker, message),
      poolRevoked: (pool) => broker.disconnectPool(pool),
      close: () => broker.close(),
    };
  }
  const ext = o.external;
  const log = o.logger.child({ component: "external-broker" });
  const caPems = [o.ca.certificatePem];
  if (ext.caFile) {
    const text = await readFile(ext.caFile, "utf8").catch((err: unknown) => {
      throw new SpaceliftError("usage", `--broker-ca ${ext.caFile} cannot be read; give a PEM file of the CA certificates the broker's certificate chains to`, { cause: err });
    });
    caPems.push(text);
  }
  const crl = ext.crlPath ? new CrlPublisher({ ca: o.ca, path: ext.crlPath, revocations: () => o.store.pools.revocations(), reloadCommand: ext.reloadCommand, logger: o.logger }) : null;
  if (crl) await crl.publish("start");
  else log.warn("no --broker-crl: a reset or deleted pool's old certificate can still connect to the broker; see docs/external-broker.md");
  // OpenSSL refuses every client once a CRL has passed its nextUpdate; a fresh one daily stays far from it.
  const warnedPools = new Set<string>();
  const refresh = crl ? setInterval(() => void crl.publish("daily refresh"), DAY) : null;
  refresh?.unref();
  const broker = await connectExternalBroker({
    url: ext.url,
    namespace: o.namespace,
    replica: await resolveReplicaId(o.dataDir, ext.replicaId),
    identity: await loadOrCreateBrokerClientIdentity(o.dataDir, o.ca),
    caPems,
    // The broker's ACL vouches for the pool in the topic, not for the pool still being ours: a deleted
    // pool's launchers may speak until their sessions end. The embedded broker asks the store at connect.
    onUplink: perWorkerInOrder(async (pool, worker, payload) => {
      if (await o.store.pools.get(pool)) return o.onUplink(pool, worker, payload);
      if (warnedPools.size < 1000 && !warnedPools.has(pool)) {
        warnedPools.add(pool);
        log.warn("message of a pool that does not exist (deleted?) dropped; check the broker's CRL and reload", { pool, worker });
      }
    }, log),
    onLink: o.onLink,
    logger: o.logger,
  });
  return {
    name: "external-broker",
    endpoint: ext.url,
    port: Number(new URL(ext.url).port),
    deliver: (pool, worker, message) => broker.deliver(pool, worker, message),
    poolRevoked(pool, workers) {
      // First the CRL (and the broker's reload), then the live sessions: their reconnects meet the new CRL.
      // `kill -HUP` returns before the broker has reloaded; a second is plenty for Mosquitto.
      void (crl ? crl.publish(`pool ${pool} revoked`) : Promise.resolve())
        .then(() => (ext.reloadCommand ? Bun.sleep(RELOAD_SETTLE_MS) : undefined))
        .then(() => broker.kick(pool, [...new Set(workers)].slice(0, MAX_KICKS)))
        .catch((err: unknown) => log.error("ending a revoked pool's broker sessions failed", { pool, error: err }));
    },
    async close() {
      if (refresh) clearInterval(refresh);
      await broker.close();
    },
  };
}
