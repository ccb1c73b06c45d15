/**
 * The data dir is private: a server started on a fresh dir leaves it 0700 with every file 0600
 * (without relying on the process umask: the server runs in this test process, umask untouched); a dir
 * made by hand or an older version with 0755 and 0644 files is fixed at start, secret files with a
 * warning; a dir owned by another user is refused with a message that says what to do.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, chownSync, mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createLogger } from "../../../src/log/logger.ts";
import { prepareDataDir } from "../../../src/mothership/data-dir.ts";
import { startServer, tempDir } from "./harness.ts";

setDefaultTimeout(30_000);

let dir: Awaited<ReturnType<typeof tempDir>>;
beforeAll(async () => {
  dir = await tempDir("mothership-data-dir-");
});
afterAll(async () => {
  await dir?.remove();
});

const mode = (path: string) => (statSync(path).mode & 0o777).toString(8);

/** Every path below `root` (relative) with its mode, dirs included. */
function modes(root: string, rel = ""): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(join(root, rel))) {
    const path = join(root, rel, name);
    out[rel + name] = `${statSync(path).isDirectory() ? "dir" : "file"} ${mode(path)}`;
    if (statSync(path).isDirectory()) Object.assign(out, modes(root, `${rel}${name}/`));
  }
  return out;
}

function capture() {
  const lines: Array<{ level: string; msg: string; [k: string]: unknown }> = [];
  const logger = createLogger({ level: "debug", pretty: false, write: (l) => lines.push(JSON.parse(l) as (typeof lines)[number]) });
  return { logger, lines };
}

describe("a fresh data dir", () => {
  test("while the first start runs, the dir is 0700 and every file in it and below 0600 (db, -wal and -shm too)", async () => {
    const data = join(dir.path, "fresh", "data");
    const oldUmask = process.umask(0o022);
    let all: Record<string, string>;
    try {
      const server = await startServer(data);
      try {
        all = modes(data);
      } finally {
        await server.stop();
      }
    } finally {
      process.umask(oldUmask);
    }
    expect(mode(data)).toBe("700");
    expect(Object.keys(all)).toEqual(
      expect.arrayContaining(["admin-token", "ca", "ca/ca.crt", "ca/ca.key", "endpoint.json", "mothership.db", "mothership.db-shm", "mothership.db-wal", "secrets.key"]),
    );
    for (const [path, m] of Object.entries(all)) expect(`${path}: ${m}`).toBe(`${path}: ${m.startsWith("dir") ? "dir 700" : "file 600"}`);
  });
});

describe("an existing data dir open to others", () => {
  test("a 0755 dir with a 0644 ca.key, admin-token and db is fixed at start: secrets with a warning, the rest logged", async () => {
    const data = join(dir.path, "loose");
    // A first start makes everything; then loosen it as an old version or a careless copy would.
    await (await startServer(data)).stop();
    chmodSync(data, 0o755);
    chmodSync(join(data, "ca"), 0o755);
    chmodSync(join(data, "ca", "ca.key"), 0o644);
    chmodSync(join(data, "admin-token"), 0o644);
    chmodSync(join(data, "mothership.db"), 0o644);
    chmodSync(join(data, "ca", "ca.crt"), 0o644);
    chmodSync(join(data, "secrets.key"), 0o640);

    const { logger, lines } = capture();
    await prepareDataDir(data, logger);
    expect(mode(data)).toBe("700");
    for (const [path, m] of Object.entries(modes(data))) expect(`${path}: ${m}`).toBe(`${path}: ${m.startsWith("dir") ? "dir 700" : "file 600"}`);

    expect(lines).toContainEqual(expect.objectContaining({ level: "info", msg: expect.stringContaining("data dir was open to group/others"), was: "0755", now: "0700" }));
    const warned = lines.filter((l) => l.level === "warn").map((l) => l.path);
    expect(warned.sort()).toEqual([join(data, "admin-token"), join(data, "ca", "ca.key"), join(data, "secrets.key")]);
    expect(lines).toContainEqual(
      expect.objectContaining({ level: "info", fixed: expect.arrayContaining(["ca (was 0755)", "ca/ca.crt (was 0644)", "mothership.db (was 0644)"]) }),
    );

    // A second look finds nothing to fix and says nothing.
    const again = capture();
    await prepareDataDir(data, again.logger);
    expect(again.lines).toEqual([]);
  });

  test("a server started on a loose dir comes up with it fixed", async () => {
    const data = join(dir.path, "loose-start");
    mkdirSync(join(data, "ca"), { recursive: true, mode: 0o755 });
    chmodSync(data, 0o755);
    writeFileSync(join(data, "admin-token"), "msat_handmade\n", { mode: 0o644 });
    const server = await startServer(data);
    try {
      expect(server.adminToken).toBe("msat_handmade");
    } finally {
      await server.stop();
    }
    expect(mode(data)).toBe("700");
    expect(mode(join(data, "admin-token"))).toBe("600");
    expect(mode(join(data, "ca"))).toBe("700");
  });

  test("a dir owned by another user is refused, naming the owner and how to fix it; nothing in it is touched", async () => {
    const data = join(dir.path, "foreign");
    mkdirSync(data, { mode: 0o755 });
    writeFileSync(join(data, "admin-token"), "x\n", { mode: 0o644 });
    chownSync(data, 65534, 65534);
    const { logger } = capture();
    const err = await prepareDataDir(data, logger).then(() => null, (e: unknown) => e as Error & { code?: string });
    expect(err?.code).toBe("data-dir-unsafe");
    expect(err?.message).toContain(`the data dir ${data} is owned by uid 65534, not by this user (uid ${process.getuid?.()})`);
    expect(err?.message).toContain("chown -R");
    expect(mode(data)).toBe("755");
    expect(mode(join(data, "admin-token"))).toBe("644");
  });
});
