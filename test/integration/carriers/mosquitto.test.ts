// External broker mode against a real Mosquitto configured only by `mothership broker-config
// mosquitto`: the ACL keeps each pool in its own subtrees; a pool reset reaches Mosquitto through the
// CRL (rewritten by the mothership, read again on SIGHUP by --broker-reload-command) and the old
// token's launcher exits 77 while the new token works; and a run printing a line every millisecond
// while Mosquitto is SIGKILLed for 10 s and started again loses nothing.
import "reflect-metadata";
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import * as x509 from "@peculiar/x509";
import mqtt from "mqtt";
import { readFileSync } from "node:fs";
import { encodeMessage, makeMessage } from "../../../src/protocol/messages.ts";
import { mqttClientId, readonlyTopic, writeonlyTopic } from "../../../src/protocol/topics.ts";
import { ulid } from "../../../src/protocol/ulid.ts";
import { decodeToken } from "../../../src/pki/token.ts";
import { hostCapability } from "../../support/env.ts";
import { opensslKeyAndCsr, waitFor } from "../mothership/harness.ts";
import type { TestAgent } from "../agent/harness.ts";
import { CarrierWorld, mosquittoInstalled } from "./carrier-world.ts";

setDefaultTimeout(120_000);

describe.skipIf(!hostCapability("Debian mosquitto (the mosquitto binary)", mosquittoInstalled()))("mothership serve --broker with Mosquitto from broker-config", () => {
  const world = new CarrierWorld("mosquitto");
  let other: { pool: string; token: string; agent: TestAgent | null } = { pool: "", token: "", agent: null };
  beforeAll(() => world.start());
  afterAll(() => world.close());

  test("launchers go through Mosquitto as their pool (the CN is the user); a pool reaches only its own subtrees", async () => {
    const a = await world.launch();
    expect(world.mosquitto!.log()).toContain(`as ${mqttClientId(world.pool, a.worker)} `);
    expect(world.mosquitto!.log()).toContain(`u'${world.pool}'`);

    // A second pool, and a client with the first pool's certificate that tries the second's topics.
    const otherKeys = opensslKeyAndCsr(world.path, "other", ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
    const made = await world.api<{ pool: { id: string }; token: string }>("POST", "/pools", { name: "other", csr: readFileSync(otherKeys.csrPath, "utf8") });
    const otherPool = made.pool.id;
    const otherPoolToken = made.token;
    const token = decodeToken(world.token);
    const intruder = ulid();
    const heard: string[] = [];
    const client = await mqtt.connectAsync(token.broker!.endpoint, { key: readFileSync(world.keyPath, "utf8"), cert: token.certificate, ca: token.ca, clientId: mqttClientId(world.pool, intruder), reconnectPeriod: 0 });
    client.on("message", (topic) => heard.push(topic));
    try {
      // Mosquitto grants the subscription but delivers nothing the ACL does not let this pool read.
      await client.subscribeAsync([`spacelift/readonly/${otherPool}/+`, readonlyTopic("spacelift", world.pool, intruder)], { qos: 1 });
      const hello = encodeMessage(makeMessage("hello", { metadata: { sneaky: "yes" }, version: "1", arch: "x86_64", state: "IDLE", run: null }));
      await client.publishAsync(writeonlyTopic("spacelift", otherPool, intruder), hello, { qos: 1 });
      // Its own subtree works (its hello is answered on its own topic), so the silence elsewhere is the ACL's doing.
      await client.publishAsync(writeonlyTopic("spacelift", world.pool, intruder), hello, { qos: 1 });
      await waitFor("the intruder registered in its own pool", async () => (await world.workers()).find((w) => w.id === intruder));
      await waitFor("the answer on its own topic", () => heard.includes(readonlyTopic("spacelift", world.pool, intruder)));
      expect(await world.api<unknown[]>("GET", `/workers?pool=${otherPool}`)).toEqual([]);
      // A launcher of the other pool registers; its messages never reach the intruder.
      const b = await world.launch({ token: otherPoolToken, keyPath: otherKeys.keyPath, pool: otherPool });
      other = { pool: otherPool, token: otherPoolToken, agent: b };
      await Bun.sleep(500);
      expect(heard.filter((t) => t.includes(otherPool))).toEqual([]);
      expect(b.worker).not.toBe(intruder);
    } finally {
      await client.endAsync(true);
    }
  });

  test("a run printing a line every millisecond while Mosquitto is SIGKILLed for 10 s: every line stored once, in order, FINISHED", async () => {
    const a = await world.launch();
    // The pool still has the launchers of the first test; the run must go to this one.
    for (const w of await world.workers()) if (w.id !== a.worker) await world.api("POST", `/workers/${w.id}/drain`);
    const lines = 12_000;
    const stack = await world.stack("every-ms", { print: [`i=0; while [ $i -lt ${lines} ]; do echo "line $i"; i=$((i+1)); sleep 0.001; done`] });
    const run = await world.trigger(stack);
    await waitFor("run RUNNING", async () => (await world.run(run)).state === "RUNNING", 20_000);
    await Bun.sleep(2_000);
    await world.mosquitto!.kill();
    await Bun.sleep(10_000);
    // The run went on printing while the broker was away.
    expect((await world.run(run)).state).toBe("RUNNING");
    await world.mosquitto!.start();
    await world.mosquittoRestarted();
    const ended = await world.settled(run, 90_000);
    expect(ended).toMatchObject({ state: "FINISHED", reason: "ok", worker: a.worker });
    const logs = await waitFor("the whole log", async () => {
      const l = await world.logs(run);
      return l.done ? l : null;
    }, 30_000);
    expect(logs.text).toBe(Array.from({ length: lines }, (_, i) => `line ${i}\n`).join(""));
    expect(logs.seqs).toEqual(logs.seqs.map((_, i) => i));
    // Silence while the broker was away is not the worker's: it is still the same live worker.
    expect((await world.workers()).find((w) => w.id === a.worker)?.status).toBe("IDLE");
  });

  test("pool reset: the old token's launcher is refused by Mosquitto (CRL, SIGHUP) and exits 77; the new token registers", async () => {
    const old = await world.launch();
    const fresh = opensslKeyAndCsr(world.path, "fresh", ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
    const started = Date.now();
    const reset = await world.api<{ token: string }>("POST", `/pools/${world.pool}/reset`, { csr: readFileSync(fresh.csrPath, "utf8") });
    const code: unknown = await Promise.race([old.exit, Bun.sleep(60_000).then(() => "still running")]);
    expect(code).toBe(77);
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(world.mosquitto!.log()).toContain("Reloading config");
    // OpenSSL's verdict on the revoked certificate, checked against the CRL the mothership wrote.
    expect(world.mosquitto!.log()).toContain("certificate verify failed");
    // The old certificate's serial is in the CRL Mosquitto read.
    const oldSerial = new x509.X509Certificate(decodeToken(world.token).certificate).serialNumber.toLowerCase();
    const crl = new x509.X509Crl(readFileSync(world.crlPath, "utf8"));
    expect(crl.entries.map((e) => e.serialNumber.toLowerCase())).toContain(oldSerial);
    const next = await world.launch({ token: reset.token, keyPath: fresh.keyPath });
    expect((await world.workers()).map((w) => w.id)).toContain(next.worker);
  });

  test("pool delete: its serial joins the CRL and its launcher, shut out by Mosquitto, exits 77", async () => {
    expect(other.agent).not.toBeNull();
    await world.api("DELETE", `/pools/${other.pool}`);
    const code: unknown = await Promise.race([other.agent!.exit, Bun.sleep(60_000).then(() => "still running")]);
    expect(code).toBe(77);
    const serial = new x509.X509Certificate(decodeToken(other.token).certificate).serialNumber.toLowerCase();
    expect(new x509.X509Crl(readFileSync(world.crlPath, "utf8")).entries.map((e) => e.serialNumber.toLowerCase())).toContain(serial);
  });
});
