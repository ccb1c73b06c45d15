/** `spacelift-launcher check`: validate everything, print the effective configuration (secrets redacted). */
import type { Io } from "../main.ts";

export async function checkCommand(_args: string[], _env: Record<string, string | undefined>, io: Io): Promise<number> {
  io.stderr("spacelift-launcher check: not available yet\n");
  return 2;
}
