/** The launcher itself: the agent loop that receives runs from the mothership. */
import type { Io } from "../main.ts";

export async function launchCommand(_args: string[], _env: Record<string, string | undefined>, io: Io): Promise<number> {
  io.stderr(
    "spacelift-launcher: the agent loop (mothership connection and run execution) is not available in this " +
      "build yet; use `spacelift-launcher check` to validate a configuration\n",
  );
  return 2;
}
