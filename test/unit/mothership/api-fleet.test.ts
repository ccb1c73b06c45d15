/**
 * The admin API's fleet routes in-process (a real store, CA, pool service and control plane behind
 * `createApi`): drain and undrain by tag, stacks with labels and a VCS agent pool, triggers with a
 * commit, branch and user-provided metadata, `GET /runs?active=true`, and the 400s bad values get,
 * each naming the field and what a good value looks like. Against each store engine (test/support/stores.ts).
 */
import "reflect-metadata";
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { silentLogger } from "../../../src/log/logger.ts";
import { ControlPlane } from "../../../src/mothership/control.ts";
import { createApi } from "../../../src/mothership/http/api.ts";
import { PoolService } from "../../../src/mothership/pool-service.ts";
import type { Store } from "../../../src/mothership/store/index.ts";
import { encodeMessage, makeMessage } from "../../../src/protocol/messages.ts";
import { storeEngines } from "../../support/stores.ts";
import { useTestCa } from "./ca-fixture.ts";

const TOKEN = "msat_test-admin-token";
const fixture = useTestCa("api-fleet");

for (const engine of storeEngines()) {
  describe(engine.name, () => {
    let store: Store;
    let control: ControlPlane;
    let api: (req: Request) => Promise<Response>;

    beforeEach(async () => {
      store = await engine.open();
      control = new ControlPlane({ store, logger: silentLogger, heartbeatSeconds: 10, scheduleTimeoutMs: 60_000, outbox: { deliver: async () => {} } });
      api = createApi({
        store,
        control,
        pools: new PoolService(store, fixture.ca, { brokerEndpoint: "mqtts://127.0.0.1:8883", namespace: "spacelift", commsUrl: "https://127.0.0.1:8080" }),
        adminToken: TOKEN,
        disconnectPool: () => {},
        logger: silentLogger,
      });
    });
    afterEach(async () => {
      await store.close();
    });

    async function call(method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> & { error?: { code: string; message: string } } }> {
      const res = await api(new Request(`https://127.0.0.1:8080/api/v1${path}`, { method, headers: { authorization: `Bearer ${TOKEN}` }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) }));
      return { status: res.status, json: (await res.json()) as Record<string, unknown> & { error?: { code: string; message: string } } };
    }

    async function pool(): Promise<string> {
      const p = await call("POST", "/pools", { name: "fleet", csr: fixture.csrPem });
      return (p.json.pool as { id: string }).id;
    }

    const hello = (p: string, w: string, metadata: Record<string, string>) =>
      control.handleUplink(p, w, new TextEncoder().encode(encodeMessage(makeMessage("hello", { metadata, version: "1", arch: "x86_64", state: "IDLE", run: null }))));

    const stackBody = (p: string, extra: Record<string, unknown> = {}) => ({ name: "infra", pool: p, image: "busybox", phases: [{ name: "plan", commands: ["true"] }], ...extra });

    describe("drain by tag", () => {
      test("POST /pools/:id/drain {tags} drains the matching live workers and answers them; undrain lifts it", async () => {
        const p = await pool();
        await hello(p, "A", { zone: "a" });
        await hello(p, "B", { zone: "b" });
        const r = await call("POST", `/pools/${p}/drain`, { tags: { zone: "a" } });
        expect(r.status).toBe(200);
        expect(r.json).toEqual({ pool: p, workers: [expect.objectContaining({ id: "A", status: "DRAINED", problem: "drained by an operator" })] });
        expect(((await call("GET", `/workers?pool=${p}`)).json as unknown as Array<{ id: string; status: string }>).map((w) => [w.id, w.status])).toEqual([["A", "DRAINED"], ["B", "IDLE"]]);
        expect((await call("POST", `/pools/${p}/undrain`, { tags: { zone: "a" } })).json).toEqual({ pool: p, workers: [expect.objectContaining({ id: "A", status: "IDLE", problem: null })] });
      });

      test("an unknown pool is a 404; tags that are not strings are a 400 naming them", async () => {
        expect((await call("POST", "/pools/NOPE/drain", { tags: {} })).status).toBe(404);
        const p = await pool();
        const bad = await call("POST", `/pools/${p}/drain`, { tags: { zone: 1 } });
        expect(bad.status).toBe(400);
        expect(bad.json.error?.message).toContain("tags.zone");
      });
    });

    describe("stacks and triggers", () => {
      test("labels and the VCS agent pool are kept and shown; commit, branch and metadata are on the run", async () => {
        const p = await pool();
        const s = await call("POST", "/stacks", stackBody(p, { repository: "https://git.corp/org/repo.git", labels: ["prod", "team:infra"], vcs_pool: "corp" }));
        expect(s.status).toBe(201);
        expect(s.json).toMatchObject({ labels: ["prod", "team:infra"], vcs_pool: "corp" });
        const run = await call("POST", "/runs", { stack: s.json.id, type: "DESTROY", commit: "abcdef12", branch: "release/1", user_provided_metadata: ['{"ticket":"OPS-1"}'] });
        expect(run.status).toBe(201);
        expect(run.json).toMatchObject({ type: "DESTROY", commit: "abcdef12", branch: "release/1", user_provided_metadata: ['{"ticket":"OPS-1"}'] });
      });

      test.each([
        ["a malformed commit", { commit: "HEAD~1" }, "commit must be a commit hash"],
        ["a branch with a space", { branch: "my branch" }, "branch must be a branch name without spaces"],
        ["too many metadata entries", { user_provided_metadata: Array.from({ length: 17 }, () => "x") }, "at most 16 user_provided_metadata entries"],
        ["a metadata entry over 64 KiB", { user_provided_metadata: ["x".repeat(64 * 1024 + 1)] }, "at most 64 KiB"],
        ["an unknown run type", { type: "APPLY" }, "must be one of PROPOSED, TRACKED, TASK, DESTROY"],
      ])("a trigger with %s is a 400 saying what is wrong; nothing is queued", async (_what, extra, message) => {
        const p = await pool();
        const s = await call("POST", "/stacks", stackBody(p));
        const r = await call("POST", "/runs", { stack: s.json.id, ...extra });
        expect(r.status).toBe(400);
        expect(r.json.error?.message).toContain(message);
        expect(await store.runs.list()).toEqual([]);
      });

      test.each([
        ["a VCS agent pool without a repository", { vcs_pool: "corp" }, "give the stack a repository"],
        ["an empty label", { labels: [""] }, "a label must not be empty"],
        ["a label with a control character", { labels: ["a\u001bb"] }, "a label must be printable text"],
        ["a label given twice", { labels: ["a", "a"] }, '"a" is given twice'],
      ])("a stack with %s is a 400 saying what is wrong", async (_what, extra, message) => {
        const r = await call("POST", "/stacks", stackBody(await pool(), extra));
        expect(r.status).toBe(400);
        expect(r.json.error?.message).toContain(message);
      });
    });

    describe("active runs", () => {
      test("GET /runs?active=true lists the runs that have not ended; a bad value is a 400", async () => {
        const p = await pool();
        const s = (await call("POST", "/stacks", stackBody(p))).json.id as string;
        const runs = [await control.triggerRun(s, "TRACKED"), await control.triggerRun(s, "TRACKED")];
        await control.cancelRun(runs[0]!.id);
        expect(((await call("GET", `/runs?pool=${p}&active=true`)).json as unknown as Array<{ id: string }>).map((r) => r.id)).toEqual([runs[1]!.id]);
        const bad = await call("GET", "/runs?active=yes");
        expect(bad.status).toBe(400);
        expect(bad.json.error?.message).toContain("must be true or false");
      });
    });
  });
}
