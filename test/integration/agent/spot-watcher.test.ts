// The spot watcher against a tiny IMDSv2 server on loopback (the one fake this project allows: EC2's
// metadata service cannot exist here). It must use a session token, treat 404 as "no notice", renew a
// rejected token, and fire exactly once when a notice appears; an agent that gets it drains.
import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { SpotWatcher } from "../../../src/launcher/agent/spot-watcher.ts";
import { silentLogger } from "../../../src/log/logger.ts";
import { startImds } from "./fake-imds.ts";

setDefaultTimeout(15_000);

describe("spot watcher (IMDSv2)", () => {
  const stops: Array<() => void> = [];
  afterEach(() => {
    for (const s of stops.splice(0)) s();
  });

  test("polls with a session token, sees nothing on 404, fires once on a notice", async () => {
    const imds = startImds();
    stops.push(imds.stop);
    const notices: Array<{ action: string; time: string | null }> = [];
    const watcher = new SpotWatcher({ endpoint: imds.url, logger: silentLogger, onNotice: (n) => notices.push(n), intervalMs: 50 });
    stops.push(() => watcher.stop());
    watcher.start();
    await Bun.sleep(300);
    expect(notices).toEqual([]);
    expect(imds.requests.filter((r) => r.startsWith("PUT"))).toHaveLength(1);
    expect(imds.requests.filter((r) => r.startsWith("GET")).length).toBeGreaterThan(2);

    imds.revokeTokens();
    await Bun.sleep(200);
    expect(imds.requests.filter((r) => r.startsWith("PUT")).length).toBeGreaterThanOrEqual(2);

    imds.announce();
    const t0 = Date.now();
    while (notices.length === 0 && Date.now() - t0 < 2_000) await Bun.sleep(10);
    expect(notices).toEqual([{ action: "terminate", time: "2030-01-01T00:00:00Z" }]);
    const after = imds.requests.length;
    await Bun.sleep(200);
    expect(imds.requests.length).toBe(after);
    expect(notices).toHaveLength(1);
  });

  test("an endpoint that does not answer is not an error: polling goes on", async () => {
    const imds = startImds();
    imds.stop(); // nothing listens on that port any more
    const watcher = new SpotWatcher({ endpoint: imds.url, logger: silentLogger, onNotice: () => {
      throw new Error("no notice expected");
    }, intervalMs: 20, requestTimeoutMs: 100 });
    watcher.start();
    await Bun.sleep(200);
    watcher.stop();
  });
});
