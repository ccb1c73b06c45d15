// The test environment's Mosquitto requires client certificates: a client with one connects and
// round-trips a message; a client without one is refused.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import mqtt from "mqtt";
import { mqttTestEnv } from "../../support/env.ts";

const env = mqttTestEnv();

describe.skipIf(!env)("mosquitto over mutual TLS", () => {
  const { url, ca, cert, key } = env!;

  test("a client with a certificate connects, subscribes and receives its own message", async () => {
    const client = await mqtt.connectAsync(url, {
      ca: readFileSync(ca),
      cert: readFileSync(cert),
      key: readFileSync(key),
      servername: "localhost",
      reconnectPeriod: 0,
      connectTimeout: 5000,
    });
    try {
      const topic = `spacelift/test/${crypto.randomUUID()}`;
      const got = new Promise<string>((resolve) => client.on("message", (t, payload) => t === topic && resolve(payload.toString())));
      await client.subscribeAsync(topic, { qos: 1 });
      await client.publishAsync(topic, "hello over mTLS", { qos: 1 });
      expect(await got).toBe("hello over mTLS");
    } finally {
      await client.endAsync();
    }
  });

  test("a client without a certificate is refused", async () => {
    const attempt = mqtt.connectAsync(url, { ca: readFileSync(ca), servername: "localhost", reconnectPeriod: 0, connectTimeout: 5000 });
    expect(attempt).rejects.toThrow();
    await attempt.catch(() => undefined);
  });
});
