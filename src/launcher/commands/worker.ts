/** `spacelift-launcher worker`: the in-container worker. */
import type { Io } from "../main.ts";

export async function workerCommand(_args: string[], _env: Record<string, string | undefined>, io: Io): Promise<number> {
  io.stderr("spacelift-launcher worker: the in-container worker is not available in this build yet\n");
  return 2;
}
