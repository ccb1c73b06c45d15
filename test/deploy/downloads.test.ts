/**
 * `/downloads/*` in-process behind `createApi`: the release files with their content types and no
 * admin token, and nothing else — no other name, no path out of the directory, no symlink, nothing
 * over the size bound, only GET. (The boot-script test downloads through a running mothership.)
 */
import "reflect-metadata";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "../../src/log/logger.ts";
import { ControlPlane } from "../../src/mothership/control.ts";
import { createApi } from "../../src/mothership/http/api.ts";
import { MAX_DOWNLOAD_BYTES } from "../../src/mothership/http/downloads.ts";
import { PoolService } from "../../src/mothership/pool-service.ts";
import { openStore } from "../../src/mothership/store/index.ts";
import { loadOrCreateCa } from "../../src/pki/ca.ts";

const dir = mkdtempSync(join(tmpdir(), "downloads-"));
const release = join(dir, "release");
const binary = randomBytes(300_000);
let withRelease: (req: Request) => Promise<Response>;
let withoutRelease: (req: Request) => Promise<Response>;

beforeAll(async () => {
  mkdirSync(release);
  writeFileSync(join(release, "spacelift-launcher-x86_64"), binary);
  writeFileSync(join(release, "SHA256SUMS"), "0".repeat(64) + "  spacelift-launcher-x86_64\n");
  writeFileSync(join(release, "SHA256SUMS.asc"), "-----BEGIN PGP SIGNATURE-----\n");
  writeFileSync(join(dir, "outside.txt"), "not for download");
  writeFileSync(join(release, "notes.txt"), "not a release name");
  symlinkSync(join(dir, "outside.txt"), join(release, "spacelift-launcher-aarch64"));
  // Sparse: one byte over the bound without writing 256 MiB.
  writeFileSync(join(release, "SHA256SUMS.sig"), "");
  truncateSync(join(release, "SHA256SUMS.sig"), MAX_DOWNLOAD_BYTES + 1);
  const ca = await loadOrCreateCa(join(dir, "ca"));
  const make = async (downloadsDir: string | undefined) => {
    const store = await openStore(":memory:");
    const logger = createLogger({ level: "error", pretty: false, write: () => {} });
    const control = new ControlPlane({ store, logger, heartbeatSeconds: 10, scheduleTimeoutMs: 60_000, outbox: { deliver: async () => {} } });
    const pools = new PoolService(store, ca, { brokerEndpoint: "mqtts://127.0.0.1:8883", namespace: "spacelift", commsUrl: "https://127.0.0.1:8080" });
    return createApi({ store, control, pools, adminToken: "msat_admin", disconnectPool: () => {}, downloadsDir, logger });
  };
  withRelease = await make(release);
  withoutRelease = await make(undefined);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const get = (api: (req: Request) => Promise<Response>, path: string, method = "GET") => api(new Request(`https://127.0.0.1:8080${path}`, { method }));

describe("/downloads", () => {
  test("serves the launcher, SHA256SUMS and its signature without the admin token, with their content types", async () => {
    const res = await get(withRelease, "/downloads/spacelift-launcher-x86_64");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/octet-stream");
    expect(res.headers.get("content-length")).toBe(String(binary.length));
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(Buffer.from(await res.arrayBuffer()).equals(binary)).toBe(true);
    const sums = await get(withRelease, "/downloads/SHA256SUMS");
    expect(sums.headers.get("content-type")).toBe("text/plain; charset=utf-8");
    expect(await sums.text()).toContain("  spacelift-launcher-x86_64\n");
    expect((await get(withRelease, "/downloads/SHA256SUMS.asc")).headers.get("content-type")).toBe("application/pgp-signature");
  });

  test("a name that is not a release file is a 404 listing the names, even when the file exists", async () => {
    const res = await get(withRelease, "/downloads/notes.txt");
    expect(res.status).toBe(404);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("not-found");
    expect(body.error.message).toContain("spacelift-launcher-x86_64, spacelift-launcher-aarch64, SHA256SUMS");
  });

  test("no path leaves the directory: encoded slashes and dot segments are not served", async () => {
    for (const path of ["/downloads/..%2Foutside.txt", "/downloads/%2E%2E%2Foutside.txt", "/downloads/x/..%2F..%2Foutside.txt"]) {
      const res = await get(withRelease, path);
      expect(res.status, path).toBe(404);
      expect(await res.text(), path).not.toContain("not for download");
    }
    // Dot segments are resolved before routing: this one asks for the admin API, which wants its token.
    expect((await get(withRelease, "/downloads/%2e%2e/api/v1/pools")).status).toBe(401);
  });

  test("a symlink is refused, and so is a file over the size bound", async () => {
    const link = await get(withRelease, "/downloads/spacelift-launcher-aarch64");
    expect(link.status).toBe(404);
    expect(await link.text()).toContain("not a regular file");
    const big = await get(withRelease, "/downloads/SHA256SUMS.sig");
    expect(big.status).toBe(404);
    expect(await big.text()).toContain(`larger than ${MAX_DOWNLOAD_BYTES} bytes`);
  });

  test("only GET; and a mothership without a release says how to give it one", async () => {
    const post = await get(withRelease, "/downloads/SHA256SUMS", "POST");
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET");
    const none = await get(withoutRelease, "/downloads/SHA256SUMS");
    expect(none.status).toBe(404);
    expect(await none.text()).toContain("--downloads DIR");
  });
});
