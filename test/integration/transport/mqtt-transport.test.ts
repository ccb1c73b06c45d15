// The MQTT transport against the test environment's real Mosquitto (mutual TLS): greeting first, QoS 1
// both ways, invalid messages dropped without a crash, the Last Will only on an unclean close, and
// messages sent while the connection is down delivered after the jittered reconnect. Downlink messages
// are signed by a real CA-issued downlink signer (test/support/downlink-signer.ts); unsigned ones are refused.
import { afterAll, afterEach, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync } from "node:fs";
import mqtt, { type MqttClient } from "mqtt";
import { createLogger, silentLogger, type Logger } from "../../../src/log/logger.ts";
import { DownlinkVerifier } from "../../../src/protocol/downlink-signature.ts";
import { makeMessage, parseMessage, type UplinkMessage } from "../../../src/protocol/messages.ts";
import { MqttTransport } from "../../../src/transport/mqtt-transport.ts";
import { makeTestCa, type TestCa } from "../../support/downlink-signer.ts";
import { mqttTestEnv } from "../../support/env.ts";

setDefaultTimeout(20_000);
const env = mqttTestEnv();

function capturingLogger(lines: string[]): Logger {
  return createLogger({ pretty: false, level: "debug", write: (l) => lines.push(l) });
}

describe.skipIf(!env)("MQTT transport on Mosquitto", () => {
  const { url, ca, cert, key } = env!;
  const tls = { ca: readFileSync(ca, "utf8"), cert: readFileSync(cert, "utf8"), key: readFileSync(key, "utf8"), servername: "localhost" };
  const cleanups: Array<() => Promise<void>> = [];
  let signing: TestCa;
  beforeAll(async () => {
    signing = await makeTestCa();
  });
  afterAll(async () => {
    await signing?.remove();
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  });

  function setup(logger: Logger = silentLogger) {
    const id = crypto.randomUUID().slice(0, 8);
    const down = `spacelift/readonly/test/${id}`;
    const up = `spacelift/writeonly/test/${id}`;
    let hellos = 0;
    const transport = new MqttTransport({
      endpoint: url,
      tls,
      clientId: `worker-${id}`,
      subscribeTopic: down,
      publishTopic: up,
      greeting: () => {
        hellos++;
        return makeMessage("hello", { metadata: { n: String(hellos) }, version: "t", arch: "x86_64", state: "IDLE", run: null });
      },
      verifier: new DownlinkVerifier({ ca: signing.caPem, pool: "test", worker: id }),
      logger,
      backoff: { initialMs: 50, maxMs: 200, factor: 2, jitter: 0.5 },
    });
    cleanups.push(() => transport.close(true));
    /** What the mothership would publish on `down` for this worker. */
    const signed = (message: Parameters<TestCa["signer"]["sign"]>[1]) => signing.signer.sign({ pool: "test", worker: id }, message);
    return { transport, down, up, id, signed };
  }

  async function peer(topic: string): Promise<{ client: MqttClient; got: UplinkMessage[] }> {
    const client = await mqtt.connectAsync(url, { ...tls, reconnectPeriod: 0 });
    cleanups.push(() => client.endAsync(true));
    const got: UplinkMessage[] = [];
    client.on("message", (_t, payload) => {
      const r = parseMessage(payload, "uplink");
      if (r.kind === "ok") got.push(r.message);
    });
    await client.subscribeAsync(topic, { qos: 1 });
    return { client, got };
  }

  async function until(what: string, probe: () => boolean, ms = 5_000): Promise<void> {
    const end = Date.now() + ms;
    while (!probe()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await Bun.sleep(10);
    }
  }

  test("the greeting goes first, sends are acknowledged, downlink messages are typed", async () => {
    const { transport, down, up, signed } = setup();
    const uplink = await peer(up);
    const received: string[] = [];
    transport.on("message", (m) => received.push(m.type));
    await transport.connect();
    await transport.send(makeMessage("heartbeat", { state: "IDLE", run: null }));
    await until("two uplink messages", () => uplink.got.length === 2);
    expect(uplink.got.map((m) => m.type)).toEqual(["hello", "heartbeat"]);

    await uplink.client.publishAsync(down, signed(makeMessage("drain", {})), { qos: 1 });
    await until("drain", () => received.includes("drain"));
  });

  test("unsigned, invalid and unknown messages are dropped and logged; the next valid one still arrives", async () => {
    const lines: string[] = [];
    const { transport, down, up, signed } = setup(capturingLogger(lines));
    const uplink = await peer(up);
    const received: string[] = [];
    transport.on("message", (m) => received.push(m.type));
    // A handler that throws must not take the connection down either.
    transport.on("message", () => {
      throw new Error("handler bug");
    });
    await transport.connect();
    const c = uplink.client;
    await c.publishAsync(down, "{not json", { qos: 1 });
    await c.publishAsync(down, JSON.stringify(makeMessage("drain", {})), { qos: 1 });
    await c.publishAsync(down, signed(JSON.stringify({ v: 1, type: "schedule", id: "x", ts: new Date().toISOString() })), { qos: 1 });
    await c.publishAsync(down, signed(JSON.stringify({ v: 1, type: "from-the-future", id: "y", ts: new Date().toISOString() })), { qos: 1 });
    await c.publishAsync(down, signed(makeMessage("undrain", {})), { qos: 1 });
    await until("undrain", () => received.includes("undrain"));
    expect(received).toEqual(["undrain"]);
    const warnings = lines.map((l) => JSON.parse(l) as { msg: string; error?: string; reason?: string });
    expect(warnings.filter((w) => w.msg === "downlink message refused").map((w) => w.reason)).toEqual(["downlink-malformed", "downlink-unsigned"]);
    expect(warnings.filter((w) => w.msg === "invalid message from the mothership dropped").map((w) => w.error)).toEqual([expect.stringContaining("schedule")]);
    expect(warnings.some((w) => w.msg === "message of an unknown type ignored")).toBe(true);
    expect(warnings.some((w) => w.msg === "transport event handler failed")).toBe(true);
  });

  test("Last Will: published after an unclean close, not after a clean one", async () => {
    const a = setup();
    const b = setup();
    const watchA = await peer(a.up);
    const watchB = await peer(b.up);
    await a.transport.connect();
    await b.transport.connect();
    await a.transport.close(false);
    await b.transport.close(true);
    await until("the Last Will of A", () => watchA.got.some((m) => m.type === "gone"));
    expect(watchA.got.find((m) => m.type === "gone")).toMatchObject({ crashed: true });
    await Bun.sleep(300);
    expect(watchB.got.some((m) => m.type === "gone")).toBe(false);
  });

  test("messages sent while disconnected arrive after the reconnect, greeting first again", async () => {
    const { transport, up, id } = setup();
    const uplink = await peer(up);
    const events: string[] = [];
    transport.on("connected", (i) => events.push(i.reconnect ? "reconnected" : "connected"));
    transport.on("disconnected", () => events.push("disconnected"));
    await transport.connect();
    await until("hello", () => uplink.got.length === 1);
    // Another client with the same id takes the session over: the broker drops ours.
    const intruder = await mqtt.connectAsync(url, { ...tls, clientId: `worker-${id}`, reconnectPeriod: 0 });
    await until("disconnected", () => events.includes("disconnected"));
    const sends = [1, 2, 3].map((n) => transport.send(makeMessage("phase", { run: "R", phase: `p${n}` })));
    await intruder.endAsync(true);
    await Promise.all(sends);
    await until("three phases", () => uplink.got.filter((m) => m.type === "phase").length >= 3);
    expect(events.slice(0, 3)).toEqual(["connected", "disconnected", "reconnected"]);
    const types = uplink.got.map((m) => (m.type === "phase" ? m.phase : m.type));
    expect(types.indexOf("hello", 1)).toBeGreaterThan(0);
    expect(types.indexOf("hello", 1)).toBeLessThan(types.indexOf("p1"));
    expect(types.filter((t) => t.startsWith("p"))).toEqual(["p1", "p2", "p3"]);
  });

  test("close rejects what was never sent; connect after close rejects", async () => {
    const { transport } = setup();
    const pending = transport.send(makeMessage("heartbeat", { state: "IDLE", run: null }));
    await transport.close(true);
    const codeOf = (p: Promise<unknown>) => p.then(() => "resolved", (err: { code?: string }) => err.code);
    expect(await codeOf(pending)).toBe("transport-closed");
    expect(await codeOf(transport.connect())).toBe("transport-closed");
  });
});
