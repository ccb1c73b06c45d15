/**
 * What each live view of the web UI shows, computed from the store with the API's own JSON shapes
 * (http/views.ts), so the UI shows exactly what the API and the CLI say. A topic names a view:
 * `pools`, `stacks`, `pool:<id>`, `stack:<id>` or `run:<id>`. Secret values stay `null`, as in the API.
 */
import { isTerminalRunState } from "../../protocol/states.ts";
import { poolView, runView, stackView, workerView } from "../http/views.ts";
import type { Run, Store } from "../store/index.ts";

const ID = "[0-9A-Za-z_.-]{1,128}";
const TOPIC = new RegExp(`^(pools|stacks|(pool|stack|run):${ID})$`);

export function isTopic(text: string): boolean {
  return TOPIC.test(text);
}

/** A run as the UI lists it: the API's view plus its stack's name. */
function listedRun(store: Store, names: Map<string, string>, r: Run) {
  let name = names.get(r.stack);
  if (name === undefined) {
    name = store.stacks.get(r.stack)?.name ?? r.stack;
    names.set(r.stack, name);
  }
  return { ...runView(r), stack_name: name, pool: r.pool };
}

/** At most this many runs in a list view (newest first); the API lists them all. */
const MAX_LISTED_RUNS = 50;

export function snapshot(store: Store, topic: string): unknown {
  const names = new Map<string, string>();
  const [kind, id = ""] = topic.split(/:(.*)/s);
  switch (kind) {
    case "pools": {
      const active = store.runs.list({ active: true });
      return {
        pools: store.pools.list().map((p) => ({
          ...poolView(p, store.workers.listLive(p.id)),
          queued: active.filter((r) => r.pool === p.id && r.state === "QUEUED").length,
          in_progress: active.filter((r) => r.pool === p.id && r.state !== "QUEUED").length,
        })),
      };
    }
    case "pool": {
      const pool = store.pools.get(id);
      if (!pool) return { missing: true };
      const workers = store.workers.listLive(id);
      return {
        pool: poolView(pool, workers),
        workers: workers.map(workerView),
        runs: store.runs.list({ pool: id, active: true }).map((r) => listedRun(store, names, r)),
        stacks: store.stacks.list(id).map(stackView),
      };
    }
    case "stacks": {
      const pools = Object.fromEntries(store.pools.list().map((p) => [p.id, p.name]));
      return {
        stacks: store.stacks.list().map(stackView),
        pools,
        runs: store.runs.list({ active: true }).map((r) => listedRun(store, names, r)),
      };
    }
    case "stack": {
      const stack = store.stacks.get(id);
      if (!stack) return { missing: true };
      const runs = store.runs.list({ stack: id });
      return {
        stack: stackView(stack),
        pool_name: store.pools.get(stack.pool)?.name ?? null,
        runs: runs.slice(-MAX_LISTED_RUNS).reverse().map((r) => listedRun(store, names, r)),
        runs_total: runs.length,
      };
    }
    case "run": {
      const run = store.runs.get(id);
      if (!run) return { missing: true };
      const stack = store.stacks.get(run.stack);
      return {
        run: { ...runView(run), pool: run.pool, phase: run.phase, cancel_requested: run.cancel_requested, updated_at: run.updated_at },
        stack: stack ? { id: stack.id, name: stack.name, phases: stack.phases.map((p) => p.name) } : null,
        pool_name: store.pools.get(run.pool)?.name ?? null,
        phases: store.runs.phases(id),
        log_complete: isTerminalRunState(run.state) && (run.last_seq === null || run.log_acked >= run.last_seq),
      };
    }
  }
  return { missing: true };
}
