/**
 * The web UI's server side in-process: sessions (expiry, the bound on their number), sign-in, the
 * cookie's attributes, CSRF on the JSON API, the event streams (bounded per session, closed by
 * sign-out, a run's log resumed after Last-Event-ID) and the run phase times they show. The
 * browser's side is test/e2e/web-ui.test.ts. The HTTP side runs against each store engine (test/support/stores.ts).
 */
import "reflect-metadata";
import { afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "../../../src/log/logger.ts";
import { ControlPlane } from "../../../src/mothership/control.ts";
import { createApi } from "../../../src/mothership/http/api.ts";
import { PoolService } from "../../../src/mothership/pool-service.ts";
import type { Store } from "../../../src/mothership/store/index.ts";
import { createWebUi, type WebUi } from "../../../src/mothership/web/handler.ts";
import { WebSessions } from "../../../src/mothership/web/sessions.ts";
import { loadOrCreateCa, type CertificateAuthority } from "../../../src/pki/ca.ts";
import { storeEngines } from "../../support/stores.ts";
import { makeKeyAndCsr } from "../protocol/fixtures.ts";

const TOKEN = "msat_web-test-token";
const BASE = "https://127.0.0.1:8080";
const limits = { maxSessions: 3, idleMs: 1_000, lifetimeMs: 5_000, maxStreamsPerSession: 2 };
const req = (path: string, init: RequestInit = {}) => new Request(`${BASE}${path}`, init);

describe("sessions", () => {
  let now = 0;
  const sessions = () => new WebSessions(TOKEN, limits, () => now);
  const withCookie = (id: string) => req("/", { headers: { cookie: `a=b; __Host-mothership_session=${id}` } });
  beforeEach(() => (now = 1_000_000));

  test("only the admin token signs in; a session ends after its idle time or its lifetime, and its streams with it", () => {
    const s = sessions();
    expect(s.signIn("msat_web-test-toke")).toBeNull();
    expect(s.signIn(TOKEN + "x")).toBeNull();
    const a = s.signIn(TOKEN)!;
    expect(a.id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(s.fromRequest(withCookie(a.id))).toBe(a.session);
    const other = a.id.endsWith("A") ? "B" : "A";
    expect(s.fromRequest(withCookie(a.id.slice(0, -1) + other))).toBeNull();
    let closed = 0;
    a.session.streams.add(() => closed++);
    now += 999;
    expect(s.fromRequest(withCookie(a.id))).toBe(a.session);
    now += 999;
    expect(s.alive(a.session)).toBe(true);
    now += 1;
    expect(s.alive(a.session)).toBe(false);
    expect(closed).toBe(1);
    expect(s.fromRequest(withCookie(a.id))).toBeNull();

    const b = s.signIn(TOKEN)!;
    for (let i = 0; i < 5; i++) {
      now += 900;
      expect(s.fromRequest(withCookie(b.id))).not.toBeNull();
    }
    now += 900;
    expect(s.fromRequest(withCookie(b.id))).toBeNull();
  });

  test("past the maximum, signing in ends the least recently used session; CSRF tokens differ per session", () => {
    const s = sessions();
    const made = [s.signIn(TOKEN)!, s.signIn(TOKEN)!, s.signIn(TOKEN)!];
    now += 10;
    s.fromRequest(withCookie(made[0]!.id));
    const fourth = s.signIn(TOKEN)!;
    expect(s.size).toBe(3);
    expect(s.fromRequest(withCookie(made[1]!.id))).toBeNull();
    expect(s.fromRequest(withCookie(made[0]!.id))).not.toBeNull();
    expect(new Set([...made, fourth].map((m) => m.session.csrf)).size).toBe(4);
    const csrf = (v: string) => req("/", { headers: { "x-csrf-token": v } });
    expect(s.csrfMatches(fourth.session, csrf(fourth.session.csrf))).toBe(true);
    expect(s.csrfMatches(fourth.session, csrf(made[0]!.session.csrf))).toBe(false);
    expect(s.csrfMatches(fourth.session, req("/"))).toBe(false);
  });
});

for (const engine of storeEngines()) {
  describe(`the UI's HTTP side behind the API (${engine.name})`, () => {
    let ca: CertificateAuthority;
    let csrPem = "";
    let store: Store;
    let web: WebUi;
    let api: (r: Request) => Promise<Response>;
    beforeAll(async () => {
      ca = await loadOrCreateCa(join(await mkdtemp(join(tmpdir(), "web-ui-")), "ca"));
      csrPem = (await makeKeyAndCsr("p256")).csrPem;
    });
    beforeEach(async () => {
      store = await engine.open();
      const logger = createLogger({ level: "error", pretty: false, write: () => {} });
      const control = new ControlPlane({ store, logger, heartbeatSeconds: 10, scheduleTimeoutMs: 60_000, outbox: { deliver: async () => {} } });
      web = createWebUi({ store, adminToken: TOKEN, logger, sessionLimits: { ...limits, idleMs: 60_000 }, eventLimits: { tickMs: 20, heartbeatMs: 10_000, maxStreamMs: 60_000, maxLogBytesPerTick: 1024 } });
      const pools = new PoolService(store, ca, { brokerEndpoint: "mqtts://127.0.0.1:8883", namespace: "spacelift", commsUrl: BASE });
      api = createApi({ store, control, pools, adminToken: TOKEN, disconnectPool: () => {}, web, logger });
    });
    afterEach(async () => {
      web.close();
      await store.close();
    });

    const signIn = async () => {
      const res = await api(req("/ui/session", { method: "POST", headers: { "content-type": "application/json", origin: BASE, host: "127.0.0.1:8080" }, body: JSON.stringify({ token: TOKEN }) }));
      expect(res.status).toBe(200);
      const cookie = res.headers.get("set-cookie") ?? "";
      return { setCookie: cookie, cookie: cookie.split(";")[0]!, csrf: ((await res.json()) as { csrf: string }).csrf };
    };
    const events = (cookie: string, topic: string, headers: Record<string, string> = {}) => api(req(`/ui/events?topic=${encodeURIComponent(topic)}`, { headers: { cookie, ...headers } }));
    async function readUntil(res: Response, want: RegExp): Promise<string> {
      const reader = res.body!.getReader();
      let text = "";
      const deadline = Date.now() + 5_000;
      while (!want.test(text)) {
        if (Date.now() > deadline) throw new Error(`no ${String(want)} in ${text}`);
        const { done, value } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
      reader.releaseLock();
      return text;
    }

    test("the page carries a strict Content-Security-Policy; sign-in refuses a wrong token, a foreign origin and a form post", async () => {
      const page = await api(req("/"));
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('<script type="module" src="/ui/app.js">');
      expect(page.headers.get("content-security-policy")).toContain("script-src 'self'");
      expect(page.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
      const js = await api(req("/ui/app.js"));
      expect(js.headers.get("content-type")).toStartWith("text/javascript");
      expect((await api(req("/ui/app.js", { headers: { "if-none-match": js.headers.get("etag")! } }))).status).toBe(304);

      const post = (headers: Record<string, string>, body: string) => api(req("/ui/session", { method: "POST", headers, body }));
      expect((await post({ "content-type": "application/json" }, JSON.stringify({ token: "msat_wrong" }))).status).toBe(401);
      expect((await post({ "content-type": "application/x-www-form-urlencoded" }, `token=${TOKEN}`)).status).toBe(400);
      expect((await post({ "content-type": "application/json", origin: "https://evil.example", host: "127.0.0.1:8080" }, JSON.stringify({ token: TOKEN }))).status).toBe(403);
      // Behind a TLS-terminating proxy the page's origin is the proxy's https URL.
      expect((await post({ "content-type": "application/json", origin: "https://ops.example", "x-forwarded-host": "ops.example" }, JSON.stringify({ token: TOKEN }))).status).toBe(200);
      expect((await post({ "content-type": "application/json" }, JSON.stringify({ token: "x".repeat(5000) }))).status).toBe(413);
      const { setCookie } = await signIn();
      expect(setCookie).toMatch(/^__Host-mothership_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; Secure; SameSite=Strict; Max-Age=5$/);
    });

    test("the API takes the session cookie for reading and, with the session's CSRF token only, for changes", async () => {
      const { cookie, csrf } = await signIn();
      expect((await api(req("/api/v1/pools"))).status).toBe(401);
      expect((await api(req("/api/v1/pools", { headers: { cookie } }))).status).toBe(200);
      const create = (headers: Record<string, string>) =>
        api(req("/api/v1/pools", { method: "POST", headers: { cookie, "content-type": "application/json", ...headers }, body: JSON.stringify({ name: "p", csr: csrPem }) }));
      const refused = await create({});
      expect(refused.status).toBe(403);
      expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("csrf-token-invalid");
      expect((await create({ "x-csrf-token": csrf.replace(/.$/, (c) => (c === "A" ? "B" : "A")) })).status).toBe(403);
      expect(await store.pools.list()).toHaveLength(0);
      expect((await create({ "x-csrf-token": csrf })).status).toBe(201);
      expect(await store.pools.list()).toHaveLength(1);

      expect((await api(req("/ui/sign-out", { method: "POST", headers: { cookie } }))).status).toBe(403);
      const out = await api(req("/ui/sign-out", { method: "POST", headers: { cookie, "x-csrf-token": csrf } }));
      expect(out.headers.get("set-cookie")).toContain("Max-Age=0");
      expect((await api(req("/api/v1/pools", { headers: { cookie } }))).status).toBe(401);
    });

    test("event streams: bounded per session, a bad topic refused, all closed by sign-out", async () => {
      const { cookie, csrf } = await signIn();
      expect((await events("", "pools")).status).toBe(401);
      expect((await events(cookie, "pools;drop")).status).toBe(400);
      const one = await events(cookie, "pools");
      const two = await events(cookie, "stacks");
      expect(one.headers.get("content-type")).toStartWith("text/event-stream");
      expect(await readUntil(one, /event: snapshot\ndata: \{"pools":\[\]\}/)).toContain("retry: 2000");
      expect(await readUntil(two, /event: snapshot/)).toContain('"stacks":[]');
      expect((await events(cookie, "pools")).status).toBe(429);
      await api(req("/ui/sign-out", { method: "POST", headers: { cookie, "x-csrf-token": csrf } }));
      for (const res of [one, two]) {
        const reader = res.body!.getReader();
        let done = false;
        while (!done) done = (await reader.read()).done;
      }
    });

    test("a run's stream sends its log as stored, resumes after Last-Event-ID, and its phases with their times", async () => {
      await store.pools.insert({ id: "P", name: "p", description: "", certificate: "", certificate_serial: "1", key_type: "ec", created_at: "t" });
      await store.stacks.insert({ id: "S", name: "s", pool: "P", image: "img", environment: [], phases: [{ name: "plan", commands: ["x"] }], repository: null, branch: null, created_at: "t" });
      const run = await store.runs.insert({ id: "R", stack: "S", pool: "P", type: "TRACKED", created_at: "2026-01-01T00:00:00.000Z" });
      const status = { state: "PREPARING" as const, reason: null, exit_code: null, worker: "W", cancel_requested: false };
      await store.runs.applyStatus((await store.runs.get(run.id))!, status, "2026-01-01T00:00:01.000Z");
      await store.runs.applyStatus((await store.runs.get(run.id))!, { ...status, state: "RUNNING" }, "2026-01-01T00:00:03.000Z", { phase: "plan" });
      for (let seq = 0; seq < 3; seq++) await store.runs.appendLog(run.id, seq, new TextEncoder().encode(`line ${seq} *****\n`));
      expect(await store.runs.phases(run.id)).toEqual([
        { name: "preparing", started_at: "2026-01-01T00:00:01.000Z", ended_at: "2026-01-01T00:00:03.000Z" },
        { name: "plan", started_at: "2026-01-01T00:00:03.000Z", ended_at: null },
      ]);
      const { cookie } = await signIn();
      const first = await events(cookie, "run:R");
      const all = await readUntil(first, /id: 2\n/);
      expect(all).toContain('"phases":[{"name":"preparing"');
      expect([...all.matchAll(/^id: (\d+)$/gm)].map((m) => m[1])).toEqual(["0", "1", "2"]);
      const data = [...all.matchAll(/"data":"([^"]+)"/g)].map((m) => Buffer.from(m[1]!, "base64").toString()).join("");
      expect(data).toBe("line 0 *****\nline 1 *****\nline 2 *****\n");
      const again = await events(cookie, "run:R", { "last-event-id": "1" });
      const resumed = await readUntil(again, /id: 2\n/);
      expect([...resumed.matchAll(/^id: (\d+)$/gm)].map((m) => m[1])).toEqual(["2"]);
      await again.body!.cancel();
      // Written later: it arrives on the open stream, with the new state.
      await store.runs.applyStatus((await store.runs.get(run.id))!, { ...status, state: "FINISHED", reason: "ok", exit_code: 0 }, "2026-01-01T00:00:09.000Z", { last_seq: 3 });
      await store.runs.appendLog(run.id, 3, new TextEncoder().encode("end\n"));
      const text = await readUntil(first, /"log_complete":true[\s\S]*id: 3\n|id: 3\n[\s\S]*"log_complete":true/);
      expect(text).toContain('"state":"FINISHED"');
      expect((await store.runs.phases(run.id))[1]).toEqual({ name: "plan", started_at: "2026-01-01T00:00:03.000Z", ended_at: "2026-01-01T00:00:09.000Z" });
    });
  });
}
