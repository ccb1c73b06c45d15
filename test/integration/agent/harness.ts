/**
 * Agent tests: a real mothership (in process, real broker and TLS), a pool made from a real openssl
 * CSR, and the real agent with the real MQTT transport; only the executor is the small local one.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Agent, type AgentExit, type OrphanCleanup } from "../../../src/launcher/agent/agent.ts";
import { LogSpool } from "../../../src/launcher/agent/log-spool.ts";
import { chooseWorkerId } from "../../../src/launcher/agent/worker-id.ts";
import type { RunExecutor } from "../../../src/launcher/run-executor.ts";
import { createLogger, silentLogger } from "../../../src/log/logger.ts";
import { decodePrivateKey } from "../../../src/pki/keys.ts";
import { decodeToken } from "../../../src/pki/token.ts";
import { importRunDecryptionKey } from "../../../src/protocol/envelope.ts";
import type { DownlinkMessage, UplinkMessage } from "../../../src/protocol/messages.ts";
import { importSigningKey } from "../../../src/protocol/poll.ts";
import { poolMqttTransport, poolPollTransport } from "../../../src/transport/pool-connection.ts";
import type { Transport, TransportEvents } from "../../../src/transport/transport.ts";

export const testLogger = process.env.AGENT_TEST_LOG ? createLogger({ level: "debug", pretty: true }) : silentLogger;

export async function decryptionKeyFrom(keyPath: string): Promise<CryptoKey> {
  const key = decodePrivateKey(await readFile(keyPath, "utf8"));
  return importRunDecryptionKey(new Uint8Array(key.keyObject.export({ type: "pkcs8", format: "der" })));
}

/**
 * Between the agent and its real transport: `tamper` rewrites what arrives (a man in the middle, for
 * a modified JWE) and `sent` records every message the agent sends, the greeting included.
 */
function spied(inner: Transport, o: { tamper?: (m: DownlinkMessage) => DownlinkMessage; sent?: UplinkMessage[] }): Transport {
  const on: Transport["on"] = (event, handler) => {
    if (event !== "message" || !o.tamper) return inner.on(event, handler);
    const tamper = o.tamper;
    const deliver = handler as TransportEvents["message"];
    return inner.on("message", (m) => deliver(tamper(m)));
  };
  return {
    connect: (signal) => inner.connect(signal),
    send: (m) => {
      o.sent?.push(m);
      return inner.send(m);
    },
    on,
    close: (clean) => inner.close(clean),
  };
}

export interface TestAgent {
  agent: Agent;
  worker: string;
  exit: Promise<AgentExit>;
}

export async function startAgent(o: {
  token: string;
  keyPath: string;
  scratch: string;
  executor: RunExecutor;
  metadata?: Record<string, string>;
  decryptWith?: string;
  cleanupOrphans?: OrphanCleanup;
  tamper?: (m: DownlinkMessage) => DownlinkMessage;
  sent?: UplinkMessage[];
  /** `poll`: the HTTP long-poll transport to the token's comms_url instead of MQTT. */
  protocol?: "mqtt" | "poll";
  /** Receives the transport the agent uses (to cut it in a test). */
  onTransport?: (t: Transport) => void;
}): Promise<TestAgent> {
  const token = decodeToken(o.token);
  const keyPem = await readFile(o.keyPath, "utf8");
  const signingKey = o.protocol === "poll" ? await importSigningKey(decodePrivateKey(keyPem).keyObject) : null;
  const spool = await LogSpool.open(join(o.scratch, "spool"), testLogger);
  const { worker } = chooseWorkerId(spool.list());
  const agent = new Agent({
    worker,
    transport: ({ greeting }) => {
      const recordedGreeting = () => {
        const hello = greeting();
        o.sent?.push(hello);
        return hello;
      };
      const backoff = { initialMs: 100, maxMs: 400, factor: 2, jitter: 0.5 };
      const inner = signingKey
        ? poolPollTransport({ token, url: token.comms_url, signingKey, worker, greeting: recordedGreeting, logger: testLogger, backoff })
        : poolMqttTransport({ token, keyPem, worker, greeting: recordedGreeting, logger: testLogger, backoff });
      o.onTransport?.(inner);
      return spied(inner, o);
    },
    executor: o.executor,
    spool,
    decryptionKey: await decryptionKeyFrom(o.decryptWith ?? o.keyPath),
    cleanupOrphans: o.cleanupOrphans,
    metadata: o.metadata ?? {},
    version: "9.9.9-test",
    arch: "x86_64",
    logger: testLogger.child({ agent: worker }),
  });
  const exit = agent.run();
  return { agent, worker, exit };
}
