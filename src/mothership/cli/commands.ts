/**
 * The operator commands over the HTTP API: pool, worker, stack and run. Each returns the process
 * exit code; output goes through `io` so tests can read it. List/show commands print JSON with
 * `--json`, a plain table otherwise.
 */
import { readFile } from "node:fs/promises";
import { isTerminalRunState, RUN_TYPES, type RunState } from "../../protocol/states.ts";
import { all, flag, keyValue, requiredFlag, usageError, type ParsedArgs } from "./args.ts";
import type { ApiClient } from "./client.ts";
import { tagSelector, triggerOptions } from "./run-options.ts";
import { secretVariables } from "./secret-input.ts";
import { printable, printableJson } from "./terminal.ts";

export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** Standard input, for a secret given as `--secret NAME=-` or `--secret-stdin NAME`. */
  stdin?: AsyncIterable<Uint8Array>;
}

type Row = Record<string, unknown>;

/** A value as one line of terminal-safe text: every cell and every `show` value goes through here. */
const text = (v: unknown): string => printable(v === null || v === undefined ? "-" : typeof v === "object" ? JSON.stringify(v) : String(v));

function table(io: Io, rows: Row[], columns: string[]): void {
  const cell = text;
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i] ?? 0)).join("  ").trimEnd();
  io.out(line(columns.map((c) => c.toUpperCase())));
  for (const r of rows) io.out(line(columns.map((c) => cell(r[c]))));
}

function show(io: Io, a: ParsedArgs, data: unknown, columns: string[]): void {
  if (a.switches.has("json")) io.out(printableJson(data));
  else if (Array.isArray(data)) table(io, data as Row[], columns);
  else for (const [k, v] of Object.entries(data as Row)) io.out(`${printable(k)}: ${v === null ? "null" : text(v)}`);
}

function id(a: ParsedArgs, what: string): string {
  const v = a.positionals[0];
  if (!v) throw usageError(`${what} ID is required`);
  return v;
}

export async function poolCommand(sub: string, a: ParsedArgs, api: ApiClient, io: Io): Promise<number> {
  switch (sub) {
    case "create": {
      const csr = await readFile(requiredFlag(a, "csr"), "utf8");
      const r = await api.request<{ token: string }>("POST", "/pools", { name: requiredFlag(a, "name"), csr, description: flag(a, "description") });
      io.out(printable(r.token));
      return 0;
    }
    case "reset": {
      const csr = await readFile(requiredFlag(a, "csr"), "utf8");
      io.out(printable((await api.request<{ token: string }>("POST", `/pools/${id(a, "pool")}/reset`, { csr })).token));
      return 0;
    }
    case "list":
      show(io, a, await api.request("GET", "/pools"), ["id", "name", "description", "workers", "created_at"]);
      return 0;
    case "show":
      show(io, a, await api.request("GET", `/pools/${id(a, "pool")}`), []);
      return 0;
    case "delete":
      await api.request("DELETE", `/pools/${id(a, "pool")}`);
      io.out(printable(`deleted pool ${id(a, "pool")}`));
      return 0;
    case "cycle": {
      const r = await api.request<{ cycled: number }>("POST", `/pools/${id(a, "pool")}/cycle`);
      io.out(printable(`asked ${r.cycled} worker(s) to exit when idle`));
      return 0;
    }
  }
  throw usageError(`unknown command: pool ${sub} (create, list, show, reset, delete, cycle)`);
}

export async function workerCommand(sub: string, a: ParsedArgs, api: ApiClient, io: Io): Promise<number> {
  switch (sub) {
    case "list": {
      const pool = flag(a, "pool");
      show(io, a, await api.request("GET", `/workers${pool ? `?pool=${encodeURIComponent(pool)}` : ""}`), ["id", "pool", "status", "problem", "version", "arch", "metadata", "last_seen"]);
      return 0;
    }
    case "drain":
    case "undrain": {
      const pool = flag(a, "pool");
      if (pool !== undefined) return drainByTags(sub, pool, a, api, io);
      if (a.flags.has("tag")) throw usageError(`--tag selects workers of a pool: give --pool ID with it (worker ${sub} --pool ID --tag KEY=VALUE)`);
      const w = await api.request<Row>("POST", `/workers/${id(a, "worker")}/${sub}`);
      if (a.switches.has("json")) io.out(printableJson(w));
      else io.out(`worker ${text(w.id)} is ${text(w.status)}`);
      return 0;
    }
  }
  throw usageError(`unknown command: worker ${sub} (list, drain, undrain)`);
}

/** `worker drain|undrain --pool P [--tag K=V]...`: every live worker of the pool with all those tags. */
async function drainByTags(sub: "drain" | "undrain", pool: string, a: ParsedArgs, api: ApiClient, io: Io): Promise<number> {
  if (a.positionals.length > 0) throw usageError(`give a worker ID or --pool ID [--tag KEY=VALUE]..., not both`);
  const tags = tagSelector(a);
  const r = await api.request<{ workers: Row[] }>("POST", `/pools/${encodeURIComponent(pool)}/${sub}`, { tags });
  if (a.switches.has("json")) io.out(printableJson(r));
  else {
    const which = Object.keys(tags).length > 0 ? ` with ${Object.entries(tags).map(([k, v]) => `${k}=${v}`).join(", ")}` : "";
    io.out(printable(`${sub === "drain" ? "drained" : "undrained"} ${r.workers.length} worker(s) of pool ${pool}${which}`));
    for (const w of r.workers) io.out(`  ${text(w.id)} ${text(w.status)}`);
  }
  return 0;
}

/** `--phase NAME=COMMAND`, repeatable; commands of the same phase keep their order. */
function phases(a: ParsedArgs): Array<{ name: string; commands: string[] }> {
  const out: Array<{ name: string; commands: string[] }> = [];
  for (const item of all(a, "phase")) {
    const [name, command] = keyValue(item, "--phase");
    const existing = out.find((p) => p.name === name);
    if (existing) existing.commands.push(command);
    else out.push({ name, commands: [command] });
  }
  if (out.length === 0) throw usageError("at least one --phase NAME=COMMAND is required");
  return out;
}

export async function stackCommand(sub: string, a: ParsedArgs, api: ApiClient, io: Io): Promise<number> {
  switch (sub) {
    case "create": {
      const environment = [
        ...all(a, "env").map((e) => keyValue(e, "--env")).map(([name, value]) => ({ name, value, secret: false })),
        ...(await secretVariables(a, { stdin: io.stdin, warn: io.err })).map(({ name, value }) => ({ name, value, secret: true })),
      ];
      const s = await api.request<Row>("POST", "/stacks", {
        name: requiredFlag(a, "name"),
        pool: requiredFlag(a, "pool"),
        image: requiredFlag(a, "image"),
        environment,
        phases: phases(a),
        repository: flag(a, "repository") ?? null,
        branch: flag(a, "branch") ?? null,
        labels: all(a, "label"),
        vcs_pool: flag(a, "vcs-pool") ?? null,
      });
      io.out(text(s.id));
      return 0;
    }
    case "list":
      show(io, a, await api.request("GET", "/stacks"), ["id", "name", "pool", "image", "created_at"]);
      return 0;
    case "show":
      show(io, a, await api.request("GET", `/stacks/${id(a, "stack")}`), []);
      return 0;
    case "delete":
      await api.request("DELETE", `/stacks/${id(a, "stack")}`);
      io.out(printable(`deleted stack ${id(a, "stack")}`));
      return 0;
  }
  throw usageError(`unknown command: stack ${sub} (create, list, show, delete)`);
}

interface RunView extends Row {
  id: string;
  state: RunState;
  messages?: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface RunCommandOptions {
  /**
   * How long `logs --follow` waits, after the run ended, for chunks the launcher reported but the
   * mothership does not have yet (they come when a lost launcher's spool is resent). Default 30 s.
   */
  incompleteLogsWaitMs?: number;
}

interface LogsPage {
  state: RunState;
  chunks: Array<{ seq: number; data: string }>;
  next: number;
  done: boolean;
  last_seq?: number | null;
}

/** Prints the run's log; with `follow`, until it is complete. False when it ended incomplete. */
async function followLogs(api: ApiClient, runId: string, follow: boolean, io: Io, write: (b: Uint8Array) => void, waitMs: number): Promise<boolean> {
  let after = -1;
  let waitingSince: number | null = null;
  for (;;) {
    const page = await api.request<LogsPage>("GET", `/runs/${runId}/logs?after=${after}`);
    for (const c of page.chunks) write(Buffer.from(c.data, "base64"));
    after = page.next;
    if (page.chunks.length > 0) {
      waitingSince = null;
      continue;
    }
    if (!follow || page.done) return true;
    if (isTerminalRunState(page.state)) {
      // The run ended but chunks up to its last seq are missing: wait a bounded time, not forever.
      waitingSince ??= Date.now();
      if (Date.now() - waitingSince >= waitMs) {
        const expected = typeof page.last_seq === "number" ? ` (it reported chunks up to seq ${page.last_seq})` : "";
        io.err(printable(`note: run ${runId} ended ${page.state} but its log is incomplete${expected}: chunks after seq ${after} did not arrive within ${Math.round(waitMs / 1000)} s; the output above may be partial, try \`mothership run logs ${runId}\` later`));
        return false;
      }
    }
    await sleep(300);
  }
}

export async function runCommand(sub: string, a: ParsedArgs, api: ApiClient, io: Io, write: (b: Uint8Array) => void, opts: RunCommandOptions = {}): Promise<number> {
  switch (sub) {
    case "trigger": {
      const type = flag(a, "type") ?? "TRACKED";
      if (!(RUN_TYPES as readonly string[]).includes(type)) throw usageError(`--type must be one of ${RUN_TYPES.join(", ")}`);
      const run = await api.request<RunView>("POST", "/runs", { stack: id(a, "stack"), type, ...(await triggerOptions(a)) });
      io.out(printable(run.id));
      if (!a.switches.has("wait")) return 0;
      let current = run;
      while (!isTerminalRunState(current.state)) {
        await sleep(300);
        current = await api.request<RunView>("GET", `/runs/${run.id}`);
      }
      io.err(printable(`run ${run.id} ${current.state}${current.reason ? ` (${String(current.reason)})` : ""}`));
      for (const m of current.messages ?? []) io.err(`  ${printable(m)}`);
      return current.state === "FINISHED" ? 0 : 1;
    }
    case "list": {
      const q = new URLSearchParams();
      for (const k of ["stack", "pool", "state"]) {
        const v = flag(a, k);
        if (v) q.set(k, v);
      }
      if (a.switches.has("active")) {
        if (flag(a, "state")) throw usageError("--active lists runs that have not ended; give it or --state, not both");
        q.set("active", "true");
      }
      show(io, a, await api.request("GET", `/runs${q.size ? "?" + q.toString() : ""}`), ["id", "stack", "type", "state", "reason", "exit_code", "worker", "created_at"]);
      return 0;
    }
    case "show":
      show(io, a, await api.request("GET", `/runs/${id(a, "run")}`), []);
      return 0;
    case "logs":
      return (await followLogs(api, id(a, "run"), a.switches.has("follow"), io, write, opts.incompleteLogsWaitMs ?? 30_000)) ? 0 : 1;
    case "cancel": {
      const r = await api.request<RunView>("POST", `/runs/${id(a, "run")}/cancel`);
      if (a.switches.has("json")) io.out(printableJson(r));
      else io.out(printable(`run ${r.id} ${r.state === "CANCELED" ? "canceled" : "cancel requested"}`));
      return 0;
    }
  }
  throw usageError(`unknown command: run ${sub} (trigger, list, show, logs, cancel)`);
}
