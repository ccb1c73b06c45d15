// The control plane in a real fleet: workers whose Docker does not answer get no runs and say why,
// and take runs again when it does; drain and undrain by metadata tags; the active-runs view; and
// stacks and triggers carrying labels, a VCS agent pool, a commit, a branch and user-provided
// metadata into the run spec a launcher gets.
import "reflect-metadata";
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { silentLogger } from "../../../src/log/logger.ts";
import { ControlPlane } from "../../../src/mothership/control.ts";
import { workerView } from "../../../src/mothership/http/views.ts";
import { PoolService } from "../../../src/mothership/pool-service.ts";
import { buildRunSpec } from "../../../src/mothership/run-spec-builder.ts";
import { StackService } from "../../../src/mothership/stack-service.ts";
import type { Store } from "../../../src/mothership/store/index.ts";
import { encodeMessage, makeMessage, parseMessage, type DownlinkMessage, type MessageBody, type UplinkMessage } from "../../../src/protocol/messages.ts";
import { storeEngines } from "../../support/stores.ts";
import { useTestCa } from "./ca-fixture.ts";

const fixture = useTestCa("control-fleet");

let store: Store;
let control: ControlPlane;
let stacks: StackService;
let sent: Array<{ worker: string; message: DownlinkMessage }>;

async function pool(name: string): Promise<string> {
  const { pool: p } = await new PoolService(store, fixture.ca, { brokerEndpoint: "mqtts://127.0.0.1:8883", namespace: "spacelift", commsUrl: "https://127.0.0.1:8080" }).create({ name, csr: fixture.csrPem });
  return p.id;
}

function from<T extends UplinkMessage["type"]>(poolId: string, worker: string, type: T, body: MessageBody<T>): Promise<void> {
  return control.handleUplink(poolId, worker, new TextEncoder().encode(encodeMessage(makeMessage(type, body))));
}

/** The message a promise is rejected with (undefined when it is not). */
const failure = (p: Promise<unknown>) => p.then(
  () => undefined,
  (err: unknown) => (err instanceof Error ? err.message : String(err)),
);

const DOWN = { ok: false, message: "cannot reach Docker at unix:///run/none.sock (ENOENT); is dockerd running and DOCKER_HOST right?" };
const hello = (p: string, w: string, extra: { metadata?: Record<string, string>; docker?: { ok: boolean; message: string } } = {}) =>
  from(p, w, "hello", { metadata: extra.metadata ?? {}, version: "1", arch: "x86_64", state: "IDLE", run: null, ...(extra.docker ? { docker: extra.docker } : {}) });
const stack = async (p: string, extra: Partial<Parameters<StackService["create"]>[0]> = {}) =>
  (await stacks.create({ name: "infra", pool: p, image: "busybox", environment: [], phases: [{ name: "plan", commands: ["true"] }], ...extra })).id;

for (const engine of storeEngines()) {
  describe(engine.name, () => {
    beforeEach(async () => {
      store = await engine.open();
      sent = [];
      stacks = new StackService(store);
      control = new ControlPlane({
        store,
        logger: silentLogger,
        heartbeatSeconds: 10,
        scheduleTimeoutMs: 60_000,
        outbox: {
          deliver: async (_pool, worker, payload) => {
          const r = parseMessage(payload, "downlink");
          if (r.kind !== "ok") throw new Error("mothership sent an invalid message");
          sent.push({ worker, message: r.message });
          },
        },
      });
    });

    afterEach(async () => {
      await store.close();
    });

    describe("Docker health", () => {
      test("a worker whose Docker does not answer gets no run and says why; the run goes to a healthy worker; it takes runs again when Docker is back", async () => {
        const p = await pool("fleet");
        const s = await stack(p);
        await hello(p, "SICK", { docker: DOWN });
        const r1 = await control.triggerRun(s, "TRACKED");
        expect((await store.runs.get(r1.id))?.state).toBe("QUEUED");
        expect(workerView((await store.workers.get("SICK"))!)).toMatchObject({
          status: "IDLE",
          docker: DOWN,
          problem: `docker unreachable: ${DOWN.message}`,
        });
        await hello(p, "WELL");
        expect(await store.runs.get(r1.id)).toMatchObject({ state: "SCHEDULED", worker: "WELL" });
        expect(workerView((await store.workers.get("WELL"))!)).toMatchObject({ docker: { ok: true, message: "" }, problem: null });

        const r2 = await control.triggerRun(s, "TRACKED");
        expect((await store.runs.get(r2.id))?.state).toBe("QUEUED");
        // A heartbeat that still says "down" changes nothing; the one that says "ok" dispatches at once.
        await from(p, "SICK", "heartbeat", { state: "IDLE", run: null, docker: DOWN });
        expect((await store.runs.get(r2.id))?.state).toBe("QUEUED");
        await from(p, "SICK", "heartbeat", { state: "IDLE", run: null, docker: { ok: true, message: "" } });
        expect(await store.runs.get(r2.id)).toMatchObject({ state: "SCHEDULED", worker: "SICK" });
        expect(workerView((await store.workers.get("SICK"))!).problem).toBeNull();
      });

      test("a launcher that says nothing about Docker (an older one) is taken as healthy, also after it was reported down", async () => {
        const p = await pool("old");
        const s = await stack(p);
        await hello(p, "W", { docker: DOWN });
        expect((await store.workers.get("W"))?.docker_ok).toBe(false);
        await from(p, "W", "heartbeat", { state: "IDLE", run: null });
        expect((await store.workers.get("W"))?.docker_ok).toBe(false);
        await hello(p, "W");
        expect(await store.workers.get("W")).toMatchObject({ docker_ok: true, docker_message: "" });
        const r = await control.triggerRun(s, "TASK");
        expect(await store.runs.get(r.id)).toMatchObject({ state: "SCHEDULED", worker: "W" });
      });

      test("a docker-unavailable rejection puts the run back in the queue for another worker, never fails it", async () => {
        const p = await pool("race");
        const s = await stack(p);
        await hello(p, "A");
        const r = await control.triggerRun(s, "TRACKED");
        expect((await store.runs.get(r.id))?.worker).toBe("A");
        // What a launcher sends when Docker went away between two heartbeats: the report, then the refusal.
        await from(p, "A", "heartbeat", { state: "IDLE", run: null, docker: DOWN });
        await from(p, "A", "run_rejected", { run: r.id, reason: "docker-unavailable", messages: [`Docker does not answer: ${DOWN.message}`] });
        expect(await store.runs.get(r.id)).toMatchObject({ state: "QUEUED", worker: null, reason: null });
        await hello(p, "B");
        expect(await store.runs.get(r.id)).toMatchObject({ state: "SCHEDULED", worker: "B" });
      });

      test("a Docker message longer than the protocol allows is refused as an invalid message and changes nothing", async () => {
        const p = await pool("long");
        await hello(p, "W");
        await from(p, "W", "heartbeat", { state: "IDLE", run: null, docker: { ok: false, message: "x".repeat(1025) } });
        expect((await store.workers.get("W"))?.docker_ok).toBe(true);
        expect(sent.some((m) => m.worker === "W" && m.message.type === "error" && m.message.code === "invalid-message")).toBe(true);
      });
    });

    describe("drain by tag", () => {
      test("drains exactly the live workers of the pool holding every tag; undrain lifts it; other pools and gone workers are untouched", async () => {
        const p = await pool("tags");
        const other = await pool("other");
        await hello(p, "A", { metadata: { zone: "a", tier: "spot" } });
        await hello(p, "B", { metadata: { zone: "a", tier: "ondemand" } });
        await hello(p, "C", { metadata: { zone: "b", tier: "spot" } });
        await hello(p, "GONE", { metadata: { zone: "a", tier: "spot" } });
        await from(p, "GONE", "gone", { crashed: false });
        await hello(other, "X", { metadata: { zone: "a", tier: "spot" } });

        const drained = await control.setDrainedByTags(p, { zone: "a", tier: "spot" }, true);
        expect(drained.map((w) => w.id)).toEqual(["A"]);
        const status = async () => Object.fromEntries(await Promise.all(["A", "B", "C", "X"].map(async (id) => [id, (await store.workers.get(id))!.drained])));
        expect(await status()).toEqual({ A: true, B: false, C: false, X: false });
        expect((await control.setDrainedByTags(p, { zone: "a" }, true)).map((w) => w.id).sort()).toEqual(["A", "B"]);
        expect(await status()).toEqual({ A: true, B: true, C: false, X: false });
        // Each drained worker is told so; nobody else is.
        expect(sent.filter((m) => m.message.type === "drain").map((m) => m.worker).sort()).toEqual(["A", "A", "B"]);
        expect(workerView((await store.workers.get("B"))!).problem).toBe("drained by an operator");

        expect((await control.setDrainedByTags(p, { tier: "spot" }, false)).map((w) => w.id)).toEqual(["A", "C"]);
        expect(await status()).toEqual({ A: false, B: true, C: false, X: false });
        expect(await control.setDrainedByTags(p, { zone: "nowhere" }, true)).toEqual([]);
        expect(await failure(control.setDrainedByTags("NOPE", {}, true))).toContain("pool NOPE does not exist");
      });
    });

    describe("active runs", () => {
      test("runs in progress first, then the queue in order; ended runs are left out", async () => {
        const p = await pool("active");
        const s = await stack(p);
        const q = [];
        for (let i = 0; i < 4; i++) q.push(await control.triggerRun(s, "TRACKED"));
        await hello(p, "W");
        // q[0] went to W; finish it, which schedules q[1]; q[2] and q[3] wait.
        await from(p, "W", "run_accepted", { run: q[0]!.id });
        await from(p, "W", "run_finished", { run: q[0]!.id, exit_code: 0, reason: "ok", last_seq: -1 });
        expect((await store.runs.get(q[1]!.id))?.state).toBe("SCHEDULED");
        const queuedLater = await control.triggerRun(s, "PROPOSED");
        expect((await store.runs.list({ pool: p, active: true })).map((r) => [r.id, r.state])).toEqual([
          [q[1]!.id, "SCHEDULED"],
          [q[2]!.id, "QUEUED"],
          [q[3]!.id, "QUEUED"],
          [queuedLater.id, "QUEUED"],
        ]);
      });
    });

    describe("run specs carry what the stack and the trigger say", () => {
      test("labels, VCS agent pool, commit, branch and user-provided metadata reach the spec", async () => {
        const p = await pool("spec");
        const s = await stack(p, { repository: "https://gitlab.corp/org/repo.git", branch: "main", labels: ["team:infra", "prod"], vcs_pool: "corp-gitlab" });
        const run = await control.triggerRun(s, "DESTROY", { commit_sha: "0123abcd", branch: "release", user_provided_metadata: ['{"ticket":"OPS-1"}', "a.b.c"] });
        const spec = buildRunSpec((await store.stacks.get(s))!, (await store.runs.get(run.id))!);
        expect(spec).toMatchObject({
          type: "DESTROY",
          stack: { labels: ["team:infra", "prod"], branch: "release", repository: "https://gitlab.corp/org/repo.git" },
          commit: { hash: "0123abcd", branch: "release" },
          source: { repository_url: "https://gitlab.corp/org/repo.git", branch: "release", commit: "0123abcd", vcs_agent_pool: "corp-gitlab" },
          user_provided_metadata: ['{"ticket":"OPS-1"}', "a.b.c"],
        });
        // Without a trigger's branch the stack's is used; without metadata the spec carries none.
        const plain = buildRunSpec((await store.stacks.get(s))!, (await store.runs.get((await control.triggerRun(s, "TRACKED")).id))!);
        expect(plain.commit).toMatchObject({ hash: "", branch: "main" });
        expect(plain.source).toEqual({ repository_url: "https://gitlab.corp/org/repo.git", branch: "main", vcs_agent_pool: "corp-gitlab" });
        expect(plain.user_provided_metadata).toBeUndefined();
      });

      test("a VCS agent pool without a repository, a label given twice and a malformed commit are refused, naming what is wrong", async () => {
        const p = await pool("bad");
        expect(await failure(stack(p, { vcs_pool: "corp" }))).toContain("give the stack a repository");
        expect(await failure(stack(p, { labels: ["a", "a"] }))).toContain('"a" is given twice');
        const s = await stack(p);
        expect(await failure(control.triggerRun(s, "TRACKED", { commit_sha: "not-a-sha" }))).toContain("commit must be a commit hash (4 to 64 hex digits)");
        expect(await store.runs.list({ stack: s })).toEqual([]);
      });
    });
  });
}
