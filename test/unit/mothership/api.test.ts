/**
 * The admin API's route table in-process: a real store, CA, pool service and control plane behind
 * `createApi`, asked with real Requests. What operators and the CLI rely on (paths, statuses,
 * shapes) and what bad input gets: 400s naming the parameter, 404 vs 405, 413 before parsing, and a
 * 500 that says nothing about the inside. Against each store engine (test/support/stores.ts).
 */
import "reflect-metadata";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "../../../src/log/logger.ts";
import { ControlPlane } from "../../../src/mothership/control.ts";
import { createApi } from "../../../src/mothership/http/api.ts";
import { MAX_BODY_BYTES } from "../../../src/mothership/http/router.ts";
import { PoolService } from "../../../src/mothership/pool-service.ts";
import type { Store } from "../../../src/mothership/store/index.ts";
import { loadOrCreateCa, type CertificateAuthority } from "../../../src/pki/ca.ts";
import { storeEngines } from "../../support/stores.ts";
import { makeKeyAndCsr } from "../protocol/fixtures.ts";

const TOKEN = "msat_test-admin-token";
let dir = "";
let ca: CertificateAuthority;
let csrPem = "";
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "api-"));
  ca = await loadOrCreateCa(join(dir, "ca"));
  csrPem = (await makeKeyAndCsr("p256")).csrPem;
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

for (const engine of storeEngines()) {
  describe(engine.name, () => {
    let store: Store;
    let api: (req: Request) => Promise<Response>;
    let records: Array<Record<string, unknown>>;
    let disconnected: string[];

    beforeEach(async () => {
      store = await engine.open();
      records = [];
      disconnected = [];
      const logger = createLogger({ level: "debug", pretty: false, write: (line) => records.push(JSON.parse(line) as Record<string, unknown>) });
      const control = new ControlPlane({ store, logger, heartbeatSeconds: 10, scheduleTimeoutMs: 60_000, outbox: { deliver: async () => {} } });
      api = createApi({
        store,
        control,
        pools: new PoolService(store, ca, { brokerEndpoint: "mqtts://127.0.0.1:8883", namespace: "spacelift", commsUrl: "https://127.0.0.1:8080" }),
        adminToken: TOKEN,
        disconnectPool: (p) => void disconnected.push(p),
        logger,
      });
    });
    afterEach(async () => {
      await store.close();
    });

    async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: Record<string, unknown>; headers: Headers }> {
      const init: RequestInit = { method, headers: { authorization: `Bearer ${TOKEN}`, ...headers } };
      if (body !== undefined) init.body = typeof body === "string" || body instanceof ReadableStream ? body : JSON.stringify(body);
      const res = await api(new Request(`https://127.0.0.1:8080/api/v1${path}`, init));
      return { status: res.status, json: (await res.json()) as Record<string, unknown>, headers: res.headers };
    }

    async function poolAndStack(): Promise<{ pool: string; stack: string }> {
      const p = await call("POST", "/pools", { name: "builders", csr: csrPem });
      expect(p.status).toBe(201);
      const pool = (p.json.pool as { id: string }).id;
      const s = await call("POST", "/stacks", { name: "infra", pool, image: "busybox", phases: [{ name: "plan", commands: ["true"] }] });
      expect(s.status).toBe(201);
      return { pool, stack: s.json.id as string };
    }

    describe("the route table keeps paths, statuses and shapes", () => {
      test("pools, stacks, runs and logs through their routes; delete rules answer 409 naming what is in the way", async () => {
        const { pool, stack } = await poolAndStack();
        expect((await call("GET", "/pools")).json as unknown).toEqual([expect.objectContaining({ id: pool, name: "builders", workers: { total: 0, idle: 0, busy: 0, drained: 0, docker_unreachable: 0 } })]);
        expect((await call("GET", `/pools/${pool}`)).json).toMatchObject({ id: pool, stacks: [stack] });
        const del = await call("DELETE", `/pools/${pool}`);
        expect(del.status).toBe(409);
        expect(del.json).toEqual({ error: { code: "conflict", message: expect.stringContaining(stack) } });
        const run = await call("POST", "/runs", { stack });
        expect(run.status).toBe(201);
        expect(run.json).toMatchObject({ stack, type: "TRACKED", state: "QUEUED" });
        const runId = run.json.id as string;
        expect((await call("DELETE", `/stacks/${stack}`)).json).toEqual({ error: { code: "conflict", message: expect.stringContaining(runId) } });
        expect((await call("POST", `/runs/${runId}/cancel`)).json).toMatchObject({ state: "CANCELED", reason: "cancelled" });
        expect((await call("GET", `/runs?stack=${stack}&state=CANCELED`)).json as unknown).toEqual([expect.objectContaining({ id: runId })]);
        expect((await call("GET", `/runs/${runId}/logs`)).json).toEqual({ run: runId, state: "CANCELED", chunks: [], next: -1, done: true, last_seq: null });
        expect(await call("DELETE", `/stacks/${stack}`)).toMatchObject({ status: 200, json: { deleted: stack } });
        expect(await call("DELETE", `/pools/${pool}/`)).toMatchObject({ status: 200, json: { deleted: pool } });
        expect(disconnected).toEqual([pool]);
        expect((await call("GET", `/pools/${pool}`)).json).toEqual({ error: { code: "not-found", message: `pool ${pool} does not exist` } });
      });

      test("log pages: after and limit page through the chunks in order", async () => {
        const { stack } = await poolAndStack();
        const runId = (await call("POST", "/runs", { stack })).json.id as string;
        for (let seq = 0; seq < 5; seq++) await store.runs.appendLog(runId, seq, new TextEncoder().encode(`l${seq}`));
        const page = await call("GET", `/runs/${runId}/logs?after=1&limit=2`);
        expect(page.json).toMatchObject({ next: 3, done: false, chunks: [{ seq: 2, data: btoa("l2") }, { seq: 3, data: btoa("l3") }] });
        expect(((await call("GET", `/runs/${runId}/logs`)).json.chunks as unknown[]).length).toBe(5);
      });

      test("an unknown path is 404, a known path with another method 405 with Allow; no token is 401", async () => {
        expect(await call("GET", "/frobs")).toMatchObject({ status: 404, json: { error: { code: "not-found" } } });
        expect(await call("GET", "/pools/x/y/z")).toMatchObject({ status: 404 });
        const wrong = await call("PUT", "/pools");
        expect(wrong).toMatchObject({ status: 405, json: { error: { code: "method-not-allowed", message: "PUT is not allowed on /api/v1/pools; it takes GET, POST" } } });
        expect(wrong.headers.get("allow")).toBe("GET, POST");
        expect((await call("GET", "/runs/R1/cancel")).status).toBe(405);
        const anon = await api(new Request("https://127.0.0.1:8080/api/v1/pools"));
        expect(anon.status).toBe(401);
      });
    });

    describe("query parameters are checked and named", () => {
      const cases: Array<[string, string, string]> = [
        ["limit=-1", "limit", "from 1 to 1000"],
        ["limit=1e309", "limit", "from 1 to 1000"],
        ["limit=0.5", "limit", "from 1 to 1000"],
        ["limit=0", "limit", "from 1 to 1000"],
        ["limit=1001", "limit", "from 1 to 1000"],
        ["after=abc", "after", "from -1"],
        ["after=-2", "after", "from -1"],
        ["after=99999999999999999", "after", "from -1"],
      ];
      for (const [query, name, hint] of cases) {
        test(`GET /runs/:id/logs?${query} is a 400 naming ${name}`, async () => {
          const { stack } = await poolAndStack();
          const runId = (await call("POST", "/runs", { stack })).json.id as string;
          const r = await call("GET", `/runs/${runId}/logs?${query}`);
          expect(r.status).toBe(400);
          const error = r.json.error as { code: string; message: string };
          expect(error.code).toBe("invalid-request");
          expect(error.message).toStartWith(`query parameter ${name}: must be a whole number`);
          expect(error.message).toContain(hint);
          expect(error.message).toContain(JSON.stringify(query.split("=")[1]));
        });
      }

      test("an unknown run state and a malformed id filter are 400s listing good values", async () => {
        const r = await call("GET", "/runs?state=DONE");
        expect(r).toMatchObject({ status: 400, json: { error: { code: "invalid-request" } } });
        expect((r.json.error as { message: string }).message).toBe('query parameter state: must be one of QUEUED, SCHEDULED, PREPARING, RUNNING, FINISHED, FAILED, CANCELED, not "DONE"');
        expect((await call("GET", "/workers?pool=a%20b")).status).toBe(400);
        expect((await call("GET", "/stacks?pool=")).status).toBe(400);
      });
    });

    describe("bodies", () => {
      test("a declared Content-Length over the limit is 413 before anything is read", async () => {
        const r = await call("POST", "/stacks", "{}", { "content-length": String(MAX_BODY_BYTES + 1) });
        expect(r).toMatchObject({ status: 413, json: { error: { code: "body-too-large", message: expect.stringContaining(`larger than ${MAX_BODY_BYTES} bytes`) } } });
      });

      test("a streamed body without Content-Length is cut off at the limit with 413", async () => {
        let pulled = 0;
        const chunk = new Uint8Array(64 * 1024).fill(0x20);
        const stream = new ReadableStream<Uint8Array>({
          pull(c) {
            pulled += chunk.length;
            if (pulled > 64 * 1024 * 1024) c.close();
            else c.enqueue(chunk);
          },
        });
        const r = await call("POST", "/pools", stream);
        expect(r.status).toBe(413);
        // It stopped reading soon after the limit, not at the end of the 64 MiB stream.
        expect(pulled).toBeLessThan(MAX_BODY_BYTES + 1024 * 1024);
      });

      test("bad JSON and bad fields are 400s naming the field", async () => {
        expect((await call("POST", "/pools", "{nope")).json).toEqual({ error: { code: "invalid-request", message: "request body is not JSON" } });
        const r = await call("POST", "/stacks", { name: "s", pool: "P", image: "busybox", phases: [] });
        expect(r.json).toEqual({ error: { code: "invalid-request", message: "phases: a stack needs at least one phase" } });
      });
    });

    test("an unexpected error is a 500 with no internals; the details go to the server log", async () => {
      const { stack } = await poolAndStack();
      const runId = (await call("POST", "/runs", { stack })).json.id as string;
      await store.sql.run("DROP TABLE logs");
      const r = await call("GET", `/runs/${runId}/logs`);
      expect(r).toMatchObject({ status: 500, json: { error: { code: "internal", message: "internal error" } } });
      expect(JSON.stringify(r.json)).not.toContain("logs");
      const logged = records.find((x) => x.msg === "request failed");
      expect(logged).toMatchObject({ level: "error", path: `/api/v1/runs/${runId}/logs` });
      expect(JSON.stringify(logged)).toContain(engine.name === "sqlite" ? "no such table" : "does not exist");
    });
  });
}
