// MQTT client ids `<pool>.<worker>`: what the broker reads back for the certificate's pool, and that no
// client id names a worker of two pools at once. No network.
import { describe, expect, test } from "bun:test";
import { mqttClientId, workerOfClientId } from "../../../src/protocol/topics.ts";

const POOL = "01JPOOLAAAAAAAAAAAAAAAAAAA";
const WORKER = "01JWORKERBBBBBBBBBBBBBBBBB";

describe("MQTT client ids", () => {
  test("the launcher's id gives its worker back to its own pool, and nothing to another pool", () => {
    const id = mqttClientId(POOL, WORKER);
    expect(id).toBe(`${POOL}.${WORKER}`);
    expect(id.length).toBeLessThanOrEqual(128);
    expect(workerOfClientId(POOL, id)).toBe(WORKER);
    expect(workerOfClientId("01JPOOLCCCCCCCCCCCCCCCCCCC", id)).toBeNull();
  });

  test("a bare worker id, an empty worker, another separator or a second dot is refused", () => {
    for (const id of [WORKER, POOL, `${POOL}.`, `${POOL}-${WORKER}`, `${POOL}.${WORKER}.x`, `${POOL}.a/b`, `${POOL}.+`, `${POOL}.#`]) expect(workerOfClientId(POOL, id)).toBeNull();
    // A pool id that is a prefix of another cannot claim the longer pool's workers.
    expect(workerOfClientId("P", `P.Q.${WORKER}`)).toBeNull();
    expect(workerOfClientId("P.Q", `P.Q.${WORKER}`)).toBe(WORKER);
  });

  test("ids that cannot be topic levels are refused when the id is made", () => {
    expect(() => mqttClientId(POOL, "a/b")).toThrow();
    expect(() => mqttClientId("", WORKER)).toThrow();
  });
});
