/**
 * Every route of the admin API (below /api/v1): its method, path, input schemas and a handler that
 * only translates between HTTP and the services, where the rules live (pool-service.ts,
 * stack-service.ts, run-log-reader.ts, control.ts). Paths, statuses and shapes are what the CLI and
 * operators' scripts use: change them only together with src/mothership/README.md.
 */
import * as v from "valibot";
import { SpaceliftError } from "../../errors.ts";
import type { Logger } from "../../log/logger.ts";
import { MAX_SEQ } from "../../protocol/messages.ts";
import { RUN_STATES, RUN_TYPES } from "../../protocol/states.ts";
import type { ControlPlane } from "../control.ts";
import type { PoolService } from "../pool-service.ts";
import type { RunLogReader } from "../run-log-reader.ts";
import type { StackService } from "../stack-service.ts";
import type { Store } from "../store/index.ts";
import { route, type Route } from "./router.ts";
import { poolView, runView, stackView, workerView } from "./views.ts";

export interface RouteDeps {
  store: Store;
  control: ControlPlane;
  pools: PoolService;
  stacks: StackService;
  logs: RunLogReader;
  /** Drop a pool's live connections (after reset or delete). */
  disconnectPool(pool: string): void | Promise<void>;
  log: Logger;
}

// ---- bodies ----

const PoolCreate = v.object({ name: v.pipe(v.string(), v.minLength(1)), csr: v.string(), description: v.optional(v.string()) });
const PoolReset = v.object({ csr: v.string() });
/** One line of printable text: what labels, pool names and branches must be (they reach logs and terminals). */
function line(what: string, max: number, pattern = /^[^\p{Cc}]+$/u, rule = "printable text without control characters") {
  return v.pipe(v.string(), v.minLength(1, `${what} must not be empty`), v.maxLength(max, `${what} must be at most ${max} characters`), v.regex(pattern, `${what} must be ${rule}`));
}
const MAX_LABELS = 64;
const MAX_METADATA = 16;
const MAX_METADATA_BYTES = 64 * 1024;

const StackCreate = v.object({
  name: v.pipe(v.string(), v.minLength(1)),
  pool: v.string(),
  image: v.pipe(v.string(), v.minLength(1)),
  environment: v.optional(v.array(v.object({ name: v.string(), value: v.string(), secret: v.optional(v.boolean(), false) })), []),
  phases: v.pipe(v.array(v.object({ name: v.string(), commands: v.array(v.string()) })), v.minLength(1, "a stack needs at least one phase")),
  repository: v.optional(v.nullable(v.string())),
  branch: v.optional(v.nullable(v.string())),
  labels: v.optional(v.pipe(v.array(line("a label", 128)), v.maxLength(MAX_LABELS, `a stack has at most ${MAX_LABELS} labels`)), []),
  /** The VCS agent pool, as the launchers name it in SPACELIFT_PRIVATEVCS_MAPPING_NAME_<n>. */
  vcs_pool: v.optional(v.nullable(line("vcs_pool", 128))),
});
const RunTrigger = v.object({
  stack: v.string(),
  type: v.optional(v.picklist(RUN_TYPES, `must be one of ${RUN_TYPES.join(", ")}`), "TRACKED"),
  commit: v.optional(v.nullable(v.pipe(v.string(), v.regex(/^[0-9a-fA-F]{4,64}$/, "commit must be a commit hash (4 to 64 hex digits), e.g. the output of git rev-parse HEAD")))),
  branch: v.optional(v.nullable(line("branch", 255, /^[^\s\p{Cc}]+$/u, "a branch name without spaces or control characters"))),
  /** Opaque strings for the run-initialization policy (`run.user_provided_metadata`), e.g. a signed token. */
  user_provided_metadata: v.optional(
    v.pipe(
      v.array(v.pipe(v.string(), v.check((m) => Buffer.byteLength(m) <= MAX_METADATA_BYTES, `an entry of user_provided_metadata must be at most ${MAX_METADATA_BYTES / 1024} KiB`))),
      v.maxLength(MAX_METADATA, `a run has at most ${MAX_METADATA} user_provided_metadata entries`),
    ),
    [],
  ),
});
/** Which live workers of a pool to drain or undrain: all of these metadata tags (none: every worker). */
const TagSelector = v.object({
  tags: v.optional(v.pipe(v.record(line("a tag key", 128), v.string()), v.check((t) => Object.keys(t).length <= 32, "at most 32 tags")), {}),
});

// ---- query parameters (strings on the wire; each says what a good value looks like) ----

const got = (issue: { input: unknown }) => `, not ${JSON.stringify(issue.input)}`;

/** A whole number in [min, max], written in plain digits. */
function wholeNumber(min: number, max: number, what: string) {
  const message = (issue: { input: unknown }) => `must be ${what}${got(issue)}`;
  const inRange = (text: string) => /^-?\d{1,16}$/.test(text) && Number(text) >= min && Number(text) <= max;
  return v.pipe(v.string(), v.check(inRange, message), v.transform(Number));
}

const IdFilter = v.optional(v.pipe(v.string(), v.regex(/^[0-9A-Za-z_.-]{1,128}$/, (i) => `must be an id (letters, digits, _ . -)${got(i)}`)));
const PoolFilter = v.object({ pool: IdFilter });
const RunFilter = v.object({
  stack: IdFilter,
  pool: IdFilter,
  state: v.optional(v.picklist(RUN_STATES, (i) => `must be one of ${RUN_STATES.join(", ")}${got(i)}`)),
  /** true: only runs that have not ended, in progress first, then the queue in order. */
  active: v.optional(v.pipe(v.picklist(["true", "false"], (i) => `must be true or false${got(i)}`), v.transform((t) => t === "true"))),
});
const MAX_LOG_PAGE = 1000;
const LogQuery = v.object({
  after: v.optional(wholeNumber(-1, MAX_SEQ, `a whole number from -1 (the start) to ${MAX_SEQ}: the seq of the last chunk you have`), "-1"),
  limit: v.optional(wholeNumber(1, MAX_LOG_PAGE, `a whole number from 1 to ${MAX_LOG_PAGE} (default ${MAX_LOG_PAGE})`), String(MAX_LOG_PAGE)),
});

export function apiRoutes(d: RouteDeps): Route[] {
  const { store, control } = d;
  const must = async <T>(found: Promise<T | null>, what: string, id: string): Promise<T> => {
    const it = await found;
    if (it === null) throw new SpaceliftError("not-found", `${what} ${id} does not exist`);
    return it;
  };
  const mustPool = (id: string) => must(store.pools.get(id), "pool", id);
  const mustRun = (id: string) => must(store.runs.get(id), "run", id);
  const mustWorker = (id: string) => must(store.workers.get(id), "worker", id);
  /** Every pool with its live workers: one read of each kind, not one per pool. */
  const poolsWithWorkers = async () => {
    const [pools, workers] = await Promise.all([store.pools.list(), store.workers.listLive()]);
    return pools.map((p) => poolView(p, workers.filter((w) => w.pool === p.id)));
  };

  return [
    // ---- pools ----
    route({ method: "GET", path: "/pools", handle: poolsWithWorkers }),
    route({
      method: "POST",
      path: "/pools",
      body: PoolCreate,
      status: 201,
      handle: async ({ body }) => {
        const { pool, token } = await d.pools.create(body);
        d.log.info("pool created", { pool: pool.id, name: pool.name });
        return { pool: poolView(pool), token };
      },
    }),
    route({
      method: "GET",
      path: "/pools/:id",
      handle: async ({ params: { id } }) => {
        const pool = await mustPool(id);
        const [workers, stacks] = await Promise.all([store.workers.listLive(id), store.stacks.list(id)]);
        return { ...poolView(pool, workers), stacks: stacks.map((s) => s.id) };
      },
    }),
    route({
      method: "DELETE",
      path: "/pools/:id",
      handle: async ({ params: { id } }) => {
        await d.pools.delete(id);
        await d.disconnectPool(id);
        d.log.info("pool deleted", { pool: id });
        return { deleted: id };
      },
    }),
    ...(["drain", "undrain"] as const).map((action) =>
      route({
        method: "POST",
        path: `/pools/:id/${action}`,
        body: TagSelector,
        handle: async ({ params: { id }, body }) => ({ pool: id, workers: (await control.setDrainedByTags(id, body.tags, action === "drain")).map(workerView) }),
      }),
    ),
    route({ method: "POST", path: "/pools/:id/cycle", handle: async ({ params: { id } }) => ({ pool: (await mustPool(id)).id, cycled: await control.cyclePool(id) }) }),
    route({
      method: "POST",
      path: "/pools/:id/reset",
      body: PoolReset,
      handle: async ({ params: { id }, body }) => {
        const { pool, token } = await d.pools.reset(id, body.csr);
        await d.disconnectPool(id);
        return { pool: poolView(pool), token };
      },
    }),

    // ---- workers ----
    route({ method: "GET", path: "/workers", query: PoolFilter, handle: async ({ query }) => (await store.workers.listLive(query.pool)).map(workerView) }),
    route({ method: "GET", path: "/workers/:id", handle: async ({ params: { id } }) => workerView(await mustWorker(id)) }),
    ...(["drain", "undrain"] as const).map((action) =>
      route({
        method: "POST",
        path: `/workers/:id/${action}`,
        handle: async ({ params: { id } }) => {
          await control.setDrained(id, action === "drain");
          return workerView(await mustWorker(id));
        },
      }),
    ),

    // ---- stacks ----
    route({ method: "GET", path: "/stacks", query: PoolFilter, handle: async ({ query }) => (await store.stacks.list(query.pool)).map(stackView) }),
    route({ method: "POST", path: "/stacks", body: StackCreate, status: 201, handle: async ({ body }) => stackView(await d.stacks.create(body)) }),
    route({ method: "GET", path: "/stacks/:id", handle: async ({ params: { id } }) => stackView(await d.stacks.get(id)) }),
    route({
      method: "DELETE",
      path: "/stacks/:id",
      handle: async ({ params: { id } }) => {
        await d.stacks.delete(id);
        d.log.info("stack deleted", { stack: id });
        return { deleted: id };
      },
    }),

    // ---- runs ----
    route({ method: "GET", path: "/runs", query: RunFilter, handle: async ({ query }) => (await store.runs.list(query)).map(runView) }),
    route({
      method: "POST",
      path: "/runs",
      body: RunTrigger,
      status: 201,
      handle: async ({ body }) =>
        runView(await control.triggerRun(body.stack, body.type, { commit_sha: body.commit ?? null, branch: body.branch ?? null, user_provided_metadata: body.user_provided_metadata })),
    }),
    route({ method: "GET", path: "/runs/:id", handle: async ({ params: { id } }) => runView(await mustRun(id)) }),
    route({ method: "POST", path: "/runs/:id/cancel", handle: async ({ params: { id } }) => runView(await control.cancelRun(id)) }),
    route({ method: "GET", path: "/runs/:id/logs", query: LogQuery, handle: ({ params: { id }, query }) => d.logs.page(id, query.after, query.limit) }),
  ];
}
