/**
 * `mothership serve`: opens (or creates) the data dir and wires store, CA, broker, control plane
 * and HTTP API together. Everything durable lives in the data dir, so a restart with the same dir
 * continues where the last process stopped; launchers reconnect and say hello again.
 */
import "reflect-metadata";
import { stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { SpaceliftError } from "../errors.ts";
import type { Logger } from "../log/logger.ts";
import { issueServerCertificate, loadOrCreateCa } from "../pki/ca.ts";
import { adminTokenPath, loadOrCreateAdminToken } from "./admin-token.ts";
import { ENDPOINT_FILE } from "./cli/client.ts";
import { Carriers } from "./carriers.ts";
import { createCommsPoll } from "./comms-poll.ts";
import { openCommsState } from "./comms-state.ts";
import { FILE_MODE, prepareDataDir, touchPrivate } from "./data-dir.ts";
import { loadOrCreateSecretBox, type SecretBox } from "./secret-box.ts";
import { createMetricsEndpoint, METRICS_PATH } from "./metrics.ts";
import { ControlPlane } from "./control.ts";
import { DownlinkSigner } from "./downlink-signer.ts";
import { createApi } from "./http/api.ts";
import { createWebUi } from "./web/handler.ts";
import { defaultDownloadsDir } from "./http/downloads.ts";
import { pollOutbox } from "./outbox.ts";
import { startMqttCarrier, type ExternalBrokerConfig } from "./outbox-mqtt.ts";
import { PoolService } from "./pool-service.ts";
import type { LogLimits } from "./run-log-intake.ts";
import { advertisedHost, urlHost } from "./serve-config.ts";
import { openStore, type Store } from "./store/index.ts";

/** The name of the long-poll carrier in `Carriers` (carriers.ts); the MQTT one names itself. */
const POLL_CARRIER = "poll";

export interface ServeConfig {
  dataDir: string;
  /** `--database`: a `postgres://` URL (its password never logged); default the SQLite file `mothership.db` in the data dir. */
  database?: string;
  httpHost: string;
  httpPort: number;
  /** Serve the API over plain HTTP (behind a TLS-terminating proxy); default is HTTPS with our CA. */
  httpPlain: boolean;
  mqttHost: string;
  mqttPort: number;
  /** `--broker`: an existing broker instead of the embedded one (docs/external-broker.md). */
  externalBroker?: ExternalBrokerConfig;
  /** What tokens advertise; default mqtts://<mqtt host>:<mqtt port>, or the --broker URL. */
  brokerEndpoint?: string;
  /** What tokens advertise as comms_url; default the API's own URL. */
  commsUrl?: string;
  namespace: string;
  heartbeatSeconds: number;
  scheduleTimeoutMs: number;
  /** What a run's log may take; DEFAULT_LOG_LIMITS when absent (`--max-log-chunk-bytes`, `--max-run-log-bytes`). */
  logLimits?: LogLimits;
  /** The release directory /downloads serves (`--downloads`); default: beside the binary (http/downloads.ts). */
  downloadsDir?: string;
  logger: Logger;
}

export interface RunningMothership {
  httpUrl: string;
  httpPort: number;
  mqttPort: number;
  brokerEndpoint: string;
  adminToken: string;
  /** True when this start created the admin token. */
  adminTokenCreated: boolean;
  /** Where the admin token is kept (0600); `serve` prints this path, never the token. */
  adminTokenPath: string;
  caPem: string;
  caPath: string;
  stop(): Promise<void>;
}

export async function startMothership(cfg: ServeConfig): Promise<RunningMothership> {
  const log = cfg.logger;
  // Private (0700 dir, 0600 files, owned by us) before anything in it is read or written.
  await prepareDataDir(cfg.dataDir, log);
  const ca = await loadOrCreateCa(join(cfg.dataDir, "ca"));
  const signer = await DownlinkSigner.open(join(cfg.dataDir, "downlink"), ca, log);
  const admin = await loadOrCreateAdminToken(cfg.dataDir);
  const dbPath = join(cfg.dataDir, "mothership.db");
  if (cfg.database === undefined) await touchPrivate(dbPath);
  const secrets = await loadOrCreateSecretBox(cfg.dataDir);
  const store = await openStore(cfg.database ?? dbPath, { secrets: secrets.box });
  log.info("store open", { engine: store.engine });
  await sealStoredSecrets(store, secrets.box, log);
  const extraHosts = [cfg.httpHost, cfg.mqttHost];
  if (cfg.brokerEndpoint) extraHosts.push(new URL(cfg.brokerEndpoint).hostname.replace(/^\[|\]$/g, ""));
  if (cfg.commsUrl) extraHosts.push(new URL(cfg.commsUrl).hostname.replace(/^\[|\]$/g, ""));
  const server = await issueServerCertificate(ca, extraHosts);

  let control: ControlPlane | null = null;
  // Workers that talk HTTP long-poll get their downlink in a mailbox; MQTT workers through the broker.
  // Mailboxes, request nonces and each worker's carrier: in the process, or on PostgreSQL shared by replicas.
  const comms = await openCommsState(store, log);
  const mailboxes = comms.mailboxes;
  let carriers: Carriers | null = null;
  const mqtt = await startMqttCarrier({
    dataDir: cfg.dataDir,
    namespace: cfg.namespace,
    mqttHost: cfg.mqttHost,
    mqttPort: cfg.mqttPort,
    external: cfg.externalBroker,
    ca,
    server,
    store,
    onUplink: async (pool, worker, payload) => {
      await carriers?.spoke(pool, worker, mqtt.name);
      await control?.handleUplink(pool, worker, payload);
    },
    // While the external broker is away its launchers cannot be heard: that silence is not theirs.
    onLink: (up) => control?.carrierDown("external-broker", !up),
    logger: log,
  });
  // Every message to a launcher leaves signed for its pool and worker (here, once), whichever way it goes.
  carriers = new Carriers({
    sign: (pool, worker, message) => signer.sign(pool, worker, message),
    outboxes: { [mqtt.name]: mqtt, [POLL_CARRIER]: pollOutbox(mailboxes, log) },
    fallback: mqtt.name,
    book: comms.carriers,
    logger: log,
  });
  control = new ControlPlane({
    store,
    outbox: carriers,
    logger: log,
    heartbeatSeconds: cfg.heartbeatSeconds,
    scheduleTimeoutMs: cfg.scheduleTimeoutMs,
    logLimits: cfg.logLimits,
  });
  const brokerEndpoint = cfg.brokerEndpoint ?? mqtt.endpoint;

  const downloadsDir = await downloadsDirectory(cfg.downloadsDir, log);
  const endpointsRef = { brokerEndpoint, namespace: cfg.namespace, commsUrl: cfg.commsUrl ?? "" };
  const web = createWebUi({ store, adminToken: admin.token, logger: log });
  const api = createApi({
    store,
    control,
    pools: new PoolService(store, ca, endpointsRef),
    adminToken: admin.token,
    disconnectPool: async (pool) => {
      const heard = await carriers.forgetPool(pool);
      await mailboxes.dropPool(pool);
      const live = await store.workers.listLive(pool);
      mqtt.poolRevoked(pool, [...(heard.get(mqtt.name) ?? []), ...live.map((w) => w.id)]);
    },
    comms: createCommsPoll({ store, control, mailboxes, carriers, carrier: POLL_CARRIER, replays: comms.replays, logger: log }),
    downloadsDir,
    web,
    logger: log,
  });
  const metrics = createMetricsEndpoint({ store, mailboxes, adminToken: admin.token });
  const http = Bun.serve({
    hostname: cfg.httpHost,
    port: cfg.httpPort,
    // /metrics beside the API, behind the same admin token (metrics.ts).
    fetch: (req) => (new URL(req.url).pathname === METRICS_PATH ? metrics(req) : api(req)),
    // Longer than a downlink long-poll (25 s) waits, so Bun does not cut one while it waits.
    idleTimeout: 60,
    ...(cfg.httpPlain ? {} : { tls: { cert: server.certificatePem, key: server.keyPem } }),
  });
  const httpUrl = `${cfg.httpPlain ? "http" : "https"}://${urlHost(advertisedHost(cfg.httpHost))}:${http.port}`;
  endpointsRef.commsUrl = cfg.commsUrl ?? httpUrl;
  log.info("HTTP API listening", { url: httpUrl });
  if (endpointsRef.commsUrl.startsWith("http:")) {
    log.warn("tokens advertise a plain http:// comms URL: poll launchers refuse it unless they set SPACELIFT_WORKER_COMMS_INSECURE_HTTP=true, and run logs then travel readable; give --comms-url https://...", { comms_url: endpointsRef.commsUrl });
  }
  // The local CLI (`--data DIR`) finds the API here, also when it listens on a port picked at start.
  await writeFile(join(cfg.dataDir, ENDPOINT_FILE), JSON.stringify({ http_url: httpUrl, broker_endpoint: brokerEndpoint }) + "\n", { mode: FILE_MODE });

  // Sweep often enough that a silent worker is noticed within a heartbeat of its deadline; a sweep
  // starts only after the last one ended (control.sweep() joins one still under way and logs its own
  // failures), and `stop` waits for the one under way.
  let sweeping: Promise<void> = Promise.resolve();
  let sweepingComms: Promise<void> | null = null;
  const sweeper = setInterval(() => {
    sweepingComms ??= comms.sweep().finally(() => (sweepingComms = null));
    sweeping = control.sweep();
  }, Math.max(250, Math.min(cfg.heartbeatSeconds * 1000, 5000)));
  await control.dispatch();

  return {
    httpUrl,
    httpPort: http.port ?? cfg.httpPort,
    mqttPort: mqtt.port,
    brokerEndpoint,
    adminToken: admin.token,
    adminTokenCreated: admin.created,
    adminTokenPath: adminTokenPath(cfg.dataDir),
    caPem: ca.certificatePem,
    caPath: join(cfg.dataDir, "ca", "ca.crt"),
    async stop() {
      clearInterval(sweeper);
      await mailboxes.close();
      web.close();
      await http.stop(true);
      await mqtt.close();
      await sweeping;
      await sweepingComms;
      await comms.close();
      await store.close();
    },
  };
}

/**
 * Stack secret values at rest: plaintext ones (a data dir of an older version) are sealed now; values
 * sealed under a key the keyring does not hold are reported, as their stacks' runs cannot be built.
 */
async function sealStoredSecrets(store: Store, box: SecretBox, log: Logger): Promise<void> {
  const { keyIds, plaintext } = await store.stacks.sealedKeyIds();
  if (plaintext > 0) {
    const sealed = await store.stacks.reseal(box);
    log.info("stack secret values were stored in plaintext; sealed them with the data dir's secrets.key", sealed);
  }
  const missing = [...keyIds].filter((id) => !box.hasKey(id));
  if (missing.length > 0) {
    log.error("some stack secret values are sealed with keys that secrets.key does not hold; runs of those stacks fail until the stacks are made again", { keys: missing });
  }
}

/** The --downloads directory (which must exist), else the default one when it holds a release. */
async function downloadsDirectory(given: string | undefined, log: Logger): Promise<string | undefined> {
  if (given !== undefined) {
    const st = await stat(given).catch(() => null);
    if (!st?.isDirectory()) throw new SpaceliftError("invalid-request", `--downloads ${given} is not a directory; give the directory \`make release\` wrote`);
  }
  const dir = given ?? (await defaultDownloadsDir());
  if (dir) log.info("serving release downloads", { dir, path: "/downloads/" });
  return dir;
}
