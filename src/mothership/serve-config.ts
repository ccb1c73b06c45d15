/**
 * `mothership serve` flags -> the server's settings, as one pure function (no I/O), and the URLs the
 * server advertises for the hosts it listens on. Defaults: --data ./mothership-data, --http
 * 127.0.0.1:8080, --mqtt 127.0.0.1:8883, --broker-endpoint mqtts://<the --mqtt address>,
 * --max-log-chunk-bytes 256KiB, --max-run-log-bytes 512MiB. `--broker` replaces the embedded broker
 * (--mqtt) with an existing one (docs/external-broker.md). `--database postgres://...` (or
 * MOTHERSHIP_DATABASE_URL) keeps the store in PostgreSQL instead of the data dir's SQLite file.
 * `--replica-id` (or MOTHERSHIP_REPLICA_ID) names this process among replicas on one external broker.
 */
import type { Level } from "../log/logger.ts";
import { DEFAULT_NAMESPACE } from "../protocol/topics.ts";
import { flag, hostPort, usageError, type ParsedArgs } from "./cli/args.ts";
import { DEFAULT_DATA_DIR } from "./cli/client.ts";
import { isPostgresUrl } from "./store/postgres.ts";
import { DEFAULT_LOG_LIMITS, type LogLimits } from "./run-log-intake.ts";
import type { ExternalBrokerConfig } from "./outbox-mqtt.ts";
import { isReplicaId, REPLICA_ID_RULE } from "./replica-id.ts";
import type { ServeConfig } from "./serve.ts";

export const SERVE_FLAGS = {
  values: ["data", "http", "mqtt", "broker", "broker-ca", "broker-crl", "broker-reload-command", "broker-endpoint", "comms-url", "namespace", "heartbeat", "log-level", "schedule-timeout", "max-log-chunk-bytes", "max-run-log-bytes", "downloads", "database", "replica-id"],
  switches: ["http-plain"],
};

export type ServeSettings = Omit<ServeConfig, "logger" | "logLimits"> & { logLevel: Level; logLimits: LogLimits };

const LEVELS: readonly string[] = ["debug", "info", "warn", "error"];

/** Hosts that mean "every interface" are advertised as loopback. */
export const advertisedHost = (host: string): string => (host === "0.0.0.0" || host === "::" || host === "" ? "127.0.0.1" : host);
/** An IPv6 literal in a URL needs brackets. */
export const urlHost = (host: string): string => (host.includes(":") ? `[${host}]` : host);
/** What tokens advertise when no --broker-endpoint is given. */
export const brokerEndpointFor = (mqttHost: string, port: number): string => `mqtts://${urlHost(advertisedHost(mqttHost))}:${port}`;

function wholeNumber(a: ParsedArgs, name: string, fallback: string): number {
  const n = Number(flag(a, name) ?? fallback);
  if (!Number.isInteger(n) || n < 1) throw usageError(`--${name} must be a whole number of seconds >= 1`);
  return n;
}

/** Launchers send chunks of at most 64 KiB (src/launcher/supervisor/log-chunker.ts); a lower cap would refuse them. */
const MIN_CHUNK_CAP = 64 * 1024;
const UNITS: Record<string, number> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** A byte count: plain bytes, or with a binary unit (256KiB, 512M, 1GiB). */
function byteCount(a: ParsedArgs, name: string, fallback: number, min: number): number {
  const given = flag(a, name);
  if (given === undefined) return fallback;
  const m = /^(\d{1,13})\s*([kmg]?)(?:i?b)?$/i.exec(given.trim());
  const n = m ? Number(m[1]) * (UNITS[(m[2] ?? "").toLowerCase()] ?? 1) : NaN;
  if (!Number.isSafeInteger(n) || n < min) throw usageError(`--${name} must be a number of bytes >= ${min}, e.g. ${fallback} or ${fallback / 1024}KiB`);
  return n;
}

function logLimits(a: ParsedArgs): LogLimits {
  const chunkBytes = byteCount(a, "max-log-chunk-bytes", DEFAULT_LOG_LIMITS.chunkBytes, MIN_CHUNK_CAP);
  const runBytes = byteCount(a, "max-run-log-bytes", DEFAULT_LOG_LIMITS.runBytes, chunkBytes);
  return { chunkBytes, runBytes };
}

const MQTTS_URL = /^mqtts:\/\/(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/;

/** `--broker` and its companions; undefined (the embedded broker) without `--broker`. */
function externalBroker(a: ParsedArgs, env: Record<string, string | undefined>): ExternalBrokerConfig | undefined {
  const url = flag(a, "broker");
  const companions = ["broker-ca", "broker-crl", "broker-reload-command", "replica-id"].filter((n) => flag(a, n) !== undefined);
  if (url === undefined) {
    if (companions.length > 0) throw usageError(`--${companions[0]} goes with --broker mqtts://HOST:PORT (an external broker)`);
    return undefined;
  }
  if (!MQTTS_URL.test(url)) throw usageError("--broker must be mqtts://HOST:PORT, the broker's TLS listener (e.g. mqtts://broker.example.com:8883)");
  if (flag(a, "mqtt") !== undefined) throw usageError("--mqtt is the embedded broker's address; with --broker there is none: give one of them");
  const reloadCommand = flag(a, "broker-reload-command");
  const crlPath = flag(a, "broker-crl");
  if (reloadCommand !== undefined && crlPath === undefined) throw usageError("--broker-reload-command runs after the CRL is written: give --broker-crl PATH too");
  if (reloadCommand !== undefined && reloadCommand.trim() === "") throw usageError("--broker-reload-command must be a command, e.g. 'systemctl reload mosquitto'");
  const replicaId = flag(a, "replica-id") ?? (env.MOTHERSHIP_REPLICA_ID || undefined);
  if (replicaId !== undefined && !isReplicaId(replicaId)) throw usageError(`--replica-id (or MOTHERSHIP_REPLICA_ID) must be ${REPLICA_ID_RULE}`);
  return { url, caFile: flag(a, "broker-ca"), crlPath, reloadCommand, replicaId };
}

const DATABASE_URL_EXAMPLE = "postgres://USER@HOST:5432/DATABASE";

/**
 * The PostgreSQL URL of `--database`, else of MOTHERSHIP_DATABASE_URL (empty counts as unset); undefined:
 * the SQLite file in the data dir. A password may come from the variable or PGPASSWORD, never from the
 * flag: other users of the host read command lines (ps, /proc). Messages never repeat the URL.
 */
export function databaseFromArgs(a: ParsedArgs, env: Record<string, string | undefined>): string | undefined {
  const given = flag(a, "database");
  if (given !== undefined) {
    if (!isPostgresUrl(given) || !URL.canParse(given)) throw usageError(`--database must be a PostgreSQL URL, e.g. ${DATABASE_URL_EXAMPLE}`);
    if (new URL(given).password !== "") {
      throw usageError("--database must not carry the password, other users can read the command line: put the URL with it in MOTHERSHIP_DATABASE_URL, or the password in PGPASSWORD");
    }
    return given;
  }
  const fromEnv = env.MOTHERSHIP_DATABASE_URL || undefined;
  if (fromEnv !== undefined && (!isPostgresUrl(fromEnv) || !URL.canParse(fromEnv))) throw usageError(`MOTHERSHIP_DATABASE_URL must be a PostgreSQL URL, e.g. ${DATABASE_URL_EXAMPLE}`);
  return fromEnv;
}

export function serveConfigFromArgs(a: ParsedArgs, env: Record<string, string | undefined>): ServeSettings {
  const http = hostPort(flag(a, "http") ?? "127.0.0.1:8080", "--http");
  const mqtt = hostPort(flag(a, "mqtt") ?? "127.0.0.1:8883", "--mqtt");
  const logLevel = flag(a, "log-level") ?? (env.MOTHERSHIP_LOG_LEVEL || "info");
  if (!LEVELS.includes(logLevel)) throw usageError("--log-level must be debug, info, warn or error");
  const external = externalBroker(a, env);
  const given = flag(a, "broker-endpoint");
  if (given !== undefined && !/^mqtts:\/\/[^/]+:\d+$/.test(given)) throw usageError("--broker-endpoint must be mqtts://HOST:PORT");
  const commsUrl = flag(a, "comms-url");
  if (commsUrl !== undefined && !URL.canParse(commsUrl)) throw usageError("--comms-url must be a URL, e.g. https://mothership.example.com");
  if (commsUrl !== undefined && !["http:", "https:"].includes(new URL(commsUrl).protocol)) throw usageError("--comms-url must be an http(s) URL, e.g. https://mothership.example.com");
  // Without it, tokens would advertise this server's own http:// URL, which launchers refuse (and should).
  if (a.switches.has("http-plain") && commsUrl === undefined) {
    throw usageError("--http-plain needs --comms-url https://HOST: the URL of the TLS-terminating proxy in front, which tokens give to launchers");
  }
  return {
    dataDir: flag(a, "data") ?? DEFAULT_DATA_DIR,
    httpHost: http.host,
    httpPort: http.port,
    httpPlain: a.switches.has("http-plain"),
    mqttHost: mqtt.host,
    mqttPort: mqtt.port,
    externalBroker: external,
    // Port 0 is picked at start, so only then is the default left to the server.
    brokerEndpoint: given ?? external?.url ?? (mqtt.port === 0 ? undefined : brokerEndpointFor(mqtt.host, mqtt.port)),
    commsUrl,
    namespace: flag(a, "namespace") ?? DEFAULT_NAMESPACE,
    heartbeatSeconds: wholeNumber(a, "heartbeat", "15"),
    scheduleTimeoutMs: wholeNumber(a, "schedule-timeout", "60") * 1000,
    logLimits: logLimits(a),
    downloadsDir: flag(a, "downloads"),
    database: databaseFromArgs(a, env),
    logLevel: logLevel as Level,
  };
}
