// "Logged once": both transports, on their reconnecting session, against real loopback peers that
// fail on purpose, with a logger that records every line. Ten failed attempts give one warning (the
// retries after it are debug lines), the connection that ends the outage says how many retries it
// took, and a later outage is reported again, once.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { generateKeyPairSync } from "node:crypto";
import { createServer, type Server } from "node:net";
import { createLogger, type Logger } from "../../../src/log/logger.ts";
import { DownlinkVerifier } from "../../../src/protocol/downlink-signature.ts";
import { makeMessage } from "../../../src/protocol/messages.ts";
import { importSigningKey, POLL_DOWNLINK_PATH } from "../../../src/protocol/poll.ts";
import { MqttTransport } from "../../../src/transport/mqtt-transport.ts";
import { PollTransport } from "../../../src/transport/poll-transport.ts";
import type { Transport } from "../../../src/transport/transport.ts";
import { makeTestCa, type TestCa } from "../../support/downlink-signer.ts";

interface Line {
  level: string;
  msg: string;
  [field: string]: unknown;
}

function recordingLogger(): { logger: Logger; lines: Line[] } {
  const lines: Line[] = [];
  return { lines, logger: createLogger({ level: "debug", pretty: false, write: (line) => lines.push(JSON.parse(line) as Line) }) };
}

const backoff = { initialMs: 2, maxMs: 10, factor: 2, jitter: 0.5 };
const hello = () => makeMessage("hello", { metadata: {}, version: "1.0.0", arch: "x86_64", state: "IDLE", run: null });

async function until<T>(what: string, probe: () => T | undefined | false, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const got = probe();
    if (got !== undefined && got !== false) return got;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(5);
  }
}

let ca: TestCa;
const open: Transport[] = [];

beforeAll(async () => {
  ca = await makeTestCa("Session CA");
});
afterEach(async () => {
  for (const t of open.splice(0)) await t.close(false);
});
afterAll(async () => {
  await ca?.remove();
});

describe("poll: state changes logged once", () => {
  test("10 refused greetings: one warning, 9 debug lines, then 'connected' with retries 10; a later drop is one more warning", async () => {
    const faults = { greetings: 10, polls: 0 };
    const server = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      async fetch(req) {
        if (new URL(req.url).pathname === POLL_DOWNLINK_PATH) {
          if (faults.polls > 0 && faults.polls--) return new Response("down", { status: 503 });
          await Bun.sleep(50);
          return Response.json({ messages: [], cursor: 0 });
        }
        if (faults.greetings > 0 && faults.greetings--) return new Response("down", { status: 503 });
        return Response.json({});
      },
    });
    try {
      const { logger, lines } = recordingLogger();
      const worker = "01JWORKER0000000000000000A";
      const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
      const t = new PollTransport({
        url: `http://127.0.0.1:${server.port}`,
        ca: ca.caPem,
        pool: "pool",
        worker,
        signingKey: await importSigningKey(privateKey),
        greeting: hello,
        verifier: new DownlinkVerifier({ ca: ca.caPem, pool: "pool", worker }),
        logger,
        backoff,
        pollWaitSeconds: 1,
      });
      open.push(t);
      await t.connect();
      const retrying = () => lines.filter((l) => l.msg === "mothership unreachable, retrying");
      expect(retrying().filter((l) => l.level === "warn")).toHaveLength(1);
      expect(retrying().filter((l) => l.level === "debug")).toHaveLength(9);
      expect(lines.filter((l) => l.level === "warn" || l.level === "error")).toHaveLength(1);
      expect(lines.filter((l) => l.msg === "connected to the mothership")).toEqual([expect.objectContaining({ level: "info", retries: 10 })]);

      // A drop of the connection (a failed poll) and 3 refused greetings: one more warning, then "reconnected" after 4 retries.
      const disconnected: unknown[] = [];
      t.on("disconnected", (info) => disconnected.push(info));
      faults.greetings = 3;
      faults.polls = 1;
      const again = await until("reconnected", () => lines.find((l) => l.msg === "reconnected to the mothership"));
      expect(again).toMatchObject({ level: "info", retries: 4 });
      expect(retrying().filter((l) => l.level === "warn")).toHaveLength(2);
      expect(disconnected).toHaveLength(1);
    } finally {
      await server.stop(true);
    }
  });
});

describe("mqtt: state changes logged once", () => {
  test("10 failed TLS handshakes: one warning, the transient errors are debug lines", async () => {
    // A peer that accepts and hangs up at once: every attempt fails during the TLS handshake.
    let accepted = 0;
    const server: Server = createServer((socket) => {
      accepted++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const { logger, lines } = recordingLogger();
      const pool = await ca.poolSigner("pool");
      const t = new MqttTransport({
        endpoint: `mqtts://127.0.0.1:${(server.address() as { port: number }).port}`,
        tls: { cert: pool.certificatePem, key: pool.keyPem, ca: ca.caPem },
        clientId: "pool.worker",
        subscribeTopic: "spacelift/readonly/pool/worker",
        publishTopic: "spacelift/writeonly/pool/worker",
        greeting: hello,
        verifier: new DownlinkVerifier({ ca: ca.caPem, pool: "pool", worker: "worker" }),
        logger,
        backoff,
      });
      open.push(t);
      void t.connect().catch(() => {});
      const retrying = () => lines.filter((l) => l.msg === "broker connection lost, retrying");
      await until("10 failed attempts", () => retrying().length >= 10);
      expect(accepted).toBeGreaterThanOrEqual(10);
      expect(retrying().filter((l) => l.level === "warn")).toHaveLength(1);
      expect(lines.filter((l) => l.level === "warn" || l.level === "error")).toHaveLength(1);
      expect(lines.filter((l) => l.msg === "broker connection error" && l.level !== "debug")).toHaveLength(0);
    } finally {
      server.close();
    }
  });
});
