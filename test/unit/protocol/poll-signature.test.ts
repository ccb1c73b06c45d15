// The poll request signature: what it binds (method, path with query, time, nonce, pool, worker, body) and
// what it refuses, for RSA and both EC curves. In-process keys and certificates, no network.
import { describe, expect, test } from "bun:test";
import { hasCode } from "../../../src/errors.ts";
import {
  HEADER_NONCE,
  HEADER_SIGNATURE,
  HEADER_TIMESTAMP,
  importSigningKey,
  importVerifyKey,
  signRequest,
  verifyRequest,
  type SignedRequest,
  type SigningKey,
} from "../../../src/protocol/poll.ts";
import { DAY, makeCertificate, makeKey, NOW } from "../config/pki-fixtures.ts";

const body = new TextEncoder().encode(JSON.stringify({ messages: [{ type: "heartbeat" }] }));
const request: SignedRequest = { method: "POST", pathWithQuery: "/api/v1/comms/uplink", pool: "POOL1", worker: "WORKER1", body };

async function pair(kind: "rsa" | "ec", size?: number | string): Promise<{ signer: SigningKey; verifier: SigningKey }> {
  const key = await makeKey(kind, size);
  const cert = await makeCertificate(key, new Date(NOW.getTime() - DAY), new Date(NOW.getTime() + DAY), "POOL1");
  return { signer: await importSigningKey(key.keyObject), verifier: await importVerifyKey(cert) };
}

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (hasCode(err, "poll-signature-invalid") || hasCode(err, "poll-timestamp-stale") || hasCode(err, "poll-signature-missing")) return (err as { code: string }).code;
    throw err;
  }
  return "accepted";
}

const headersOf = (h: Record<string, string>) => new Headers(h);

describe.each([["rsa", "2048"], ["ec", "P-256"], ["ec", "P-384"]] as const)("poll signature, %s %s", (kind, size) => {
  test("a signed request verifies with the certificate's public key", async () => {
    const { signer, verifier } = await pair(kind, size);
    const h = await signRequest(signer, request, NOW);
    expect(Number(h[HEADER_TIMESTAMP])).toBe(Math.floor(NOW.getTime() / 1000));
    expect(await refusal(verifyRequest(verifier, request, headersOf(h), NOW))).toBe("accepted");
  });

  test("a changed byte of the body, another path, method, query or worker: refused", async () => {
    const { signer, verifier } = await pair(kind, size);
    const h = headersOf(await signRequest(signer, request, NOW));
    const tampered = new Uint8Array(body);
    tampered[5] = (tampered[5] ?? 0) ^ 1;
    expect(await refusal(verifyRequest(verifier, { ...request, body: tampered }, h, NOW))).toBe("poll-signature-invalid");
    expect(await refusal(verifyRequest(verifier, { ...request, pathWithQuery: "/api/v1/comms/downlink" }, h, NOW))).toBe("poll-signature-invalid");
    expect(await refusal(verifyRequest(verifier, { ...request, pathWithQuery: "/api/v1/comms/uplink?x=1" }, h, NOW))).toBe("poll-signature-invalid");
    expect(await refusal(verifyRequest(verifier, { ...request, method: "GET" }, h, NOW))).toBe("poll-signature-invalid");
    const otherWorker = headersOf({ ...Object.fromEntries(h), "x-spacelift-worker": "WORKER2" });
    expect(await refusal(verifyRequest(verifier, { ...request, worker: "WORKER2" }, otherWorker, NOW))).toBe("poll-signature-invalid");
  });

  test("signed with another pool's key: refused", async () => {
    const { verifier } = await pair(kind, size);
    const other = await pair(kind, size);
    const h = headersOf(await signRequest(other.signer, request, NOW));
    expect(await refusal(verifyRequest(verifier, request, h, NOW))).toBe("poll-signature-invalid");
  });

  test("a timestamp outside ±300 s is stale; inside the window it is fine", async () => {
    const { signer, verifier } = await pair(kind, size);
    const h = headersOf(await signRequest(signer, request, NOW));
    expect(await refusal(verifyRequest(verifier, request, h, new Date(NOW.getTime() + 299_000)))).toBe("accepted");
    expect(await refusal(verifyRequest(verifier, request, h, new Date(NOW.getTime() + 301_000)))).toBe("poll-timestamp-stale");
    expect(await refusal(verifyRequest(verifier, request, h, new Date(NOW.getTime() - 301_000)))).toBe("poll-timestamp-stale");
  });
});

describe("poll signature headers", () => {
  test("missing headers, a garbage signature, or a moved timestamp: refused with a stable code", async () => {
    const { signer, verifier } = await pair("ec", "P-256");
    const h = await signRequest(signer, request, NOW);
    expect(await refusal(verifyRequest(verifier, request, headersOf({}), NOW))).toBe("poll-signature-missing");
    expect(await refusal(verifyRequest(verifier, request, headersOf({ ...h, [HEADER_SIGNATURE]: "!!" }), NOW))).toBe("poll-signature-invalid");
    const moved = String(Number(h[HEADER_TIMESTAMP]) + 1);
    expect(await refusal(verifyRequest(verifier, request, headersOf({ ...h, [HEADER_TIMESTAMP]: moved }), NOW))).toBe("poll-signature-invalid");
  });

  test("the nonce is signed: a missing, short or changed one is refused; each request gets its own", async () => {
    const { signer, verifier } = await pair("ec", "P-256");
    const h = await signRequest(signer, request, NOW);
    const again = await signRequest(signer, request, NOW);
    expect(h[HEADER_NONCE]).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(again[HEADER_NONCE]).not.toBe(h[HEADER_NONCE]);
    const { [HEADER_NONCE]: _dropped, ...without } = h;
    expect(await refusal(verifyRequest(verifier, request, headersOf(without), NOW))).toBe("poll-signature-missing");
    expect(await refusal(verifyRequest(verifier, request, headersOf({ ...h, [HEADER_NONCE]: "c2hvcnQ" }), NOW))).toBe("poll-signature-invalid");
    expect(await refusal(verifyRequest(verifier, request, headersOf({ ...h, [HEADER_NONCE]: again[HEADER_NONCE]! }), NOW))).toBe("poll-signature-invalid");
  });

  test("an RSA signature does not pass as another algorithm's", async () => {
    const rsa = await pair("rsa", "2048");
    const ec = await pair("ec", "P-256");
    const h = headersOf(await signRequest(rsa.signer, request, NOW));
    expect(await refusal(verifyRequest(ec.verifier, request, h, NOW))).toBe("poll-signature-invalid");
  });
});
