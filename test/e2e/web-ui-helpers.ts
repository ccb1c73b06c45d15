/** Small helpers of the web UI's end-to-end test: waiting for text, screenshots, direct HTTP calls. */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { BrowserContext, Locator, Page } from "playwright-core";
import { dist } from "../../scripts/demo/world.ts";

export const SCREENSHOTS = join(dist, "ui-screenshots");

/** Waits until the element's text contains `want` (a live update, no reload); fails saying what it saw. */
export async function expectText(locator: Locator, want: string | RegExp, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let seen = "";
  for (;;) {
    seen = (await locator.first().textContent({ timeout: 1_000 }).catch(() => null)) ?? "";
    if (typeof want === "string" ? seen.includes(want) : want.test(seen)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${String(want)} in ${locator.toString()}; it shows: ${JSON.stringify(seen.slice(0, 2000))}`);
    await Bun.sleep(100);
  }
}

/** dist/ui-screenshots/<name>.png, the whole page. */
export async function shoot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/** The browser's session cookie as a Cookie header, to replay it outside the page. */
export async function sessionCookie(context: BrowserContext, url: string): Promise<string> {
  const c = (await context.cookies(url)).find((k) => k.name === "__Host-mothership_session");
  if (!c) throw new Error("the browser holds no session cookie");
  return `${c.name}=${c.value}`;
}

/** A call with the admin bearer token, as scripts make them; the JSON answer. */
export async function api<T>(url: string, ca: string, token: string, method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${url}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    tls: { ca },
  });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

/** Status and error code of a request with exactly these headers. */
export async function apiStatus(url: string, ca: string, method: string, path: string, headers: Record<string, string>, body?: string): Promise<{ status: number; code: string | null }> {
  const res = await fetch(`${url}${path}`, { method, headers, body, tls: { ca } });
  const text = await res.text();
  let code: string | null = null;
  try {
    code = (JSON.parse(text) as { error?: { code?: string } }).error?.code ?? null;
  } catch {
    // an event stream or a page, not an error
  }
  return { status: res.status, code };
}
