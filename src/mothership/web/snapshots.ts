/**
 * What each live view of the web UI shows, computed from the store with the API's own JSON shapes
 * (http/views.ts), so the UI shows exactly what the API and the CLI say. A topic names a view:
 * `pools`, `stacks`, `pool:<id>`, `stack:<id>` or `run:<id>`. Secret values stay `null`, as in the API.
 */
import { isTerminalRunState } from "../../protocol/states.ts";
import { poolView, runView, stackView, workerView } from "../http/views.ts";
import type { Run, Stack, Store } from "../store/index.ts";

const ID = "[0-9A-Za-z_.-]{1,128}";
const TOPIC = new RegExp(`^(pools|stacks|(pool|stack|run):${ID})$`);

export function isTopic(text: string): boolean {
  return TOPIC.test(text);
}

/**
 * Runs as the UI lists them: the API's view plus the stack's name, taken from `stacks` (the ones
 * the view read anyway) or else read once per stack.
 */
async function listedRuns(store: Store, runs: readonly Run[], stacks: readonly Stack[] = []) {
  const names = new Map(stacks.map((s) => [s.id, s.name]));
  const out = [];
  for (const r of runs) {
    let name = names.get(r.stack);
    if (name === undefined) {
      name = (await store.stacks.get(r.stack))?.name ?? r.stack;
      names.set(r.stack, name);
    }
    out.push({ ...runView(r), stack_name: name, pool: r.pool });
  }
  return out;
}

/** At most this many runs in a list view (newest first); the API lists them all. */
const MAX_LISTED_RUNS = 50;

export async function snapshot(store: Store, topic: string): Promise<unknown> {
  const [kind, id = ""] = topic.split(/:(.*)/s);
  switch (kind) {
    case "pools": {
      const [active, pools, workers] = await Promise.all([store.runs.list({ active: true }), store.pools.list(), store.workers.listLive()]);
      return {
        pools: pools.map((p) => ({
          ...poolView(
            p,
            workers.filter((w) => w.pool === p.id),
          ),
          queued: active.filter((r) => r.pool === p.id && r.state === "QUEUED").length,
          in_progress: active.filter((r) => r.pool === p.id && r.state !== "QUEUED").length,
        })),
      };
    }
    case "pool": {
      const pool = await store.pools.get(id);
      if (!pool) return { missing: true };
      const [workers, runs, stacks] = await Promise.all([store.workers.listLive(id), store.runs.list({ pool: id, active: true }), store.stacks.list(id)]);
      return {
        pool: poolView(pool, workers),
        workers: workers.map(workerView),
        runs: await listedRuns(store, runs, stacks),
        stacks: stacks.map(stackView),
      };
    }
    case "stacks": {
      const [pools, stacks, runs] = await Promise.all([store.pools.list(), store.stacks.list(), store.runs.list({ active: true })]);
      return {
        stacks: stacks.map(stackView),
        pools: Object.fromEntries(pools.map((p) => [p.id, p.name])),
        runs: await listedRuns(store, runs, stacks),
      };
    }
    case "stack": {
      const stack = await store.stacks.get(id);
      if (!stack) return { missing: true };
      const [runs, pool] = await Promise.all([store.runs.list({ stack: id }), store.pools.get(stack.pool)]);
      return {
        stack: stackView(stack),
        pool_name: pool?.name ?? null,
        runs: await listedRuns(store, runs.slice(-MAX_LISTED_RUNS).reverse(), [stack]),
        runs_total: runs.length,
      };
    }
    case "run": {
      const run = await store.runs.get(id);
      if (!run) return { missing: true };
      const [stack, pool, phases] = await Promise.all([store.stacks.get(run.stack), store.pools.get(run.pool), store.runs.phases(id)]);
      return {
        run: { ...runView(run), pool: run.pool, phase: run.phase, cancel_requested: run.cancel_requested, updated_at: run.updated_at },
        stack: stack ? { id: stack.id, name: stack.name, phases: stack.phases.map((p) => p.name) } : null,
        pool_name: pool?.name ?? null,
        phases,
        log_complete: isTerminalRunState(run.state) && (run.last_seq === null || run.log_acked >= run.last_seq),
      };
    }
  }
  return { missing: true };
}
