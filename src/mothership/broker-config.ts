/**
 * `mothership broker-config mosquitto --out DIR`: everything a Mosquitto needs to be the broker of
 * `serve --broker` (docs/external-broker.md): a TLS listener that requires a client certificate from
 * the mothership's CA and takes its CN as the user name, an ACL file that gives each pool (user = pool
 * id) only its own two subtrees and the mothership's user everything under the namespace, the CA, a
 * server certificate from it, and the CA's CRL. The CA is made first when the data dir is new.
 */
import { existsSync } from "node:fs";
import { chmod, mkdir, writeFile } from "node:fs/promises";
import { isAbsolute, join, resolve } from "node:path";
import type { Logger } from "../log/logger.ts";
import { issueServerCertificate, loadOrCreateCa } from "../pki/ca.ts";
import { isTopicLevel } from "../protocol/topics.ts";
import { flag, hostPort, all, requiredFlag, usageError, type ParsedArgs } from "./cli/args.ts";
import { DEFAULT_DATA_DIR } from "./cli/client.ts";
import { makeCrl, writeCrlFile, type Revocation } from "./crl.ts";
import { prepareDataDir } from "./data-dir.ts";
import { MOTHERSHIP_BROKER_USER } from "./broker-identity.ts";
import { MAX_MQTT_PACKET_BYTES } from "./mqtt-packet-limit.ts";
import { openStore } from "./store/index.ts";
import { DEFAULT_NAMESPACE } from "../protocol/topics.ts";

export const BROKER_CONFIG_FLAGS = { values: ["out", "listen", "data", "namespace", "server-name", "user"], switches: [] };

export interface MosquittoFiles {
  dir: string;
  conf: string;
  acl: string;
  ca: string;
  crl: string;
  listen: { host: string; port: number };
}

/** The ACL file: patterns for every pool (its CN is its user name), the mothership's user for the rest. @testSeam */
export function mosquittoAcl(namespace: string): string {
  return [
    "# Written by `mothership broker-config mosquitto` (docs/external-broker.md).",
    "# With use_identity_as_username, a user is the CN of its client certificate: a pool id, or `mothership`.",
    "# Each pool writes only its workers' uplink topics and reads only their downlink topics.",
    `pattern write ${namespace}/writeonly/%u/+`,
    `pattern read ${namespace}/readonly/%u/+`,
    "",
    "# The mothership reads every uplink and writes every downlink of the namespace.",
    `user ${MOTHERSHIP_BROKER_USER}`,
    `topic readwrite ${namespace}/#`,
    "",
  ].join("\n");
}

function mosquittoConf(dir: string, listen: { host: string; port: number }, user?: string): string {
  const f = (name: string) => join(dir, name);
  return [
    "# Mosquitto as the broker of `mothership serve --broker`, written by `mothership broker-config mosquitto`",
    "# (docs/external-broker.md). Start: mosquitto -c " + f("mosquitto.conf"),
    "# The mothership rewrites ca.crl on every pool reset and delete; Mosquitto reads it at start and",
    "# again on SIGHUP (give serve --broker-reload-command), which also rereads the ACL file.",
    "per_listener_settings false",
    "allow_anonymous false",
    `acl_file ${f("acl")}`,
    // A launcher's log chunk is at most 64 KiB; the embedded broker has the same limit.
    `max_packet_size ${MAX_MQTT_PACKET_BYTES}`,
    // Every launcher's uplink queues for the one mothership client: Mosquitto's default (1000 messages)
    // drops a reconnecting launcher's resent log spool. Bounded by bytes instead.
    "max_queued_messages 1000000",
    "max_queued_bytes 536870912",
    // The mothership's session (clean: false) keeps what launchers send while it restarts; on disk, so a broker restart keeps it too.
    "persistence true",
    `persistence_location ${f("data")}/`,
    "log_dest stderr",
    ...(user ? [`user ${user}`] : []),
    "",
    `listener ${listen.port} ${listen.host}`,
    "protocol mqtt",
    `cafile ${f("ca.crt")}`,
    `certfile ${f("server.crt")}`,
    `keyfile ${f("server.key")}`,
    `crlfile ${f("ca.crl")}`,
    "require_certificate true",
    "use_identity_as_username true",
    "tls_version tlsv1.2",
    "",
  ].join("\n");
}

/** Writes the Mosquitto configuration into `out`; the CA of `dataDir` is made when the dir is new. @testSeam */
export async function writeMosquittoConfig(o: { out: string; dataDir: string; listen: { host: string; port: number }; namespace: string; serverNames: string[]; user?: string; logger: Logger }): Promise<MosquittoFiles> {
  await prepareDataDir(o.dataDir, o.logger);
  const ca = await loadOrCreateCa(join(o.dataDir, "ca"));
  const dir = resolve(o.out);
  await mkdir(join(dir, "data"), { recursive: true, mode: 0o700 });
  const files: MosquittoFiles = { dir, conf: join(dir, "mosquitto.conf"), acl: join(dir, "acl"), ca: join(dir, "ca.crt"), crl: join(dir, "ca.crl"), listen: o.listen };
  const server = await issueServerCertificate(ca, [o.listen.host, ...o.serverNames]);
  // Modes set explicitly, whatever the umask: Mosquitto may run as another user (docs/external-broker.md).
  const put = async (path: string, text: string, mode: number) => {
    await writeFile(path, text, { mode });
    await chmod(path, mode);
  };
  await put(files.ca, ca.certificatePem, 0o644);
  await put(join(dir, "server.crt"), server.certificatePem, 0o644);
  await put(join(dir, "server.key"), server.keyPem, 0o600);
  await writeCrlFile(files.crl, await makeCrl(ca, await storedRevocations(o.dataDir)));
  await put(files.acl, mosquittoAcl(o.namespace), 0o644);
  await put(files.conf, mosquittoConf(dir, o.listen, o.user), 0o644);
  return files;
}

/** Revoked serials of an existing data dir (none for a new one). */
async function storedRevocations(dataDir: string): Promise<Revocation[]> {
  const dbPath = join(dataDir, "mothership.db");
  if (!existsSync(dbPath)) return [];
  const store = await openStore(dbPath);
  try {
    return await store.pools.revocations();
  } finally {
    await store.close();
  }
}

/** `broker-config mosquitto ...`: writes the files and says what to run next. */
export async function brokerConfigCommand(sub: string, a: ParsedArgs, out: (text: string) => void, logger: Logger): Promise<number> {
  if (sub !== "mosquitto") throw usageError(`broker-config knows mosquitto only (got ${JSON.stringify(sub)}); for EMQX and AWS IoT Core see docs/external-broker.md`);
  const outDir = requiredFlag(a, "out");
  const listen = hostPort(flag(a, "listen") ?? "0.0.0.0:8883", "--listen");
  if (listen.port === 0) throw usageError("--listen needs a fixed port, e.g. 0.0.0.0:8883: launchers' tokens name it");
  const namespace = flag(a, "namespace") ?? DEFAULT_NAMESPACE;
  if (!isTopicLevel(namespace)) throw usageError("--namespace must be letters, digits, _ . - (it becomes an MQTT topic level)");
  const user = flag(a, "user");
  if (user !== undefined && !/^[a-z_][a-z0-9_-]{0,31}$/.test(user)) throw usageError("--user must be a user name, e.g. mosquitto");
  const files = await writeMosquittoConfig({ out: outDir, dataDir: flag(a, "data") ?? DEFAULT_DATA_DIR, listen, namespace, serverNames: all(a, "server-name"), user, logger });
  const shown = (p: string) => (isAbsolute(p) ? p : resolve(p));
  const host = listen.host === "0.0.0.0" || listen.host === "::" ? "HOST" : listen.host.includes(":") ? `[${listen.host}]` : listen.host;
  out(
    [
      `Mosquitto configuration written to ${shown(files.dir)}: mosquitto.conf, acl, ca.crt, ca.crl, server.crt, server.key (0600)`,
      `  start it:  mosquitto -c ${files.conf}`,
      `  then:      mothership serve --broker mqtts://${host}:${listen.port} --broker-crl ${files.crl} --broker-reload-command 'kill -HUP <mosquitto pid>'`,
      "  Mosquitto reads ca.crl at start and on SIGHUP; see docs/external-broker.md.",
    ].join("\n"),
  );
  return 0;
}
