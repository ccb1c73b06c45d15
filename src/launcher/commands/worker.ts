/**
 * `spacelift-launcher worker`: the in-container worker (PID 1 of a run container, src/worker). The
 * worker writes its own notes to the container's stderr, so `io` is not used here.
 */
import type { Io } from "../main.ts";

export async function workerCommand(args: string[], env: Record<string, string | undefined>, _io: Io): Promise<number> {
  const { workerMain } = await import("../../worker/main.ts");
  return await workerMain(args, env);
}
