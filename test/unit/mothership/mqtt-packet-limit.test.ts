// The MQTT packet size guard against the framing mqtt-packet writes: packets within the limit pass in
// any split of the stream, the first header announcing more than the limit is caught before its body
// arrives, and a remaining length longer than 4 bytes is malformed. No network.
import { describe, expect, test } from "bun:test";
import mqttPacket from "mqtt-packet";
import { PacketSizeGuard } from "../../../src/mothership/mqtt-packet-limit.ts";

const publish = (bytes: number) => mqttPacket.generate({ cmd: "publish", topic: "spacelift/writeonly/P/W", payload: Buffer.alloc(bytes, 0x61), qos: 1, messageId: 1, retain: false, dup: false });

describe("MQTT packet size guard", () => {
  test("packets within the limit pass, whatever the split of the stream", () => {
    const stream = Buffer.concat([
      mqttPacket.generate({ cmd: "pingreq" }),
      publish(10),
      publish(200_000),
      mqttPacket.generate({ cmd: "puback", messageId: 7 }),
      publish(1_000_000),
    ]);
    for (const step of [1, 2, 3, 7, 4096, stream.length]) {
      const guard = new PacketSizeGuard(1_048_576);
      for (let i = 0; i < stream.length; i += step) expect(guard.feed(stream.subarray(i, i + step))).toBeNull();
    }
  });

  test("a header announcing more than the limit is caught from its header alone", () => {
    const guard = new PacketSizeGuard(1_048_576);
    expect(guard.feed(publish(100))).toBeNull();
    const big = publish(1_048_577);
    // The fixed header and remaining length are the first 4 bytes here.
    expect(guard.feed(big.subarray(0, 4))).toContain("more than the limit");
  });

  test("a remaining length of more than 4 bytes is malformed", () => {
    expect(new PacketSizeGuard().feed(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]))).toBe("malformed remaining length");
  });
});
