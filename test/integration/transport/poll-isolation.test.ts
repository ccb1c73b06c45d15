// The long-poll endpoints against pool A holding its own key: requests in the name of pool B's worker
// are refused and leave B's mailbox and row alone; a signed request sent twice is refused the second
// time (poll-replayed) and not applied; a 100 MB body is refused before it is read, whether it is
// unsigned, declares its length or comes chunked. A real in-process mothership on loopback over TLS,
// real openssl keys; the large bodies come from a raw TLS socket writing one reused buffer, so the
// memory measured is the server's.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFile } from "node:fs/promises";
import { connect } from "node:tls";
import { decodePrivateKey } from "../../../src/pki/keys.ts";
import { makeMessage, type DownlinkMessage, type UplinkMessage } from "../../../src/protocol/messages.ts";
import { importSigningKey, POLL_DOWNLINK_PATH, POLL_UPLINK_PATH, signRequest, type DownlinkAnswer, type SigningKey } from "../../../src/protocol/poll.ts";
import { ulid } from "../../../src/protocol/ulid.ts";
import type { RunningMothership } from "../../../src/mothership/serve.ts";
import { cli, opensslKeyAndCsr, startServer, tempDir } from "../mothership/harness.ts";

setDefaultTimeout(45_000);

let dir: Awaited<ReturnType<typeof tempDir>>;
let server: RunningMothership;
let data: string;
const pools: Record<"a" | "b", { id: string; key: SigningKey }> = {} as never;

async function makePool(name: string): Promise<{ id: string; key: SigningKey }> {
  const { keyPath, csrPath } = opensslKeyAndCsr(dir.path, name, ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
  const token = (await cli(data, ["pool", "create", "--name", name, "--csr", csrPath])).stdout.trim();
  const id = (JSON.parse(Buffer.from(token, "base64").toString()) as { pool: string }).pool;
  return { id, key: await importSigningKey(decodePrivateKey(await readFile(keyPath, "utf8")).keyObject) };
}

beforeAll(async () => {
  dir = await tempDir("poll-isolation-");
  data = `${dir.path}/data`;
  server = await startServer(data);
  pools.a = await makePool("pool-a");
  pools.b = await makePool("pool-b");
});

afterAll(async () => {
  await server?.stop();
  await dir?.remove();
});

interface Signed {
  url: string;
  init: RequestInit & { headers: Record<string, string> };
}

async function signed(pool: { id: string; key: SigningKey }, worker: string, method: "GET" | "POST", path: string, body = ""): Promise<Signed> {
  const headers = await signRequest(pool.key, { method, pathWithQuery: path, pool: pool.id, worker, body: new TextEncoder().encode(body) });
  return { url: `${server.httpUrl}${path}`, init: { method, headers, body: method === "POST" ? body : undefined } };
}

async function send(s: Signed): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(s.url, { ...s.init, tls: { ca: server.caPem } });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

const batch = (...messages: UplinkMessage[]) => JSON.stringify({ messages });
const hello = (tag: string) => makeMessage("hello", { metadata: { team: tag }, version: "1.0.0", arch: "x86_64", state: "IDLE", run: null });
const post = async (pool: { id: string; key: SigningKey }, worker: string, ...messages: UplinkMessage[]) => send(await signed(pool, worker, "POST", POLL_UPLINK_PATH, batch(...messages)));
const poll = async (pool: { id: string; key: SigningKey }, worker: string, after: number) => send(await signed(pool, worker, "GET", `${POLL_DOWNLINK_PATH}?after=${after}&wait=0`));

async function admin(path: string): Promise<unknown> {
  const res = await fetch(`${server.httpUrl}/api/v1${path}`, { headers: { authorization: `Bearer ${server.adminToken}` }, tls: { ca: server.caPem } });
  return res.json();
}
const liveIds = async (pool: string) => ((await admin(`/workers?pool=${pool}`)) as Array<{ id: string }>).map((w) => w.id);
/** Message types of a poll answer; a message signed by the mothership carries the message text inside. */
const types = (a: DownlinkAnswer) =>
  a.messages.map((m) => {
    const signed = m.message as { message?: unknown };
    return (typeof signed.message === "string" ? (JSON.parse(signed.message) as DownlinkMessage) : (m.message as DownlinkMessage)).type;
  });

/** Sends a POST head and then `total` bytes of one reused 1 MiB buffer over raw TLS; resolves with the status line. */
function flood(o: { headers: Record<string, string>; total: number; chunked?: boolean }): Promise<{ status: number; ms: number; sent: number }> {
  const url = new URL(server.httpUrl);
  const t0 = performance.now();
  return new Promise((resolve) => {
    const s = connect({ host: url.hostname, port: Number(url.port), ca: server.caPem, servername: "localhost" });
    const chunk = Buffer.alloc(1 << 20, 0x61);
    let sent = 0;
    let answer = "";
    const done = () => resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0), ms: performance.now() - t0, sent });
    s.once("secureConnect", () => {
      const head = Object.entries(o.headers).map(([k, v]) => `${k}: ${v}\r\n`).join("");
      const framing = o.chunked ? "Transfer-Encoding: chunked\r\n" : `Content-Length: ${o.total}\r\n`;
      s.write(`POST ${POLL_UPLINK_PATH} HTTP/1.1\r\nHost: ${url.host}\r\n${head}${framing}Content-Type: application/json\r\n\r\n`);
      const pump = () => {
        while (sent < o.total && !s.destroyed && answer === "") {
          sent += chunk.length;
          if (o.chunked) s.write(`${chunk.length.toString(16)}\r\n`);
          let ok = s.write(chunk);
          if (o.chunked) ok = s.write("\r\n");
          if (!ok) return void s.once("drain", pump);
        }
        if (o.chunked && sent >= o.total) s.write("0\r\n\r\n");
      };
      pump();
    });
    s.on("data", (d: Buffer) => {
      answer += d.toString("latin1");
      if (answer.includes("\r\n\r\n")) {
        done();
        s.destroy();
      }
    });
    s.on("error", () => {});
    s.on("close", done);
  });
}

describe("a worker id belongs to its pool (long-poll)", () => {
  test("pool A's signed requests in the name of B's worker are refused; B's mailbox and row are untouched", async () => {
    const worker = ulid();
    expect(await post(pools.b, worker, hello("b"))).toEqual({ status: 200, json: { accepted: 1 } });

    const asA = await post(pools.a, worker, hello("a"));
    expect(asA).toMatchObject({ status: 403, json: { error: { code: "worker-pool-mismatch" } } });
    expect(await poll(pools.a, worker, 0)).toMatchObject({ status: 403, json: { error: { code: "worker-pool-mismatch" } } });
    expect(await post(pools.a, worker, makeMessage("gone", { crashed: true }))).toMatchObject({ status: 403 });

    // B's registered is still waiting for B, its row keeps B's metadata, and B is live.
    const b = await poll(pools.b, worker, 0);
    expect(b.status).toBe(200);
    expect(types(b.json as unknown as DownlinkAnswer)).toEqual(["registered"]);
    expect(await admin(`/workers/${worker}`)).toMatchObject({ pool: pools.b.id, metadata: { team: "b" }, status: "IDLE" });
    expect(await liveIds(pools.b.id)).toContain(worker);
    expect(await liveIds(pools.a.id)).not.toContain(worker);
  });

  test("a signed request sent again is refused as poll-replayed and not applied", async () => {
    const worker = ulid();
    expect((await post(pools.a, worker, hello("a"))).status).toBe(200);
    const gone = await signed(pools.a, worker, "POST", POLL_UPLINK_PATH, batch(makeMessage("gone", { crashed: false })));
    expect((await send(gone)).status).toBe(200);
    expect(await liveIds(pools.a.id)).not.toContain(worker);
    expect((await post(pools.a, worker, hello("a"))).status).toBe(200);
    expect(await liveIds(pools.a.id)).toContain(worker);

    const replayed = await send(gone);
    expect(replayed).toMatchObject({ status: 401, json: { error: { code: "poll-replayed" } } });
    expect(await liveIds(pools.a.id)).toContain(worker);
    // The same for a poll: its nonce was used once.
    const first = await signed(pools.a, worker, "GET", `${POLL_DOWNLINK_PATH}?after=0&wait=0`);
    expect((await send(first)).status).toBe(200);
    expect(await send(first)).toMatchObject({ status: 401, json: { error: { code: "poll-replayed" } } });
  });
});

describe("bodies are bounded before they are read", () => {
  test("unsigned 100 MB POSTs, chunked or not, are answered at once and the server does not buffer them", async () => {
    Bun.gc(true);
    const before = process.memoryUsage().rss;
    const answers = await Promise.all([false, true, false, true].map((chunked) => flood({ headers: {}, total: 100 * 1024 * 1024, chunked })));
    const grown = (process.memoryUsage().rss - before) / 1024 / 1024;
    for (const a of answers) {
      expect(a.status).toBe(401);
      expect(a.ms).toBeLessThan(3_000);
    }
    expect(grown).toBeLessThan(50);
  });

  test("a declared length over the cap is 413 before the body is read; a chunked body is cut at the cap", async () => {
    const worker = ulid();
    // Headers that pass every check that needs no body (the signature covers another body).
    const { init } = await signed(pools.a, worker, "POST", POLL_UPLINK_PATH, batch(hello("a")));
    const declared = await flood({ headers: init.headers, total: 100 * 1024 * 1024 });
    expect(declared.status).toBe(413);
    expect(declared.ms).toBeLessThan(3_000);
    const { init: again } = await signed(pools.a, worker, "POST", POLL_UPLINK_PATH, batch(hello("a")));
    const chunked = await flood({ headers: again.headers, total: 40 * 1024 * 1024, chunked: true });
    expect(chunked.status).toBe(413);
    expect(chunked.sent).toBeLessThan(40 * 1024 * 1024);
    expect(await liveIds(pools.a.id)).not.toContain(worker);
  });
});
