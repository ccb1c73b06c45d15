/**
 * The transport of one worker of a pool, from what the token and key give. MQTT: the broker
 * endpoint, the pool certificate and CA from the token, the pool key, and the worker's two topics.
 * Poll: the comms URL, the token's CA, and the pool key imported for signing requests. Both: the
 * token's CA, pool and the worker id check that every downlink message is the mothership's, for this worker.
 */
import type { Logger } from "../log/logger.ts";
import type { UplinkMessage } from "../protocol/messages.ts";
import { mqttClientId, readonlyTopic, writeonlyTopic } from "../protocol/topics.ts";
import type { PoolToken } from "../pki/token.ts";
import { SpaceliftError } from "../errors.ts";
import type { ProxySettings } from "../config/proxy.ts";
import { proxyFor } from "./proxy.ts";
import type { BackoffPolicy } from "./backoff.ts";
import type * as MqttModule from "./mqtt-transport.ts";
import type { MqttTransport } from "./mqtt-transport.ts";
import type * as PollModule from "./poll-transport.ts";
import type { PollTransport } from "./poll-transport.ts";
import type { SigningKey } from "../protocol/poll.ts";
import { DownlinkVerifier } from "../protocol/downlink-signature.ts";

const verifierFor = (token: PoolToken, worker: string) => new DownlinkVerifier({ ca: token.ca, pool: token.pool, worker });

export interface PoolConnectionOptions {
  token: PoolToken;
  /** The pool private key, PEM. */
  keyPem: string;
  worker: string;
  greeting: () => UplinkMessage;
  logger: Logger;
  backoff?: BackoffPolicy;
  /** The operator's extra CA certificates (PEM), trusted besides the token's CA for the broker's certificate. */
  additionalCas?: readonly string[];
  /** HTTPS_PROXY/NO_PROXY: whether the broker is reached through a CONNECT tunnel. */
  proxy?: ProxySettings;
}

export function poolMqttTransport(o: PoolConnectionOptions): MqttTransport {
  const broker = o.token.broker;
  if (!broker) throw new SpaceliftError("transport-no-broker", "the pool token names no MQTT broker; use SPACELIFT_WORKER_COMMS_PROTOCOL=poll");
  // Loaded here, not at the top: a launcher uses one transport, and MQTT.js alone is ~12 MB resident
  // (docs/performance.md). A synchronous require keeps both builders synchronous.
  const { MqttTransport } = require("./mqtt-transport.ts") as typeof MqttModule;
  return new MqttTransport({
    endpoint: broker.endpoint,
    tls: { cert: o.token.certificate, key: o.keyPem, ca: [o.token.ca, ...(o.additionalCas ?? [])] },
    proxy: o.proxy ? proxyFor(o.proxy, new URL(broker.endpoint)) : undefined,
    clientId: mqttClientId(o.token.pool, o.worker),
    subscribeTopic: readonlyTopic(broker.namespace, o.token.pool, o.worker),
    publishTopic: writeonlyTopic(broker.namespace, o.token.pool, o.worker),
    greeting: o.greeting,
    verifier: verifierFor(o.token, o.worker),
    logger: o.logger,
    backoff: o.backoff,
  });
}

export interface PoolPollOptions {
  token: PoolToken;
  /** SPACELIFT_WORKER_COMMS_URL, else the token's comms_url. */
  url: string;
  signingKey: SigningKey;
  worker: string;
  greeting: () => UplinkMessage;
  logger: Logger;
  backoff?: BackoffPolicy;
  pollWaitSeconds?: number;
  /** The operator's extra CA certificates (PEM), trusted besides the token's CA for an https comms URL. */
  additionalCas?: readonly string[];
  /** HTTPS_PROXY/HTTP_PROXY/NO_PROXY: whether the comms URL is reached through a proxy. */
  proxy?: ProxySettings;
}

export function poolPollTransport(o: PoolPollOptions): PollTransport {
  const { PollTransport } = require("./poll-transport.ts") as typeof PollModule;
  return new PollTransport({
    url: o.url,
    ca: [o.token.ca, ...(o.additionalCas ?? [])],
    proxy: o.proxy ? proxyFor(o.proxy, new URL(o.url)) : undefined,
    pool: o.token.pool,
    worker: o.worker,
    signingKey: o.signingKey,
    greeting: o.greeting,
    verifier: verifierFor(o.token, o.worker),
    logger: o.logger,
    backoff: o.backoff,
    pollWaitSeconds: o.pollWaitSeconds,
  });
}
