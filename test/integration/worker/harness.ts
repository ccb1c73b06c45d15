// Runs the real worker (`bun src/worker/main.ts worker ...`) as a child process in a temp dir and
// splits its stdout back into phases and output with the launcher's parser.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { type MarkerEvent, PhaseMarkerParser, newMarkerNonce } from "../../../src/protocol/phase-markers.ts";

export const ROOT = resolve(import.meta.dir, "../../..");
export const BUN = join(ROOT, "node_modules/.bin/bun");
export const WORKER = join(ROOT, "src/worker/main.ts");

export type Flat = Array<{ phase: string } | { out: string }>;

export interface Sandbox {
  dir: string;
  workspace: string;
  specPath: string;
  nonce: string;
  cleanup(): void;
}

export function sandbox(): Sandbox {
  const dir = mkdtempSync(join(tmpdir(), "worker-test-"));
  const workspace = join(dir, "workspace");
  mkdirSync(workspace);
  return { dir, workspace, specPath: join(workspace, ".spacelift-run.json"), nonce: newMarkerNonce(), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

let counter = 0;

/** A valid run spec with the given phases; `extra` overrides top-level fields. */
export function runSpec(phases: Array<{ name: string; commands: string[] }>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  counter++;
  return {
    id: `01HZY8Q3V6X9J2K4M5N6P7R${String(counter).padStart(3, "0")}`,
    type: "TRACKED",
    stack: { id: "stack", name: "Stack", branch: "main", repository: "org/repo" },
    commit: { hash: "abc", branch: "main", author: "Ada", message: "msg" },
    environment: [],
    phases,
    ...extra,
  };
}

export function writeInstructions(box: Sandbox, run: Record<string, unknown>, vcsMapping?: Record<string, string>): void {
  writeFileSync(box.specPath, JSON.stringify({ run, marker_nonce: box.nonce, ...(vcsMapping ? { vcs_mapping: vcsMapping } : {}) }));
}

export interface WorkerResult {
  code: number;
  events: Flat;
  stdout: string;
  stderr: string;
}

export interface StartOptions {
  env?: Record<string, string>;
  args?: string[];
  /** Command prefix, e.g. ["unshare", "--pid", "--fork", "--mount-proc"]. */
  wrap?: string[];
  /** Give the worker an open stdin pipe (that nobody writes to) instead of /dev/null. */
  openStdin?: boolean;
}

export function startWorker(box: Sandbox, options: StartOptions = {}): { proc: Bun.Subprocess<"ignore" | "pipe", "pipe", "pipe">; result: Promise<WorkerResult> } {
  const cmd = [...(options.wrap ?? []), BUN, WORKER, "worker", "--spec", box.specPath, "--workspace", box.workspace, ...(options.args ?? [])];
  const proc = Bun.spawn(cmd, {
    cwd: box.dir,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...options.env },
    stdin: options.openStdin === true ? "pipe" : "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const result = (async (): Promise<WorkerResult> => {
    const [stdoutBytes, stderr, code] = await Promise.all([new Response(proc.stdout).bytes(), new Response(proc.stderr).text(), proc.exited]);
    return { code, events: parseMarkers(stdoutBytes, box.nonce), stdout: new TextDecoder().decode(stdoutBytes), stderr };
  })();
  return { proc, result };
}

export async function runWorker(box: Sandbox, options: StartOptions = {}): Promise<WorkerResult> {
  return startWorker(box, options).result;
}

function parseMarkers(bytes: Uint8Array, nonce: string): Flat {
  const parser = new PhaseMarkerParser(nonce);
  const events: MarkerEvent[] = [...parser.write(bytes), ...parser.end()];
  const flat: Flat = [];
  for (const event of events) {
    const last = flat.at(-1);
    if (event.kind === "phase") flat.push({ phase: event.name });
    else if (last !== undefined && "out" in last) last.out += new TextDecoder().decode(event.data);
    else flat.push({ out: new TextDecoder().decode(event.data) });
  }
  return flat;
}

/** Resolves when `path` exists, or rejects after `ms`. */
export async function waitForFile(path: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await Bun.file(path).exists())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${path}`);
    await Bun.sleep(20);
  }
}
