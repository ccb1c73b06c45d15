// Fault suite: seeded fuzzing of the admin HTTP API in-process (createApi over a real store, CA, pool
// service and control plane): every route of the table with mutated JSON bodies (CSRs, stacks,
// triggers, drain tags), mutated queries and ids, malformed JSON and bytes, wrong methods and paths.
// No request may crash the handler (500) or hang; every refusal is JSON {error: {code, message}} with
// a stable code and a message, and its status one of the documented ones.
import "reflect-metadata";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "../../src/log/logger.ts";
import { ControlPlane } from "../../src/mothership/control.ts";
import { createApi } from "../../src/mothership/http/api.ts";
import { PoolService } from "../../src/mothership/pool-service.ts";
import { loadOrCreateSecretBox } from "../../src/mothership/secret-box.ts";
import { openStore, type Store } from "../../src/mothership/store/index.ts";
import { loadOrCreateCa } from "../../src/pki/ca.ts";
import { makeKeyAndCsr } from "../unit/protocol/fixtures.ts";
import { fuzz, mutate, mutateJson, randomBytes, STABLE_CODE, type Rand } from "./fuzz.ts";

const TOKEN = "msat_fuzz-admin-token";
const DOCUMENTED = new Set([200, 201, 400, 401, 404, 405, 409, 413]);

interface Call {
  method: string;
  path: string;
  body?: string | Uint8Array<ArrayBuffer>;
}

describe("fuzz: HTTP API bodies and queries", () => {
  let dir = "";
  let store: Store;
  let api: (req: Request) => Promise<Response>;
  let samples: Array<{ method: string; path: string; body?: unknown }> = [];
  const internalErrors: unknown[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "fuzz-api-"));
    const ca = await loadOrCreateCa(join(dir, "ca"));
    const { csrPem } = await makeKeyAndCsr("p256");
    store = await openStore(":memory:", { secrets: (await loadOrCreateSecretBox(dir)).box });
    const logger = createLogger({ level: "error", pretty: false, write: (line) => internalErrors.push(JSON.parse(line)) });
    const control = new ControlPlane({ store, logger, heartbeatSeconds: 10, scheduleTimeoutMs: 60_000, outbox: { deliver: async () => {} } });
    api = createApi({ store, control, pools: new PoolService(store, ca, { brokerEndpoint: "mqtts://127.0.0.1:8883", namespace: "spacelift", commsUrl: "https://127.0.0.1:8080" }), adminToken: TOKEN, disconnectPool: () => {}, logger });
    const post = async (path: string, body: unknown) => (await (await api(request({ method: "POST", path, body: JSON.stringify(body) }))).json()) as Record<string, unknown>;
    const pool = ((await post("/pools", { name: "fuzz", csr: csrPem })).pool as { id: string }).id;
    const stackBody = { name: "s", pool, image: "busybox", environment: [{ name: "A", value: "1", secret: true }], phases: [{ name: "plan", commands: ["true"] }], repository: "https://example.com/r.git", branch: "main", labels: ["a"], vcs_pool: null };
    const stack = (await post("/stacks", stackBody)).id as string;
    const run = (await post("/runs", { stack, type: "PROPOSED", commit: "abcdef12", branch: "dev", user_provided_metadata: ["x"] })).id as string;
    samples = [
      { method: "GET", path: "/pools" },
      { method: "POST", path: "/pools", body: { name: "p", csr: csrPem, description: "d" } },
      { method: "GET", path: `/pools/${pool}` },
      { method: "POST", path: `/pools/${pool}/reset`, body: { csr: csrPem } },
      { method: "POST", path: `/pools/${pool}/drain`, body: { tags: { k: "v" } } },
      { method: "POST", path: `/pools/${pool}/undrain`, body: {} },
      { method: "POST", path: `/pools/${pool}/cycle` },
      { method: "DELETE", path: `/pools/${pool}` },
      { method: "GET", path: `/workers?pool=${pool}` },
      { method: "GET", path: "/workers/01WORKER" },
      { method: "POST", path: "/workers/01WORKER/drain" },
      { method: "POST", path: "/stacks", body: stackBody },
      { method: "GET", path: `/stacks?pool=${pool}` },
      { method: "GET", path: `/stacks/${stack}` },
      { method: "DELETE", path: `/stacks/${stack}` },
      { method: "POST", path: "/runs", body: { stack, type: "TRACKED", commit: "abcdef12", user_provided_metadata: ["m"] } },
      { method: "GET", path: `/runs?stack=${stack}&pool=${pool}&state=QUEUED&active=true` },
      { method: "GET", path: `/runs/${run}` },
      { method: "POST", path: `/runs/${run}/cancel` },
      { method: "GET", path: `/runs/${run}/logs?after=-1&limit=10` },
    ];
  });

  afterAll(async () => {
    await store?.close();
    await rm(dir, { recursive: true, force: true });
  });

  function request(c: Call): Request {
    const init: RequestInit = { method: c.method, headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" } };
    if (c.body !== undefined && c.method !== "GET") init.body = c.body;
    return new Request(`https://127.0.0.1:8080/api/v1${c.path}`, init);
  }

  function generate(rand: Rand): Call {
    const s = samples[Math.floor(rand() * samples.length)]!;
    let method = s.method;
    let path = s.path;
    const roll = rand();
    if (roll < 0.15) {
      // The path or its query mutated; keep it a path a client can send.
      path = "/" + encodeURI(mutate(rand, path.slice(1), samples.map((x) => x.path.slice(1))).toWellFormed()).replace(/[?#]/g, (m) => (rand() < 0.5 ? m : encodeURIComponent(m)));
    } else if (roll < 0.2) {
      method = ["PUT", "PATCH", "GET", "POST", "DELETE", "OPTIONS"][Math.floor(rand() * 6)]!;
    }
    if (s.body === undefined && rand() < 0.8) return { method, path };
    const base = s.body ?? {};
    const b = rand();
    if (b < 0.6) return { method, path, body: JSON.stringify(mutateJson(rand, base)) };
    if (b < 0.85) return { method, path, body: mutate(rand, JSON.stringify(base)) };
    return { method, path, body: randomBytes(rand, Math.floor(rand() * 512)) };
  }

  test("every route: documented statuses only, refusals as {error: {code, message}}", async () => {
    const r = await fuzz(
      "http-api",
      generate,
      async (c) => {
        let req: Request;
        try {
          req = request(c);
        } catch {
          return true; // not a request a client can make (e.g. a URL the URL parser refuses)
        }
        const res = await api(req);
        if (!DOCUMENTED.has(res.status)) throw new Error(`status ${res.status}: ${await res.text()}`);
        if (res.status < 400) return false;
        const body = (await res.json()) as { error?: { code?: unknown; message?: unknown } };
        const code = body.error?.code;
        const message = body.error?.message;
        if (typeof code !== "string" || !STABLE_CODE.test(code)) throw new Error(`a refusal without a stable code: ${JSON.stringify(body)}`);
        if (typeof message !== "string" || message.trim() === "") throw new Error(`a refusal without a message: ${JSON.stringify(body)}`);
        return true;
      },
      (c) => `${c.method} ${c.path} ${typeof c.body === "string" ? c.body.slice(0, 1500) : c.body ? `bytes ${Buffer.from(c.body).toString("hex").slice(0, 400)}` : ""}`,
    );
    expect(internalErrors).toEqual([]);
    expect(r.rejected).toBeGreaterThan(r.inputs / 3);
    expect(r.rejected).toBeLessThan(r.inputs);
  });
});
