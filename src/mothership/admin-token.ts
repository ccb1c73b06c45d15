/**
 * The admin bearer token of the API: made on first start, kept in `<data>/admin-token` (0600) and
 * never printed (`serve` prints the file's path). The CLI reads it with `--data DIR`, from
 * `--token-file PATH` or from `MOTHERSHIP_TOKEN=$(cat PATH)`.
 */
import { chmod, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";

export function adminTokenPath(dataDir: string): string {
  return join(dataDir, "admin-token");
}

export async function loadOrCreateAdminToken(dataDir: string): Promise<{ token: string; created: boolean }> {
  const path = adminTokenPath(dataDir);
  if (await Bun.file(path).exists()) return { token: (await readFile(path, "utf8")).trim(), created: false };
  const token = "msat_" + Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url");
  await writeFile(path, token + "\n", { mode: 0o600, flag: "wx" });
  await chmod(path, 0o600);
  return { token, created: true };
}
