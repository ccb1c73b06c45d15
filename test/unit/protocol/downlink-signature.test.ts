// Signed downlink messages: what the mothership signs verifies for exactly its pool, worker, id,
// expiry and bytes; every other signer (another CA, a pool certificate of the same CA, the server
// certificate) is refused with its own code; and the receiver both transports use keeps order, drops
// an identical redelivery quietly and refuses a replayed id.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createPrivateKey } from "node:crypto";
import { issueServerCertificate } from "../../../src/pki/ca.ts";
import { fromPem } from "../../../src/pki/der.ts";
import { createLogger, type Logger } from "../../../src/log/logger.ts";
import {
  DOWNLINK_CLOCK_SKEW_SECONDS,
  DOWNLINK_VALIDITY_SECONDS,
  DownlinkVerifier,
  encodeSignedDownlink,
  signDownlink,
  type DownlinkRefusal,
  type SignedDownlink,
} from "../../../src/protocol/downlink-signature.ts";
import { makeMessage, type DownlinkMessage } from "../../../src/protocol/messages.ts";
import { DownlinkReceiver, ReplayGuard } from "../../../src/transport/downlink.ts";
import { makeTestCa, type TestCa } from "../../support/downlink-signer.ts";

const aud = { pool: "01POOLAAAAAAAAAAAAAAAAAAAA", worker: "01WORKERAAAAAAAAAAAAAAAAAA" };
let trusted: TestCa;
let outsider: TestCa;
let verifier: DownlinkVerifier;

beforeAll(async () => {
  trusted = await makeTestCa("Trusted CA");
  outsider = await makeTestCa("Outsider CA");
  verifier = new DownlinkVerifier({ ca: trusted.caPem, ...aud });
});

afterAll(async () => {
  await trusted?.remove();
  await outsider?.remove();
});

const drain = () => makeMessage("drain", {});
const envelope = (wire: string) => JSON.parse(wire) as SignedDownlink;

async function refusal(value: unknown, v: DownlinkVerifier = verifier): Promise<DownlinkRefusal | "accepted"> {
  try {
    await v.open(value);
    return "accepted";
  } catch (err) {
    return (err as { code: DownlinkRefusal }).code;
  }
}

describe("sign and verify", () => {
  test("a message signed by the CA's downlink signer opens to the same message, id and expiry", async () => {
    const m = makeMessage("schedule", { run: "01RUN", jwe: "a.b.c.d.e" });
    const wire = trusted.signer.sign(aud, m);
    const opened = await verifier.open(JSON.parse(wire));
    expect(opened.message).toEqual(m);
    expect(opened.id).toBe(m.id);
    const exp = envelope(wire).exp;
    expect(Math.abs(exp - (Date.now() / 1000 + DOWNLINK_VALIDITY_SECONDS))).toBeLessThan(2);
    // The message travels as the very text that was signed.
    expect(envelope(wire).message).toBe(JSON.stringify(m));
  });

  test.each<[string, (e: SignedDownlink) => SignedDownlink, DownlinkRefusal]>([
    ["one byte of the message", (e) => ({ ...e, message: e.message.replace('"drain"', '"cycle"') }), "downlink-bad-signature"],
    ["the message id", (e) => ({ ...e, message: e.message.replace(/"id":"[^"]+"/, '"id":"another-id"') }), "downlink-bad-signature"],
    ["the pool", (e) => ({ ...e, aud: { ...e.aud, pool: "01OTHERPOOLAAAAAAAAAAAAAAA" } }), "downlink-bad-signature"],
    ["the worker", (e) => ({ ...e, aud: { ...e.aud, worker: "01OTHERWORKERAAAAAAAAAAAAA" } }), "downlink-bad-signature"],
    ["the expiry", (e) => ({ ...e, exp: e.exp + 60 }), "downlink-bad-signature"],
    ["the signature", (e) => ({ ...e, sig: Buffer.from(Buffer.from(e.sig, "base64").map((b, i) => (i === 5 ? b ^ 1 : b))).toString("base64") }), "downlink-bad-signature"],
  ])("tampering with %s is refused", async (_what, tamper, code) => {
    const e = envelope(trusted.signer.sign(aud, drain()));
    expect(await refusal(e)).toBe("accepted");
    expect(await refusal(tamper(e))).toBe(code);
  });

  test("the signer certificate swapped for another signer of the same CA does not verify", async () => {
    const other = await trusted.anotherSigner();
    const e = envelope(trusted.signer.sign(aud, drain()));
    expect(await refusal(JSON.parse(other.sign(aud, drain())))).toBe("accepted");
    expect(await refusal({ ...e, signer: Buffer.from(other.key.certificateDer).toString("base64") })).toBe("downlink-bad-signature");
  });

  test("a message signed for another pool or worker is refused as addressed elsewhere", async () => {
    expect(await refusal(JSON.parse(trusted.signer.sign({ ...aud, worker: "01OTHERWORKERAAAAAAAAAAAAA" }, drain())))).toBe("downlink-audience");
    expect(await refusal(JSON.parse(trusted.signer.sign({ ...aud, pool: "01OTHERPOOLAAAAAAAAAAAAAAA" }, drain())))).toBe("downlink-audience");
  });

  test("expiry: within the clock skew it passes, beyond it is refused, and so is one valid for too long", async () => {
    const now = Date.now();
    const lateButSkewed = now - (DOWNLINK_VALIDITY_SECONDS + DOWNLINK_CLOCK_SKEW_SECONDS - 30) * 1000;
    expect(await refusal(JSON.parse(trusted.signer.sign(aud, drain(), lateButSkewed)))).toBe("accepted");
    const expired = now - (DOWNLINK_VALIDITY_SECONDS + DOWNLINK_CLOCK_SKEW_SECONDS + 30) * 1000;
    expect(await refusal(JSON.parse(trusted.signer.sign(aud, drain(), expired)))).toBe("downlink-expired");
    const farFuture = now + (DOWNLINK_CLOCK_SKEW_SECONDS + 60) * 1000;
    expect(await refusal(JSON.parse(trusted.signer.sign(aud, drain(), farFuture)))).toBe("downlink-expired");
  });

  test("signers the launcher must not trust: another CA, a pool certificate, the TLS server certificate", async () => {
    expect(await refusal(JSON.parse(outsider.signer.sign(aud, drain())))).toBe("downlink-signer-untrusted");
    const pool = await trusted.poolSigner(aud.pool);
    expect(await refusal(JSON.parse(pool.sign(aud, drain())))).toBe("downlink-signer-purpose");
    const server = await issueServerCertificate(trusted.ca, ["mothership.example.com"]);
    const key = { key: createPrivateKey(server.keyPem), certificateDer: fromPem("CERTIFICATE", server.certificatePem) };
    expect(await refusal(JSON.parse(encodeSignedDownlink(signDownlink(key, aud, JSON.stringify(drain())))))).toBe("downlink-signer-purpose");
    // A launcher that trusts both CAs takes the outsider's signer.
    const both = new DownlinkVerifier({ ca: trusted.caPem + outsider.caPem, ...aud });
    expect(await refusal(JSON.parse(outsider.signer.sign(aud, drain())), both)).toBe("accepted");
  });

  test("unsigned and malformed payloads", async () => {
    expect(await refusal(drain())).toBe("downlink-unsigned");
    expect(await refusal("text")).toBe("downlink-malformed");
    expect(await refusal([1])).toBe("downlink-malformed");
    const e = envelope(trusted.signer.sign(aud, drain()));
    expect(await refusal({ ...e, alg: "none" })).toBe("downlink-malformed");
    expect(await refusal({ ...e, exp: "soon" })).toBe("downlink-malformed");
    expect(await refusal({ ...e, signer: "bm90IGEgY2VydA==" })).toBe("downlink-malformed");
    expect(await refusal({ ...e, message: "x".repeat(4 * 1024 * 1024 + 1) })).toBe("downlink-malformed");
    expect(() => trusted.signer.sign(aud, "not json")).toThrow("not JSON");
  });

  test("the signer certificate is checked once: later messages of the same signer verify from the cache", async () => {
    const v = new DownlinkVerifier({ ca: trusted.caPem, ...aud });
    for (let i = 0; i < 20; i++) await v.open(JSON.parse(trusted.signer.sign(aud, drain())));
    expect(v.chainChecks).toBe(1);
    await v.open(JSON.parse((await trusted.anotherSigner()).sign(aud, drain())));
    expect(v.chainChecks).toBe(2);
    // A refused signer is checked each time it comes (nothing about it is kept).
    for (let i = 0; i < 2; i++) expect(await refusal(JSON.parse(outsider.signer.sign(aud, drain())), v)).toBe("downlink-signer-untrusted");
    expect(v.chainChecks).toBe(4);
  });
});

describe("replay guard", () => {
  test("an identical envelope is a duplicate, the same id with another signature a replay", () => {
    const g = new ReplayGuard(10);
    expect(g.check("a", 100, "sigA-0123456789abcdef", 0)).toBe("new");
    expect(g.check("a", 100, "sigA-0123456789abcdef", 0)).toBe("duplicate");
    expect(g.check("a", 100, "sigB-0123456789abcdef", 0)).toBe("replayed");
  });

  test("bounded: the full cache forgets the oldest and refuses ids expiring before what it forgot", () => {
    const g = new ReplayGuard(3);
    for (const [id, exp] of [["a", 100], ["b", 101], ["c", 102], ["d", 103]] as const) expect(g.check(id, exp, id, 0)).toBe("new");
    expect(g.size).toBe(3);
    // "a" was forgotten while still valid: it and anything expiring no later are suspect.
    expect(g.check("a", 100, "a", 0)).toBe("replayed");
    expect(g.check("z", 99, "z", 0)).toBe("replayed");
    expect(g.check("e", 104, "e", 0)).toBe("new");
    // Expired entries are dropped without raising the floor.
    const h = new ReplayGuard(2);
    h.check("x", 10, "x", 0);
    h.check("y", 11, "y", 0);
    h.check("w", 10_000, "w", 10 + DOWNLINK_CLOCK_SKEW_SECONDS + 1);
    expect(h.check("v", 12, "v", 0)).toBe("new");
  });
});

describe("receiver", () => {
  function receiver(level: "debug" | "info" = "debug") {
    const lines: Array<Record<string, unknown>> = [];
    const logger: Logger = createLogger({ pretty: false, level, write: (l) => lines.push(JSON.parse(l) as Record<string, unknown>) });
    const got: DownlinkMessage[] = [];
    const r = new DownlinkReceiver(new DownlinkVerifier({ ca: trusted.caPem, ...aud }), logger, (m) => got.push(m));
    return { r, got, lines };
  }

  test("hands on in arrival order; refuses unsigned and forged; drops a duplicate at debug; refuses a replayed id", async () => {
    const { r, got, lines } = receiver();
    const messages = Array.from({ length: 20 }, (_, i) => makeMessage("log_ack", { run: "R", seq: i }));
    const wires = messages.map((m) => trusted.signer.sign(aud, m));
    // Bytes (MQTT) and values (poll) alike, all at once.
    await Promise.all(wires.map((w, i) => r.receive(i % 2 ? new TextEncoder().encode(w) : JSON.parse(w))));
    expect(got.map((m) => (m.type === "log_ack" ? m.seq : -1))).toEqual(messages.map((_, i) => i));

    await r.receive(JSON.stringify(drain()));
    await r.receive(outsider.signer.sign(aud, drain()));
    await r.receive("{not json");
    await r.receive(wires[3]!);
    const resigned = trusted.signer.sign(aud, messages[4]!);
    await r.receive(resigned);
    expect(got).toHaveLength(20);
    const refused = lines.filter((l) => l.msg === "downlink message refused");
    expect(refused.map((l) => [l.level, l.reason])).toEqual([
      ["warn", "downlink-unsigned"],
      ["warn", "downlink-signer-untrusted"],
      ["warn", "downlink-malformed"],
      ["warn", "downlink-replayed"],
    ]);
    expect(refused[0]).toMatchObject({ type: "drain" });
    expect(lines.find((l) => l.msg === "duplicate delivery of a downlink message dropped")).toMatchObject({ level: "debug", id: messages[3]!.id });
  });

  test("a signed message of an unknown type is ignored; a known type with a bad body is dropped; the next one still arrives", async () => {
    const { r, got, lines } = receiver();
    await r.receive(trusted.signer.sign(aud, JSON.stringify({ v: 1, type: "from-the-future", id: "f1", ts: new Date().toISOString() })));
    await r.receive(trusted.signer.sign(aud, JSON.stringify({ v: 1, type: "schedule", id: "s1", ts: new Date().toISOString() })));
    await r.receive(trusted.signer.sign(aud, makeMessage("undrain", {})));
    expect(got.map((m) => m.type)).toEqual(["undrain"]);
    expect(lines.some((l) => l.msg === "message of an unknown type ignored")).toBe(true);
    expect(lines.some((l) => l.msg === "invalid message from the mothership dropped")).toBe(true);
  });
});
