/**
 * The browser the web UI's end-to-end tests drive with playwright-core: Debian's `chromium`, run
 * headless from /usr/bin/chromium. Installed like the rest of the test environment; playwright's own
 * browser downloads are never used.
 */
import { existsSync } from "node:fs";
import { ensurePackages } from "./packages.ts";

export const CHROMIUM = "/usr/bin/chromium";

export function ensureBrowser(log: (msg: string) => void): void {
  if (!existsSync(CHROMIUM)) ensurePackages(["chromium"], log);
}
