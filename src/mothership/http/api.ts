/**
 * The HTTP API (JSON over Bun.serve), everything under /api/v1 and behind the admin bearer token
 * except /api/v1/health. The handler is a plain function so tests can call it in-process.
 */
import { timingSafeEqual } from "node:crypto";
import * as v from "valibot";
import { SpaceliftError, errorMessage } from "../../errors.ts";
import type { Logger } from "../../log/logger.ts";
import { RUN_STATES, RUN_TYPES, isTerminalRunState } from "../../protocol/states.ts";
import { isCommsRequest } from "../comms-poll.ts";
import type { ControlPlane } from "../control.ts";
import type { PoolService } from "../pool-service.ts";
import { validateStack } from "../run-spec-builder.ts";
import type { Stack, Store } from "../store/index.ts";
import { ulid } from "../ulid.ts";
import { poolView, runView, stackView, workerView } from "./views.ts";

export interface ApiDeps {
  store: Store;
  control: ControlPlane;
  pools: PoolService;
  adminToken: string;
  /** Drop a pool's broker connections (after reset or delete). */
  disconnectPool(pool: string): void;
  /** The launcher comms endpoints (`/api/v1/comms/...`, HTTP long-poll), signed by pool keys instead of the admin token. */
  comms?: (req: Request, url: URL) => Promise<Response>;
  logger: Logger;
}

const STATUS: Record<string, number> = {
  "not-found": 404,
  unauthorized: 401,
  "invalid-request": 400,
  "csr-malformed": 400,
  "csr-signature-invalid": 400,
  "csr-key-unsupported": 400,
  "run-spec-invalid": 400,
  conflict: 409,
};

const json = (body: unknown, status = 200): Response => Response.json(body, { status });
const bad = (message: string) => new SpaceliftError("invalid-request", message);

const PoolCreate = v.object({ name: v.pipe(v.string(), v.minLength(1)), csr: v.string(), description: v.optional(v.string()) });
const PoolReset = v.object({ csr: v.string() });
const StackCreate = v.object({
  name: v.pipe(v.string(), v.minLength(1)),
  pool: v.string(),
  image: v.pipe(v.string(), v.minLength(1)),
  environment: v.optional(v.array(v.object({ name: v.string(), value: v.string(), secret: v.optional(v.boolean(), false) })), []),
  phases: v.pipe(v.array(v.object({ name: v.string(), commands: v.array(v.string()) })), v.minLength(1, "a stack needs at least one phase")),
  repository: v.optional(v.nullable(v.string())),
  branch: v.optional(v.nullable(v.string())),
});
const RunTrigger = v.object({ stack: v.string(), type: v.optional(v.picklist(RUN_TYPES), "TRACKED") });

async function body<S extends v.GenericSchema>(req: Request, schema: S): Promise<v.InferOutput<S>> {
  let data: unknown;
  try {
    data = await req.json();
  } catch {
    throw bad("request body is not JSON");
  }
  const r = v.safeParse(schema, data);
  if (!r.success) throw bad(`${v.getDotPath(r.issues[0]) ?? "body"}: ${r.issues[0].message}`);
  return r.output;
}

function authorized(req: Request, token: string): boolean {
  const header = req.headers.get("authorization") ?? "";
  const given = Buffer.from(header.startsWith("Bearer ") ? header.slice(7) : "");
  const want = Buffer.from(token);
  return given.length === want.length && timingSafeEqual(given, want);
}

export function createApi(deps: ApiDeps): (req: Request) => Promise<Response> {
  const { store, control } = deps;
  const log = deps.logger.child({ component: "api" });

  const mustPool = (id: string) => store.pools.get(id) ?? (() => { throw new SpaceliftError("not-found", `pool ${id} does not exist`); })();
  const mustRun = (id: string) => store.runs.get(id) ?? (() => { throw new SpaceliftError("not-found", `run ${id} does not exist`); })();

  async function route(req: Request, url: URL): Promise<Response> {
    const parts = url.pathname.replace(/\/+$/, "").split("/").slice(3);
    const [resource, id, action] = parts;
    const m = req.method;
    const q = url.searchParams;
    switch (resource) {
      case "pools":
        if (!id && m === "GET") return json(store.pools.list().map((p) => poolView(p, store.workers.listLive(p.id))));
        if (!id && m === "POST") {
          const input = await body(req, PoolCreate);
          const { pool, token } = await deps.pools.create(input);
          log.info("pool created", { pool: pool.id, name: pool.name });
          return json({ pool: poolView(pool), token }, 201);
        }
        if (id && !action && m === "GET") {
          const p = mustPool(id);
          return json({ ...poolView(p, store.workers.listLive(id)), stacks: store.stacks.list(id).map((s) => s.id) });
        }
        if (id && !action && m === "DELETE") {
          mustPool(id);
          const users = store.stacks.list(id).map((s) => s.id);
          if (users.length > 0) {
            throw new SpaceliftError("conflict", `pool ${id} is used by ${users.length} stack(s): ${users.join(", ")}; delete them first (mothership stack delete ID)`);
          }
          store.pools.delete(id, new Date().toISOString());
          store.workers.deletePool(id, new Date().toISOString());
          deps.disconnectPool(id);
          return json({ deleted: id });
        }
        if (id && action === "cycle" && m === "POST") return json({ pool: mustPool(id).id, cycled: control.cyclePool(id) });
        if (id && action === "reset" && m === "POST") {
          const { pool, token } = await deps.pools.reset(id, (await body(req, PoolReset)).csr);
          deps.disconnectPool(id);
          return json({ pool: poolView(pool), token });
        }
        break;
      case "workers":
        if (!id && m === "GET") return json(store.workers.listLive(q.get("pool") ?? undefined).map(workerView));
        if (id && !action && m === "GET") {
          const w = store.workers.get(id);
          if (!w) throw new SpaceliftError("not-found", `worker ${id} does not exist`);
          return json(workerView(w));
        }
        if (id && (action === "drain" || action === "undrain") && m === "POST") {
          control.setDrained(id, action === "drain");
          return json(workerView(store.workers.get(id)!));
        }
        break;
      case "stacks":
        if (!id && m === "GET") return json(store.stacks.list(q.get("pool") ?? undefined).map(stackView));
        if (!id && m === "POST") {
          const input = await body(req, StackCreate);
          mustPool(input.pool);
          const stack: Stack = { ...input, id: ulid(), repository: input.repository ?? null, branch: input.branch ?? null, created_at: new Date().toISOString() };
          validateStack(stack);
          store.stacks.insert(stack);
          return json(stackView(stack), 201);
        }
        if (id && !action && m === "GET") {
          const s = store.stacks.get(id);
          if (!s) throw new SpaceliftError("not-found", `stack ${id} does not exist`);
          return json(stackView(s));
        }
        if (id && !action && m === "DELETE") {
          if (!store.stacks.get(id)) throw new SpaceliftError("not-found", `stack ${id} does not exist`);
          // Runs that have not ended still need their stack (a queued run is built from it when scheduled).
          const open = store.runs.list({ stack: id }).filter((r) => !isTerminalRunState(r.state)).map((r) => r.id);
          if (open.length > 0) throw new SpaceliftError("conflict", `stack ${id} has runs that have not ended: ${open.join(", ")}; cancel them first (mothership run cancel ID)`);
          // Its ended runs and their logs stay readable.
          store.stacks.delete(id);
          log.info("stack deleted", { stack: id });
          return json({ deleted: id });
        }
        break;
      case "runs":
        if (!id && m === "GET") {
          const state = q.get("state") ?? undefined;
          if (state !== undefined && !(RUN_STATES as readonly string[]).includes(state)) throw bad(`unknown state ${state}`);
          return json(store.runs.list({ stack: q.get("stack") ?? undefined, pool: q.get("pool") ?? undefined, state: state as never }).map(runView));
        }
        if (!id && m === "POST") {
          const input = await body(req, RunTrigger);
          return json(runView(control.triggerRun(input.stack, input.type)), 201);
        }
        if (id && !action && m === "GET") return json(runView(mustRun(id)));
        if (id && action === "cancel" && m === "POST") return json(runView(control.cancelRun(id)));
        if (id && action === "logs" && m === "GET") {
          const run = mustRun(id);
          const after = Number(q.get("after") ?? "-1");
          if (!Number.isInteger(after)) throw bad("after must be an integer");
          const chunks = store.runs.logs(id, after, Number(q.get("limit") ?? "1000") || 1000);
          // Complete when the run ended and every chunk up to the launcher's last seq is here.
          const complete = isTerminalRunState(run.state) && (run.last_seq === null || run.log_acked >= run.last_seq);
          const next = chunks.at(-1)?.seq ?? after;
          return json({
            run: id,
            state: run.state,
            chunks: chunks.map((c) => ({ seq: c.seq, data: Buffer.from(c.data).toString("base64") })),
            next,
            done: complete && store.runs.logs(id, next, 1).length === 0,
            last_seq: run.last_seq,
          });
        }
        break;
    }
    throw new SpaceliftError("not-found", `no route ${m} ${url.pathname}`);
  }

  return async (req) => {
    const url = new URL(req.url);
    try {
      if (url.pathname === "/api/v1/health") return json({ ok: true });
      if (deps.comms && isCommsRequest(url.pathname)) return await deps.comms(req, url);
      if (!url.pathname.startsWith("/api/v1/")) throw new SpaceliftError("not-found", `no route ${req.method} ${url.pathname}`);
      if (!authorized(req, deps.adminToken)) throw new SpaceliftError("unauthorized", "missing or wrong admin token (Authorization: Bearer ...)");
      return await route(req, url);
    } catch (err) {
      const code = err instanceof SpaceliftError ? err.code : "internal";
      const status = STATUS[code] ?? 500;
      if (status === 500) log.error("request failed", { method: req.method, path: url.pathname, error: err });
      return json({ error: { code, message: errorMessage(err) } }, status);
    }
  };
}
