// Long-poll through either of two in-process motherships on one PostgreSQL database (data dirs
// holding the same CA and keys): a hello through A is answered in a poll through B, an operator's
// drain through either replica reaches a poll waiting on the other at once (B never heard the
// worker: it finds its carrier in the database), and a signed request replayed to the other replica
// is refused. Real TLS, real openssl keys, requests signed by hand.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { cp, readFile } from "node:fs/promises";
import { silentLogger } from "../../../src/log/logger.ts";
import { startMothership, type RunningMothership } from "../../../src/mothership/serve.ts";
import { decodePrivateKey } from "../../../src/pki/keys.ts";
import type { SignedDownlink } from "../../../src/protocol/downlink-signature.ts";
import { makeMessage, type DownlinkMessage } from "../../../src/protocol/messages.ts";
import { importSigningKey, POLL_DOWNLINK_PATH, POLL_UPLINK_PATH, signRequest, type DownlinkAnswer, type SigningKey } from "../../../src/protocol/poll.ts";
import { ulid } from "../../../src/protocol/ulid.ts";
import { postgresTestEnv } from "../../support/env.ts";
import { createTestDatabase, type TestDatabase } from "../../support/postgres.ts";
import { cli, opensslKeyAndCsr, tempDir } from "../mothership/harness.ts";

setDefaultTimeout(60_000);
const pg = postgresTestEnv();

let dir: Awaited<ReturnType<typeof tempDir>>;
let db: TestDatabase;
const replicas: RunningMothership[] = [];
let pool: { id: string; key: SigningKey };

function start(dataDir: string): Promise<RunningMothership> {
  return startMothership({
    dataDir,
    database: db.url,
    httpHost: "127.0.0.1",
    httpPort: 0,
    httpPlain: false,
    mqttHost: "127.0.0.1",
    mqttPort: 0,
    namespace: "spacelift",
    heartbeatSeconds: 30,
    scheduleTimeoutMs: 60_000,
    logger: silentLogger,
  });
}

beforeAll(async () => {
  if (!pg) return;
  dir = await tempDir("poll-replicas-");
  db = await createTestDatabase(pg.url);
  replicas.push(await start(`${dir.path}/a`));
  // The second replica's data dir holds copies of the first's CA, admin token, secrets and signer keys.
  await cp(`${dir.path}/a`, `${dir.path}/b`, { recursive: true, preserveTimestamps: true });
  replicas.push(await start(`${dir.path}/b`));
  const { keyPath, csrPath } = opensslKeyAndCsr(dir.path, "pool-r", ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
  const token = (await cli(`${dir.path}/a`, ["pool", "create", "--name", "pool-r", "--csr", csrPath])).stdout.trim();
  pool = {
    id: (JSON.parse(Buffer.from(token, "base64").toString()) as { pool: string }).pool,
    key: await importSigningKey(decodePrivateKey(await readFile(keyPath, "utf8")).keyObject),
  };
});

afterAll(async () => {
  for (const r of replicas) await r.stop();
  await db?.drop();
  await dir?.remove();
});

async function send(replica: RunningMothership, method: "GET" | "POST", path: string, worker: string, body = "", headers?: Record<string, string>) {
  const signed = headers ?? (await signRequest(pool.key, { method, pathWithQuery: path, pool: pool.id, worker, body: new TextEncoder().encode(body) }));
  const res = await fetch(`${replica.httpUrl}${path}`, { method, headers: signed, body: method === "POST" ? body : undefined, tls: { ca: replica.caPem } });
  return { status: res.status, json: (await res.json()) as Record<string, unknown>, headers: signed };
}

async function poll(replica: RunningMothership, worker: string, after: number, wait = 0): Promise<DownlinkAnswer> {
  const r = await send(replica, "GET", `${POLL_DOWNLINK_PATH}?after=${after}&wait=${wait}`, worker);
  expect(r.status).toBe(200);
  return r.json as unknown as DownlinkAnswer;
}

const types = (a: DownlinkAnswer) => a.messages.map((m) => (JSON.parse((m.message as SignedDownlink).message) as DownlinkMessage).type);
const hello = () => JSON.stringify({ messages: [makeMessage("hello", { metadata: {}, version: "1.0.0", arch: "x86_64", state: "IDLE", run: null })] });

async function drain(via: RunningMothership, worker: string): Promise<void> {
  const res = await fetch(`${via.httpUrl}/api/v1/workers/${worker}/drain`, { method: "POST", headers: { authorization: `Bearer ${via.adminToken}` }, tls: { ca: via.caPem } });
  expect(res.status).toBeLessThan(300);
}

describe.skipIf(!pg)("long-poll through two replicas", () => {
  test("hello through A is answered through B; a drain through either reaches a poll waiting on the other at once", async () => {
    const [a, b] = replicas as [RunningMothership, RunningMothership];
    const worker = ulid();
    expect((await send(a, "POST", POLL_UPLINK_PATH, worker, hello())).status).toBe(200);
    const first = await poll(b, worker, 0);
    expect(types(first)).toEqual(["registered"]);
    expect(await poll(a, worker, first.cursor)).toEqual({ messages: [], cursor: first.cursor });

    // B never heard this worker: it finds in the database that the worker speaks long-poll.
    const t0 = performance.now();
    const waitingOnA = poll(a, worker, first.cursor, 25);
    await Bun.sleep(300);
    await drain(b, worker);
    const drained = await waitingOnA;
    expect(types(drained)).toEqual(["drain"]);
    expect(performance.now() - t0).toBeLessThan(15_000);

    const waitingOnB = poll(b, worker, drained.cursor, 25);
    await Bun.sleep(300);
    await drain(a, worker);
    const again = await waitingOnB;
    expect(types(again)).toEqual(["drain"]);
    expect(again.cursor).toBeGreaterThan(drained.cursor);
  });

  test("a signed request replayed to the other replica is refused", async () => {
    const [a, b] = replicas as [RunningMothership, RunningMothership];
    const worker = ulid();
    const body = hello();
    const sent = await send(a, "POST", POLL_UPLINK_PATH, worker, body);
    expect(sent.status).toBe(200);
    const replayed = await send(b, "POST", POLL_UPLINK_PATH, worker, body, sent.headers);
    expect(replayed).toMatchObject({ status: 401, json: { error: { code: "poll-replayed" } } });
  });
});
