// The web UI end to end, in Debian's chromium driven by playwright-core, against the compiled
// mothership and a real launcher with Docker: sign in; create a pool from a CSR; start a launcher
// with the token the page shows once; the worker IDLE with its tags; a stack made in the UI and a run
// triggered there: BUSY, log lines arriving live, the secret masked, FINISHED, IDLE again; drain
// (DRAINED, a new run stays QUEUED) and undrain; cancel a running run; requests without the session
// or with a wrong CSRF token refused. Every view is saved under dist/ui-screenshots/.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { buildBinaries, DemoWorld, type Binaries } from "../../scripts/demo/world.ts";
import { browserAvailable, launchBrowser, serverKeyPin, type TestBrowser } from "../support/browser.ts";
import { dockerTestEnv } from "../support/env.ts";
import { api, apiStatus, expectText, sessionCookie, shoot } from "./web-ui-helpers.ts";

setDefaultTimeout(180_000);
const docker = dockerTestEnv();
const haveBrowser = browserAvailable();
const SECRET = "tok-web-5d2a91";

describe.skipIf(!docker || !haveBrowser)("web UI in a real browser", () => {
  let bin: Binaries;
  let world: DemoWorld;
  let browser: TestBrowser;
  let page: Page;
  let url = "";
  let ca = "";
  let adminToken = "";
  let stackId = "";
  const gate = () => join(world.dir, "gate");

  beforeAll(async () => {
    bin = buildBinaries(() => {});
    world = new DemoWorld(bin, docker!.host, () => {});
    await world.startMothership();
    url = (JSON.parse(readFileSync(join(world.data, "endpoint.json"), "utf8")) as { http_url: string }).http_url;
    ca = readFileSync(join(world.data, "ca", "ca.crt"), "utf8");
    adminToken = readFileSync(join(world.data, "admin-token"), "utf8").trim();
    const { hostname, port } = new URL(url);
    browser = await launchBrowser(await serverKeyPin(hostname, Number(port), ca));
    page = await browser.context.newPage();
    mkdirSync(gate(), { recursive: true });
    // The documented step: the operator makes the key and CSR; the CSR goes into the UI.
    const r = spawnSync("openssl", ["req", "-new", "-newkey", "rsa:4096", "-nodes", "-keyout", "spacelift.key", "-out", "spacelift.csr", "-subj", "/CN=web-ui"], { cwd: world.dir, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`openssl req failed: ${r.stderr}`);
  });

  afterAll(async () => {
    await browser?.close();
    await world?.close();
  });

  test("sign in with the keyboard (a wrong token is refused), create a pool from a CSR: the token is shown once with the launcher's commands", async () => {
    await page.goto(`${url}/`);
    const token = page.getByLabel("Admin token");
    expect(await token.evaluate((el) => el === document.activeElement)).toBe(true);
    await shoot(page, "01-sign-in");
    await page.keyboard.type("msat_wrong");
    await page.keyboard.press("Enter");
    await expectText(page.locator("#notice"), "wrong admin token");
    await token.fill("");
    await token.focus();
    await page.keyboard.type(adminToken);
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "Worker pools" }).waitFor();

    // The session is an HttpOnly, Secure, SameSite=Strict cookie; the page keeps nothing readable.
    const cookies = await browser.context.cookies(url);
    expect(cookies).toHaveLength(1);
    expect(cookies[0]).toMatchObject({ name: "__Host-mothership_session", httpOnly: true, secure: true, sameSite: "Strict", path: "/" });
    expect(await page.evaluate(() => [document.cookie, localStorage.length, sessionStorage.length])).toEqual(["", 0, 0]);
    expect(page.url()).not.toContain(adminToken);

    await page.getByLabel("Name", { exact: true }).fill("web-pool");
    await page.getByLabel("Description (optional)").fill("made in the web UI");
    await page.getByLabel("Certificate signing request (spacelift.csr)").setInputFiles(join(world.dir, "spacelift.csr"));
    await page.waitForFunction(() => (document.getElementById("pool-csr") as HTMLTextAreaElement).value.includes("BEGIN CERTIFICATE REQUEST"));
    await expectText(page.locator("main"), "openssl req -new -newkey rsa:4096 -nodes -keyout spacelift.key -out spacelift.csr");
    await page.getByRole("button", { name: "Create pool" }).click();
    const shown = page.locator("#pool-token");
    await shown.waitFor();
    world.token = await shown.inputValue();
    world.pool = (JSON.parse(Buffer.from(world.token, "base64").toString("utf8")) as { pool: string }).pool;
    expect(await page.locator("#launcher-commands").textContent()).toBe(
      [`export SPACELIFT_TOKEN=${world.token}`, "export SPACELIFT_POOL_PRIVATE_KEY=$(cat spacelift.key | base64 -w 0)", "./spacelift-launcher"].join("\n"),
    );
    await expectText(page.locator("main"), "shown only this once");
    await page.getByRole("button", { name: "Copy token" }).click();
    await expectText(page.locator(".token-panel [role=status]"), /Copied|Copy failed/);
    await shoot(page, "02-pool-created-token-once");
    await page.getByRole("button", { name: "I saved it, hide the token" }).click();
    expect(await page.locator("#pool-token").count()).toBe(0);
    // The list shows it live, and nowhere else on the page is the token any more.
    await expectText(page.locator("#pool-list"), "0 busy / 0 total");
    expect(await page.content()).not.toContain(world.token.slice(0, 40));
    await shoot(page, "03-pools");
  });

  test("a launcher started with the shown token: its worker appears IDLE with its tags, without a reload", async () => {
    await page.getByRole("link", { name: "web-pool" }).click();
    await page.getByRole("tab", { name: "Workers" }).waitFor();
    world.startLauncher({ SPACELIFT_METADATA_instance_id: "i-web-1", SPACELIFT_WORKER_EXTRA_MOUNTS: `${gate()}:/mnt/gate:ro` });
    const row = page.locator("#tab-panel tbody tr");
    await expectText(row, "IDLE", 30_000);
    await expectText(row, "instance_id=i-web-1");
    await expectText(row, "host=demo-host");
    await expectText(row, process.arch === "arm64" ? "aarch64" : "x86_64");
    await shoot(page, "04-pool-workers-idle");
  });

  test("a stack made in the UI, a run triggered there: BUSY, the log arrives live with the secret masked, FINISHED, the worker IDLE again", async () => {
    await page.getByRole("link", { name: "Stacks" }).click();
    await page.getByRole("heading", { name: "Create a stack" }).waitFor();
    await page.getByLabel("Name", { exact: true }).fill("web-stack");
    await page.getByLabel("Worker pool").selectOption(world.pool);
    await page.getByLabel("Runner image").fill(docker!.image);
    await page.getByRole("button", { name: "Add a variable" }).click();
    await page.locator("[id^=env-name-]").fill("SECRET_TOKEN");
    await page.locator("[id^=env-secret-]").check();
    await page.locator("[id^=env-value-]").fill(SECRET);
    expect(await page.locator("[id^=env-value-]").getAttribute("type")).toBe("password");
    await page.locator("[id^=phase-name-]").fill("plan");
    await page.locator("[id^=phase-commands-]").fill("echo planning with $SECRET_TOKEN\necho line 1\nuntil [ -e /mnt/gate/open ]; do sleep 0.1; done\necho after the gate");
    await page.getByLabel("Labels (comma-separated, optional)").fill("web, e2e");
    await shoot(page, "05-stack-create");
    await page.getByRole("button", { name: "Create stack" }).click();
    await page.getByRole("heading", { name: "Stack web-stack" }).waitFor();
    stackId = decodeURIComponent(page.url().split("#/stacks/")[1] ?? "");
    await expectText(page.locator("main"), "secret (write-only)");
    expect(await page.content()).not.toContain(SECRET);
    await shoot(page, "06-stack");

    // A second tab on the pool's workers: it must change by itself while the run goes.
    const pool = await browser.context.newPage();
    await pool.goto(`${url}/#/pools/${world.pool}/workers`);
    await expectText(pool.locator("#tab-panel tbody tr"), "IDLE");

    await page.getByRole("button", { name: "Trigger run" }).click();
    await page.getByRole("heading", { name: /^Run / }).waitFor();
    const runId = decodeURIComponent(page.url().split("#/runs/")[1] ?? "");
    // Live: the first lines are on the page while the run still waits at the gate.
    await expectText(page.locator("#run-log"), "planning with *****\nline 1\n", 60_000);
    await expectText(page.locator("main dl"), "RUNNING");
    await expectText(pool.locator("#tab-panel tbody tr"), "BUSY");
    await shoot(page, "07-run-live");
    await shoot(pool, "08-pool-workers-busy");
    writeFileSync(join(gate(), "open"), "");
    await expectText(page.locator("main dl"), "FINISHED", 60_000);
    await expectText(page.locator("#run-log"), "after the gate\n");
    await expectText(page.locator("main"), "this is its whole log");
    await expectText(page.locator("main dl"), "ok");
    await expectText(page.locator("#run-phases"), /preparing[\s\S]*plan[\s\S]*\d+s/);
    expect(await page.content()).not.toContain(SECRET);
    expect(await page.locator("#run-log").textContent()).toBe("planning with *****\nline 1\nafter the gate\n");
    await expectText(pool.locator("#tab-panel tbody tr"), "IDLE");
    await shoot(page, "09-run-finished");
    const run = await api<{ state: string; worker: string }>(url, ca, adminToken, "GET", `/runs/${runId}`);
    expect(run.state).toBe("FINISHED");
    await pool.close();
  });

  test("drain: the worker DRAINED and a new run stays QUEUED; undrain: it runs", async () => {
    await page.goto(`${url}/#/pools/${world.pool}/workers`);
    const row = page.locator("#tab-panel tbody tr");
    await expectText(row, "IDLE");
    await page.getByRole("button", { name: /^Drain worker / }).click();
    await expectText(row, "DRAINED");
    expect(await page.getByRole("button", { name: /^Undrain worker / }).evaluate((el) => el === document.activeElement)).toBe(true);
    await shoot(page, "10-pool-workers-drained");

    await page.goto(`${url}/#/stacks/${stackId}`);
    await page.getByRole("button", { name: "Trigger run" }).click();
    await page.getByRole("heading", { name: /^Run / }).waitFor();
    const runId = decodeURIComponent(page.url().split("#/runs/")[1] ?? "");
    await expectText(page.locator("main dl"), "QUEUED");
    await page.goto(`${url}/#/pools/${world.pool}/queued`);
    await page.getByLabel("Show").selectOption("QUEUED");
    await expectText(page.locator("#tab-panel"), runId);
    await Bun.sleep(2_000);
    await expectText(page.locator("#tab-panel"), "QUEUED");
    expect((await api<{ state: string }>(url, ca, adminToken, "GET", `/runs/${runId}`)).state).toBe("QUEUED");
    await shoot(page, "11-pool-queued");
    await page.getByRole("tab", { name: "Used by" }).click();
    await expectText(page.locator("#tab-panel"), "web-stack");
    await shoot(page, "12-pool-used-by");

    await page.getByRole("tab", { name: "Workers" }).click();
    await page.getByRole("button", { name: /^Undrain worker / }).click();
    await expectText(page.locator("#tab-panel tbody tr"), /IDLE|BUSY/);
    await world.runEnded(runId);
    expect((await api<{ state: string }>(url, ca, adminToken, "GET", `/runs/${runId}`)).state).toBe("FINISHED");
  });

  test("cancel a running run from its page", async () => {
    const stack = await api<{ id: string }>(url, ca, adminToken, "POST", "/stacks", {
      name: "web-cancel", pool: world.pool, image: docker!.image, phases: [{ name: "plan", commands: ["echo waiting", "until [ -e /mnt/gate/never ]; do sleep 0.1; done"] }],
    });
    const run = await api<{ id: string }>(url, ca, adminToken, "POST", "/runs", { stack: stack.id });
    await page.goto(`${url}/#/runs/${run.id}`);
    await expectText(page.locator("#run-log"), "waiting\n", 60_000);
    await expectText(page.locator("main dl"), "RUNNING");
    await page.getByRole("button", { name: "Cancel run" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Cancel run" }).click();
    await expectText(page.locator("main dl"), "CANCELED", 60_000);
    expect(await page.getByRole("button", { name: "Cancel run" }).isHidden()).toBe(true);
    await shoot(page, "13-run-canceled");
  });

  test("without the session, or with a wrong or missing CSRF token, the API and the event streams refuse; sign-out ends the session", async () => {
    const cookie = await sessionCookie(browser.context, url);
    const { csrf } = (await (await fetch(`${url}/ui/session`, { headers: { cookie }, tls: { ca } })).json()) as { csrf: string };
    expect(csrf.length).toBeGreaterThan(20);
    // A change that changes nothing: undrain the workers with a tag none has.
    const change = `/api/v1/pools/${world.pool}/undrain`;
    const body = JSON.stringify({ tags: { nobody: "has-this" } });
    const json = { "content-type": "application/json" };
    expect(await apiStatus(url, ca, "GET", "/api/v1/pools", {})).toMatchObject({ status: 401, code: "unauthorized" });
    expect(await apiStatus(url, ca, "GET", "/ui/events?topic=pools", {})).toMatchObject({ status: 401 });
    expect(await apiStatus(url, ca, "GET", "/api/v1/pools", { cookie })).toMatchObject({ status: 200 });
    expect(await apiStatus(url, ca, "POST", change, { ...json, cookie }, body)).toMatchObject({ status: 403, code: "csrf-token-invalid" });
    expect(await apiStatus(url, ca, "POST", change, { ...json, cookie, "x-csrf-token": csrf.slice(0, -2) + "xx" }, body)).toMatchObject({ status: 403, code: "csrf-token-invalid" });
    expect(await apiStatus(url, ca, "POST", "/ui/sign-out", { cookie, "x-csrf-token": "nope" })).toMatchObject({ status: 403 });
    expect(await apiStatus(url, ca, "POST", change, { ...json, cookie: `__Host-mothership_session=${"A".repeat(43)}`, "x-csrf-token": csrf }, body)).toMatchObject({ status: 401 });
    expect(await apiStatus(url, ca, "POST", "/ui/session", { "content-type": "application/json", origin: "https://evil.example" }, JSON.stringify({ token: adminToken }))).toMatchObject({ status: 403 });
    expect(await apiStatus(url, ca, "POST", change, { ...json, cookie, "x-csrf-token": csrf }, body)).toMatchObject({ status: 200 });
    // The page itself, with its own token, gets through; the same call with a forged header does not.
    expect(await page.evaluate(async ([path, b]) => (await fetch(path!, { method: "POST", headers: { "x-csrf-token": "forged", "content-type": "application/json" }, body: b! })).status, [change, body])).toBe(403);

    await page.goto(`${url}/#/pools`);
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByLabel("Admin token").waitFor();
    await shoot(page, "14-signed-out");
    expect(await browser.context.cookies(url)).toEqual([]);
    expect(await apiStatus(url, ca, "GET", "/api/v1/pools", { cookie })).toMatchObject({ status: 401 });
  });

  test("a narrow screen: the pool page stacks its table into labelled rows", async () => {
    const narrow = await browser.context.newPage();
    await narrow.setViewportSize({ width: 390, height: 844 });
    await narrow.goto(`${url}/`);
    await narrow.getByLabel("Admin token").fill(adminToken);
    await narrow.getByRole("button", { name: "Sign in" }).click();
    await narrow.goto(`${url}/#/pools/${world.pool}/workers`);
    await expectText(narrow.locator("#tab-panel tbody tr"), "IDLE");
    expect(await narrow.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await shoot(narrow, "15-pool-workers-narrow");
    await narrow.close();
  });
});
