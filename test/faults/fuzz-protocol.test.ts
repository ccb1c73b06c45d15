// Fault suite: seeded fuzzing of the protocol's parsers (test/faults/fuzz.ts) — protocol messages both
// ways (parseMessage on text and bytes, decodeMessage on values), signed downlink envelopes (what a
// launcher opens), and the signed headers of a long-poll request (what the mothership reads before the
// body). No crash, no hang; messages are `invalid` with a reason, envelopes and headers are refused with
// their own error class and a stable code.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createPrivateKey, createPublicKey } from "node:crypto";
import { DownlinkSignatureError, DownlinkVerifier, type SignedDownlink } from "../../src/protocol/downlink-signature.ts";
import { decodeMessage, encodeMessage, makeMessage, parseMessage, type DecodedMessage, type Message } from "../../src/protocol/messages.ts";
import { importSigningKey, PollSignatureError, readSignedHeaders, signRequest, verifySignature, type SigningKey } from "../../src/protocol/poll.ts";
import { makeTestCa, type TestCa } from "../support/downlink-signer.ts";
import { makeKeyAndCsr } from "../unit/protocol/fixtures.ts";
import { expectClearRejection, fuzz, mutate, mutateJson, randomBytes, type Rand } from "./fuzz.ts";

const RUN = "01JABCDEFGHJKMNPQRSTVWXYZ0";
const SAMPLES: Message[] = [
  makeMessage("hello", { metadata: { host: "h" }, version: "1.0.0", arch: "x86_64", state: "IDLE", run: null, docker: { ok: true, message: "" } }),
  makeMessage("heartbeat", { state: "BUSY", run: RUN }),
  makeMessage("run_accepted", { run: RUN }),
  makeMessage("run_rejected", { run: RUN, reason: "busy", messages: ["x"] }),
  makeMessage("phase", { run: RUN, phase: "plan" }),
  makeMessage("log", { run: RUN, seq: 3, data: Buffer.from("hello\n").toString("base64") }),
  makeMessage("run_finished", { run: RUN, exit_code: 0, reason: "ok", last_seq: 3 }),
  makeMessage("gone", { crashed: false }),
  makeMessage("registered", { worker: "w", pool: "p", status: "IDLE", heartbeat_seconds: 15 }),
  makeMessage("schedule", { run: RUN, jwe: "a.b.c.d.e" }),
  makeMessage("cancel", { run: RUN }),
  makeMessage("log_ack", { run: RUN, seq: 3 }),
  makeMessage("error", { in_reply_to: null, code: "invalid-message", message: "x" }),
];
const TEXTS = SAMPLES.map(encodeMessage);

function checkDecoded(d: DecodedMessage<Message>): boolean {
  if (d.kind === "ok") return false;
  if ((d.type?.length ?? 0) > 200 || (d.id?.length ?? 0) > 200) throw new Error("a rejection repeats a type or id of more than 200 characters");
  if (d.kind === "ignored") {
    if (typeof d.type !== "string") throw new Error("ignored without the type it ignored");
    return true;
  }
  if (d.kind !== "invalid" || typeof d.error !== "string" || d.error.trim() === "") throw new Error(`a rejection without a reason: ${JSON.stringify(d)}`);
  if (d.error.length > 1_000) throw new Error(`a reason of ${d.error.length} characters (it goes into logs and error replies)`);
  return true;
}

describe("fuzz: protocol messages", () => {
  test("parseMessage on text, both directions", async () => {
    const r = await fuzz("message-text", (rand, i) => (i < TEXTS.length ? TEXTS[i]! : mutate(rand, TEXTS[Math.floor(rand() * TEXTS.length)]!, TEXTS)), (text) => {
      const up = checkDecoded(parseMessage(text, "uplink"));
      const down = checkDecoded(parseMessage(text, "downlink"));
      return up && down;
    });
    expect(r.rejected).toBeGreaterThan(0);
  });

  test("parseMessage on raw bytes (invalid UTF-8 included)", async () => {
    const bytes = TEXTS.map((t) => new TextEncoder().encode(t));
    const r = await fuzz(
      "message-bytes",
      (rand) => {
        if (rand() < 0.3) return randomBytes(rand, Math.floor(rand() * 300));
        const b = Uint8Array.from(bytes[Math.floor(rand() * bytes.length)]!);
        for (let k = 1 + Math.floor(rand() * 4); k > 0 && b.length > 0; k--) {
          const at = Math.floor(rand() * b.length);
          b[at] = b[at]! ^ (1 << Math.floor(rand() * 8));
        }
        return rand() < 0.3 ? b.subarray(0, Math.floor(rand() * b.length)) : b;
      },
      (b) => checkDecoded(parseMessage(b, "uplink")) && checkDecoded(parseMessage(b, "downlink")),
    );
    expect(r.rejected).toBeGreaterThan(0);
  });

  test("decodeMessage on JSON values with odd fields (a long-poll batch's items)", async () => {
    const r = await fuzz("message-values", (rand: Rand) => mutateJson(rand, SAMPLES[Math.floor(rand() * SAMPLES.length)]!), (value) => {
      checkDecoded(decodeMessage(value, "uplink"));
      return checkDecoded(decodeMessage(value, "downlink"));
    });
    expect(r.rejected).toBeGreaterThan(r.inputs / 2);
  });
});

describe("fuzz: signed downlink envelopes (the launcher's side)", () => {
  const aud = { pool: "01POOLAAAAAAAAAAAAAAAAAAAA", worker: "01WORKERAAAAAAAAAAAAAAAAAA" };
  let ca: TestCa;
  let verifier: DownlinkVerifier;
  let envelopes: SignedDownlink[] = [];

  beforeAll(async () => {
    ca = await makeTestCa("Fuzz CA");
    verifier = new DownlinkVerifier({ ca: ca.caPem, ...aud });
    envelopes = SAMPLES.slice(8).map((m) => JSON.parse(ca.signer.sign(aud, m)) as SignedDownlink);
  });
  afterAll(async () => {
    await ca?.remove();
  });

  test("DownlinkVerifier.open: only intact envelopes open, everything else is a DownlinkSignatureError", async () => {
    const r = await fuzz(
      "downlink-envelope",
      (rand, i) => {
        const e = envelopes[i % envelopes.length]!;
        if (i < envelopes.length) return e;
        if (rand() < 0.5) return mutateJson(rand, e);
        try {
          return JSON.parse(mutate(rand, JSON.stringify(e))) as unknown;
        } catch {
          return mutate(rand, JSON.stringify(e));
        }
      },
      async (value) => {
        try {
          const opened = await verifier.open(value);
          // Whatever opens is one of the messages the mothership signed, byte for byte.
          if (!envelopes.some((e) => JSON.stringify(JSON.parse(e.message)) === JSON.stringify(opened.message))) throw new Error("a forged message opened");
          return false;
        } catch (err) {
          return expectClearRejection(err, DownlinkSignatureError);
        }
      },
    );
    // The intact ones open; almost nothing else can (a mutation that happens to be a no-op).
    expect(r.rejected).toBeGreaterThan(r.inputs * 0.9);
  });
});

describe("fuzz: long-poll request headers (the mothership's side)", () => {
  let key: SigningKey;
  let verifyKey: SigningKey;
  let good: Record<string, string> = {};
  const request = { method: "POST", pathWithQuery: "/api/v1/comms/uplink", pool: "01POOLAAAAAAAAAAAAAAAAAAAA", worker: "01WORKERAAAAAAAAAAAAAAAAAA", body: new TextEncoder().encode('{"messages":[]}') };

  beforeAll(async () => {
    const { pkcs8 } = await makeKeyAndCsr("p256");
    const privateKey = createPrivateKey({ key: Buffer.from(pkcs8), format: "der", type: "pkcs8" });
    key = await importSigningKey(privateKey);
    const spki = createPublicKey(privateKey).export({ type: "spki", format: "der" });
    verifyKey = { algorithm: key.algorithm, key: await crypto.subtle.importKey("spki", spki, { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]) };
    good = await signRequest(key, request);
  });

  test("readSignedHeaders and verifySignature: PollSignatureError with a stable code for every damaged header set", async () => {
    const names = Object.keys(good);
    const r = await fuzz(
      "poll-headers",
      (rand, i) => {
        const h: Record<string, string> = { ...good };
        if (i === 0) return h;
        for (let k = 1 + Math.floor(rand() * 2); k > 0; k--) {
          const name = names[Math.floor(rand() * names.length)]!;
          if (rand() < 0.15) delete h[name];
          else h[name] = mutate(rand, h[name] ?? "", Object.values(good));
        }
        return h;
      },
      async (h) => {
        let headers: Headers;
        try {
          headers = new Headers(h);
        } catch {
          return true; // not a header value HTTP can carry: it never reaches the mothership
        }
        try {
          // What the comms endpoint does: the headers alone first, then the signature over the request.
          await verifySignature(verifyKey, request, readSignedHeaders(headers));
          return false;
        } catch (err) {
          return expectClearRejection(err, PollSignatureError);
        }
      },
    );
    expect(r.rejected).toBeGreaterThan(r.inputs * 0.9);
    expect(r.rejected).toBeLessThan(r.inputs);
  });
});
