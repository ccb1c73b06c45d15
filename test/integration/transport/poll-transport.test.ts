// The long-poll transport against a real in-process mothership, through a small plain-HTTP proxy
// on loopback that serves it under a path prefix (as a TLS-terminating load balancer could) and can
// lose answers or go away: the greeting goes first, a lost poll answer loses no downlink message,
// sends wait while the mothership is unreachable and go out after the reconnect.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFile } from "node:fs/promises";
import { hasCode } from "../../../src/errors.ts";
import { silentLogger } from "../../../src/log/logger.ts";
import { decodePrivateKey } from "../../../src/pki/keys.ts";
import { decodeToken, type PoolToken } from "../../../src/pki/token.ts";
import { DownlinkVerifier, type SignedDownlink } from "../../../src/protocol/downlink-signature.ts";
import { makeMessage, type DownlinkMessage } from "../../../src/protocol/messages.ts";
import { importSigningKey, POLL_DOWNLINK_PATH, type SigningKey } from "../../../src/protocol/poll.ts";
import type { RunningMothership } from "../../../src/mothership/serve.ts";
import { ulid } from "../../../src/protocol/ulid.ts";
import { PollTransport } from "../../../src/transport/poll-transport.ts";
import { cli, opensslKeyAndCsr, startServer, tempDir, waitFor } from "../mothership/harness.ts";

setDefaultTimeout(30_000);

let dir: Awaited<ReturnType<typeof tempDir>>;
let server: RunningMothership;
let data: string;
let token: PoolToken;
let signingKey: SigningKey;
let proxy: ReturnType<typeof Bun.serve>;
const faults = { down: false, loseAnswersWithMessages: 0, lost: [] as string[] };
const transports: PollTransport[] = [];

beforeAll(async () => {
  dir = await tempDir("poll-transport-");
  data = `${dir.path}/data`;
  server = await startServer(data);
  const { keyPath, csrPath } = opensslKeyAndCsr(dir.path, "spacelift", ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
  token = decodeToken((await cli(data, ["pool", "create", "--name", "transport", "--csr", csrPath])).stdout.trim());
  signingKey = await importSigningKey(decodePrivateKey(await readFile(keyPath, "utf8")).keyObject);
  proxy = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 60,
    async fetch(req) {
      if (faults.down) return new Response("down for maintenance", { status: 503 });
      const url = new URL(req.url);
      if (!url.pathname.startsWith("/lb/")) return new Response("not here", { status: 404 });
      const upstream = await fetch(`${server.httpUrl}${url.pathname.slice(3)}${url.search}`, {
        method: req.method,
        headers: req.headers,
        body: req.method === "POST" ? await req.arrayBuffer() : undefined,
        tls: { ca: server.caPem },
      });
      const body = await upstream.text();
      if (url.pathname.endsWith(POLL_DOWNLINK_PATH) && faults.loseAnswersWithMessages > 0 && (JSON.parse(body) as { messages: unknown[] }).messages.length > 0) {
        // The mothership handed the messages out; the launcher never sees them.
        faults.loseAnswersWithMessages--;
        faults.lost.push(body);
        return new Response("bad gateway", { status: 502 });
      }
      return new Response(body, { status: upstream.status, headers: { "content-type": "application/json" } });
    },
  });
});

afterAll(async () => {
  for (const t of transports) await t.close(false);
  await proxy?.stop(true);
  await server?.stop();
  await dir?.remove();
});

function transport(worker = ulid()) {
  const received: DownlinkMessage[] = [];
  const events: string[] = [];
  const t = new PollTransport({
    url: `http://127.0.0.1:${proxy.port}/lb`,
    ca: token.ca,
    pool: token.pool,
    worker,
    signingKey,
    greeting: () => makeMessage("hello", { metadata: {}, version: "1.0.0", arch: "x86_64", state: "IDLE", run: null }),
    verifier: new DownlinkVerifier({ ca: token.ca, pool: token.pool, worker }),
    logger: silentLogger,
    backoff: { initialMs: 50, maxMs: 200, factor: 2, jitter: 0.5 },
    pollWaitSeconds: 5,
  });
  t.on("message", (m) => received.push(m));
  t.on("connected", ({ reconnect }) => events.push(reconnect ? "reconnected" : "connected"));
  t.on("disconnected", () => events.push("disconnected"));
  transports.push(t);
  return { t, worker, received, events };
}

async function admin(path: string, method = "GET"): Promise<unknown> {
  const res = await fetch(`${server.httpUrl}/api/v1${path}`, { method, headers: { authorization: `Bearer ${server.adminToken}` }, tls: { ca: server.caPem } });
  return res.json();
}

describe("poll transport", () => {
  test("connect resolves after the greeting: the worker is registered and `registered` arrives", async () => {
    const { t, worker, received, events } = transport();
    await t.connect();
    expect(events).toEqual(["connected"]);
    expect(((await admin(`/workers/${worker}`)) as { status: string }).status).toBe("IDLE");
    const registered = await waitFor("registered", () => received.find((m) => m.type === "registered"));
    expect(registered).toMatchObject({ worker, pool: token.pool });
    await t.close(true);
  });

  test("a lost poll answer: the message comes again after the reconnect, nothing is lost", async () => {
    const { t, worker, received, events } = transport();
    await t.connect();
    await waitFor("registered", () => received.find((m) => m.type === "registered"));
    faults.loseAnswersWithMessages = 1;
    faults.lost = [];
    await admin(`/workers/${worker}/drain`, "POST");
    await waitFor("the answer lost", () => faults.lost.length === 1);
    // Each is the mothership's signed envelope around the message.
    const lost = (JSON.parse(faults.lost[0]!) as { messages: Array<{ message: SignedDownlink }> }).messages.map((m) => JSON.parse(m.message.message) as DownlinkMessage);
    expect(lost.map((m) => m.type)).toEqual(["drain"]);
    // That very message (by id), not only the drain the mothership repeats after the new hello.
    await waitFor("the lost drain delivered", () => received.some((m) => m.id === lost[0]!.id));
    expect(received.filter((m) => m.id === lost[0]!.id)).toHaveLength(1);
    expect(events).toEqual(["connected", "disconnected", "reconnected"]);
    await t.close(true);
  });

  test("send waits while the mothership is unreachable and resolves after the reconnect", async () => {
    const { t, worker, events } = transport();
    await t.connect();
    faults.down = true;
    let sent = false;
    const pending = t.send(makeMessage("heartbeat", { state: "IDLE", run: null })).then(() => (sent = true));
    await waitFor("disconnected", () => events.includes("disconnected"));
    await Bun.sleep(300);
    expect(sent).toBe(false);
    const before = ((await admin(`/workers/${worker}`)) as { last_seen: string }).last_seen;
    faults.down = false;
    await pending;
    expect(events.at(-1)).toBe("reconnected");
    expect(((await admin(`/workers/${worker}`)) as { last_seen: string }).last_seen >= before).toBe(true);
    await t.close(true);
  });

  test("after close, send rejects with transport-closed and connect too", async () => {
    const { t } = transport();
    await t.connect();
    await t.close(false);
    const err = await t.send(makeMessage("heartbeat", { state: "IDLE", run: null })).catch((e: unknown) => e);
    expect(hasCode(err, "transport-closed")).toBe(true);
    expect(hasCode(await t.connect().catch((e: unknown) => e), "transport-closed")).toBe(true);
  });

  test("connect before the mothership is reachable keeps trying and resolves once it is", async () => {
    faults.down = true;
    const { t } = transport();
    let connected = false;
    const connecting = t.connect().then(() => (connected = true));
    await Bun.sleep(400);
    expect(connected).toBe(false);
    faults.down = false;
    await connecting;
    await t.close(true);
  });
});
