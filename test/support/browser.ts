/**
 * A real browser for the web UI's end-to-end tests: Debian's chromium (installed by the test
 * environment, scripts/testenv/browser.ts) driven headless by playwright-core, with a fresh profile.
 * It trusts the mothership's TLS certificate the way a pinned operator would: the test checks the
 * server's certificate against the mothership's CA here and tells chromium to accept that one key
 * (its SPKI hash), nothing else. Under CI=true a missing browser is a failure, never a skip.
 */
import { createHash, X509Certificate } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:tls";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext } from "playwright-core";
import { CHROMIUM } from "../../scripts/testenv/browser.ts";
import { hostCapability } from "./env.ts";

/** Whether the browser is there (false => skip, outside CI only). */
export function browserAvailable(): boolean {
  return hostCapability(`Debian's chromium at ${CHROMIUM} (the test environment installs it)`, existsSync(CHROMIUM));
}

/** The base64 SHA-256 of the server's public key, after checking its certificate against `caPem`. */
export function serverKeyPin(host: string, port: number, caPem: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, ca: caPem, servername: host === "127.0.0.1" ? undefined : host }, () => {
      const der = socket.getPeerCertificate().raw;
      socket.end();
      const spki = new X509Certificate(der).publicKey.export({ type: "spki", format: "der" });
      resolve(createHash("sha256").update(spki).digest("base64"));
    });
    socket.on("error", reject);
  });
}

export interface TestBrowser {
  context: BrowserContext;
  close(): Promise<void>;
}

export async function launchBrowser(pin: string): Promise<TestBrowser> {
  const profile = mkdtempSync(join(tmpdir(), "spacelift-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", `--ignore-certificate-errors-spki-list=${pin}`,
    ],
    viewport: { width: 1280, height: 900 },
  });
  return {
    context,
    async close() {
      await context.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
