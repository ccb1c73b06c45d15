// The mothership's long-poll endpoints against signed requests made by hand: what a request signed
// with another pool's key, with a changed byte, with a stale clock or with a reset pool's key gets
// (401, nothing applied), and that a downlink message survives a lost poll answer until it is
// acknowledged by cursor. A real in-process mothership on loopback, real openssl keys.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFile } from "node:fs/promises";
import { decodePrivateKey } from "../../../src/pki/keys.ts";
import { DownlinkVerifier, type SignedDownlink } from "../../../src/protocol/downlink-signature.ts";
import { makeMessage, type DownlinkMessage, type UplinkMessage } from "../../../src/protocol/messages.ts";
import { importSigningKey, POLL_DOWNLINK_PATH, POLL_UPLINK_PATH, signRequest, type DownlinkAnswer, type SigningKey } from "../../../src/protocol/poll.ts";
import { ulid } from "../../../src/protocol/ulid.ts";
import type { RunningMothership } from "../../../src/mothership/serve.ts";
import { cli, opensslKeyAndCsr, startServer, tempDir } from "../mothership/harness.ts";

setDefaultTimeout(30_000);

let dir: Awaited<ReturnType<typeof tempDir>>;
let server: RunningMothership;
let data: string;
const pools: Record<"a" | "b", { id: string; key: SigningKey }> = {} as never;

async function makePool(name: string, newkey?: string[]): Promise<{ id: string; key: SigningKey; csrPath: string }> {
  const { keyPath, csrPath } = opensslKeyAndCsr(dir.path, name, newkey);
  const token = (await cli(data, ["pool", "create", "--name", name, "--csr", csrPath])).stdout.trim();
  const id = (JSON.parse(Buffer.from(token, "base64").toString()) as { pool: string }).pool;
  return { id, key: await importSigningKey(decodePrivateKey(await readFile(keyPath, "utf8")).keyObject), csrPath };
}

beforeAll(async () => {
  dir = await tempDir("poll-endpoints-");
  data = `${dir.path}/data`;
  server = await startServer(data);
  pools.a = await makePool("pool-a");
  pools.b = await makePool("pool-b", ["ec", "-pkeyopt", "ec_paramgen_curve:P-384"]);
});

afterAll(async () => {
  await server?.stop();
  await dir?.remove();
});

interface Call {
  pool: string;
  worker: string;
  key: SigningKey;
  method: "GET" | "POST";
  path: string;
  body?: string;
  /** What is sent instead of the signed body. */
  sentBody?: string;
  at?: Date;
}

async function call(c: Call): Promise<{ status: number; json: Record<string, unknown> }> {
  const body = new TextEncoder().encode(c.body ?? "");
  const headers = await signRequest(c.key, { method: c.method, pathWithQuery: c.path, pool: c.pool, worker: c.worker, body }, c.at);
  const res = await fetch(`${server.httpUrl}${c.path}`, { method: c.method, headers, body: c.method === "POST" ? (c.sentBody ?? c.body) : undefined, tls: { ca: server.caPem } });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

const batch = (...messages: UplinkMessage[]) => JSON.stringify({ messages });
const hello = () => makeMessage("hello", { metadata: { via: "poll" }, version: "1.0.0", arch: "x86_64", state: "IDLE", run: null });

async function admin(path: string, method = "GET"): Promise<unknown> {
  const res = await fetch(`${server.httpUrl}/api/v1${path}`, { method, headers: { authorization: `Bearer ${server.adminToken}` }, tls: { ca: server.caPem } });
  return res.json();
}

const liveWorkers = async (pool: string) => ((await admin(`/workers?pool=${pool}`)) as Array<{ id: string; status: string }>).map((w) => w.id);

async function poll(pool: { id: string; key: SigningKey }, worker: string, after: number, wait = 0): Promise<DownlinkAnswer> {
  const r = await call({ pool: pool.id, worker, key: pool.key, method: "GET", path: `${POLL_DOWNLINK_PATH}?after=${after}&wait=${wait}` });
  expect(r.status).toBe(200);
  return r.json as unknown as DownlinkAnswer;
}

/** Each message in an answer is the mothership's signed envelope around it. */
const types = (a: DownlinkAnswer) => a.messages.map((m) => (JSON.parse((m.message as SignedDownlink).message) as DownlinkMessage).type);

describe("poll endpoints", () => {
  test("hello registers the worker; a lost poll answer is answered again until acknowledged by cursor", async () => {
    const worker = ulid();
    const posted = await call({ pool: pools.a.id, worker, key: pools.a.key, method: "POST", path: POLL_UPLINK_PATH, body: batch(hello()) });
    expect(posted).toEqual({ status: 200, json: { accepted: 1 } });
    expect(await liveWorkers(pools.a.id)).toContain(worker);

    const first = await poll(pools.a, worker, 0);
    expect(types(first)).toEqual(["registered"]);
    // Signed for this worker of this pool by a downlink signer of the CA in the pool's token.
    const envelope = first.messages[0]!.message;
    expect((await new DownlinkVerifier({ ca: server.caPem, pool: pools.a.id, worker }).open(envelope)).message).toMatchObject({ type: "registered", worker });
    const elsewhere = await new DownlinkVerifier({ ca: server.caPem, pool: pools.a.id, worker: ulid() }).open(envelope).then(() => "accepted", (err: unknown) => (err as { code?: string }).code);
    expect(elsewhere).toBe("downlink-audience");
    // The answer "was lost": the launcher polls again with its old cursor and gets the same message.
    const again = await poll(pools.a, worker, 0);
    expect(again).toEqual(first);
    // Acknowledged: gone from the mailbox.
    const acked = await poll(pools.a, worker, first.cursor);
    expect(acked).toEqual({ messages: [], cursor: first.cursor });
  });

  test("a waiting poll answers at once when a message is queued (drain)", async () => {
    const worker = ulid();
    expect((await call({ pool: pools.a.id, worker, key: pools.a.key, method: "POST", path: POLL_UPLINK_PATH, body: batch(hello()) })).status).toBe(200);
    const { cursor } = await poll(pools.a, worker, 0);
    const t0 = Date.now();
    const waiting = poll(pools.a, worker, cursor, 25);
    await Bun.sleep(300);
    await admin(`/workers/${worker}/drain`, "POST");
    const answer = await waiting;
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(types(answer)).toEqual(["drain"]);
    expect(answer.cursor).toBeGreaterThan(cursor);
  });

  test("signed with another pool's key, a changed byte, a stale timestamp: 401 with a code, nothing applied", async () => {
    const worker = ulid();
    const body = batch(hello());
    const otherKey = await call({ pool: pools.a.id, worker, key: pools.b.key, method: "POST", path: POLL_UPLINK_PATH, body });
    expect(otherKey.status).toBe(401);
    expect(otherKey.json).toMatchObject({ error: { code: "poll-signature-invalid", message: expect.stringContaining("current certificate") } });

    const changed = body.replace('"poll"', '"poLl"');
    const tampered = await call({ pool: pools.a.id, worker, key: pools.a.key, method: "POST", path: POLL_UPLINK_PATH, body, sentBody: changed });
    expect(tampered).toMatchObject({ status: 401, json: { error: { code: "poll-signature-invalid" } } });

    const stale = await call({ pool: pools.a.id, worker, key: pools.a.key, method: "POST", path: POLL_UPLINK_PATH, body, at: new Date(Date.now() - 400_000) });
    expect(stale).toMatchObject({ status: 401, json: { error: { code: "poll-timestamp-stale" } } });

    const unsigned = await fetch(`${server.httpUrl}${POLL_UPLINK_PATH}`, { method: "POST", body, tls: { ca: server.caPem } });
    expect(unsigned.status).toBe(401);
    expect(await unsigned.json()).toMatchObject({ error: { code: "poll-signature-missing" } });

    // Pool B's own key may not speak as pool A's worker, nor poll pool A's mailboxes.
    const peek = await call({ pool: pools.a.id, worker, key: pools.b.key, method: "GET", path: `${POLL_DOWNLINK_PATH}?after=0&wait=0` });
    expect(peek.status).toBe(401);
    expect(await liveWorkers(pools.a.id)).not.toContain(worker);
    expect(await liveWorkers(pools.b.id)).not.toContain(worker);
  });

  test("after a pool reset the old key is refused; after a delete every request is", async () => {
    const c = await makePool("pool-c");
    const worker = ulid();
    expect((await call({ pool: c.id, worker, key: c.key, method: "POST", path: POLL_UPLINK_PATH, body: batch(hello()) })).status).toBe(200);
    const fresh = opensslKeyAndCsr(dir.path, "pool-c-new");
    expect((await cli(data, ["pool", "reset", c.id, "--csr", fresh.csrPath])).code).toBe(0);
    const old = await call({ pool: c.id, worker, key: c.key, method: "POST", path: POLL_UPLINK_PATH, body: batch(makeMessage("heartbeat", { state: "IDLE", run: null })) });
    expect(old).toMatchObject({ status: 401, json: { error: { code: "poll-signature-invalid" } } });
    const newKey = await importSigningKey(decodePrivateKey(await readFile(fresh.keyPath, "utf8")).keyObject);
    expect((await call({ pool: c.id, worker, key: newKey, method: "POST", path: POLL_UPLINK_PATH, body: batch(hello()) })).status).toBe(200);
    expect((await cli(data, ["pool", "delete", c.id])).code).toBe(0);
    const deleted = await call({ pool: c.id, worker, key: newKey, method: "POST", path: POLL_UPLINK_PATH, body: batch(hello()) });
    expect(deleted).toMatchObject({ status: 401, json: { error: { code: "poll-signature-invalid", message: expect.stringContaining("does not exist") } } });
  });

  test("a malformed batch is a 400; invalid messages inside a batch are answered with error, the rest applied", async () => {
    const worker = ulid();
    const bad = await call({ pool: pools.a.id, worker, key: pools.a.key, method: "POST", path: POLL_UPLINK_PATH, body: "{\"messages\": 3}" });
    expect(bad).toMatchObject({ status: 400, json: { error: { code: "invalid-request" } } });
    const mixed = JSON.stringify({ messages: [hello(), { v: 1, type: "log", id: "x", ts: "nope" }] });
    expect((await call({ pool: pools.a.id, worker, key: pools.a.key, method: "POST", path: POLL_UPLINK_PATH, body: mixed })).status).toBe(200);
    const answer = await poll(pools.a, worker, 0);
    expect(types(answer)).toEqual(["registered", "error"]);
  });
});
