// What makes a scratch dir one launcher's: the identity file (made once, 0600, the same on every later
// start, a foreign content refused with a clear message) and the lock (held by a live process only:
// another process is refused with the holder's pid; a SIGKILLed holder frees it at once).
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { SpaceliftError } from "../../../src/errors.ts";
import { LOCK_FILE, lockScratchDir } from "../../../src/launcher/agent/scratch-lock.ts";
import { LAUNCHER_ID_FILE, launcherIdentity } from "../../../src/launcher/supervisor/launcher-identity.ts";
import { ULID_PATTERN } from "../../../src/protocol/ulid.ts";

const ROOT = resolve(import.meta.dir, "../../..");
let dir = "";
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function failure(fn: () => unknown): SpaceliftError {
  try {
    fn();
  } catch (error) {
    if (error instanceof SpaceliftError) return error;
    throw error;
  }
  throw new Error("expected a SpaceliftError");
}

describe("launcher identity", () => {
  test("made on the first start (0600, one ULID), then the same on every later one", () => {
    dir = join(mkdtempSync(join(tmpdir(), "fleet-")), "scratch-not-yet-made");
    const id = launcherIdentity(dir);
    expect(id).toMatch(ULID_PATTERN);
    const path = join(dir, LAUNCHER_ID_FILE);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readFileSync(path, "utf8")).toBe(`${id}\n`);
    expect(launcherIdentity(dir)).toBe(id);
  });

  test("a file that holds something else is refused, naming the file and what to do", () => {
    dir = mkdtempSync(join(tmpdir(), "fleet-"));
    for (const content of ["not-an-id\n", "", `${"0".repeat(26)}${" ".repeat(80)}`]) {
      writeFileSync(join(dir, LAUNCHER_ID_FILE), content);
      const error = failure(() => launcherIdentity(dir));
      expect(error.code).toBe("launcher-identity");
      expect(error.message).toContain(`${join(dir, LAUNCHER_ID_FILE)} does not hold a launcher identity (one ULID); remove the file`);
    }
  });
});

describe("scratch dir lock", () => {
  test("a second holder in another process is refused with the first one's pid; SIGKILL frees the dir", async () => {
    dir = mkdtempSync(join(tmpdir(), "fleet-"));
    const script = `import { lockScratchDir } from ${JSON.stringify(join(ROOT, "src/launcher/agent/scratch-lock.ts"))};
      lockScratchDir(${JSON.stringify(dir)}); console.log("locked"); setInterval(() => {}, 1000);`;
    const holder = Bun.spawn([process.execPath, "-e", script], { stdout: "pipe", stderr: "inherit" });
    try {
      const reader = holder.stdout.getReader();
      const first = await reader.read();
      expect(new TextDecoder().decode(first.value)).toBe("locked\n");
      expect(readFileSync(join(dir, LOCK_FILE), "utf8")).toBe(`${holder.pid}\n`);
      const error = failure(() => lockScratchDir(dir));
      expect(error.code).toBe("scratch-dir-in-use");
      expect(error.message).toBe(
        `another launcher (pid ${holder.pid}) is using the scratch dir ${dir}; several launchers on one host need one SPACELIFT_LAUNCHER_SCRATCH_DIR each`,
      );
      holder.kill("SIGKILL");
      await holder.exited;
      // No stale lock to clean: the kernel dropped it with the process.
      const mine = lockScratchDir(dir);
      expect(readFileSync(join(dir, LOCK_FILE), "utf8")).toBe(`${process.pid}\n`);
      mine.release();
    } finally {
      holder.kill("SIGKILL");
    }
  });

  test("within one process too a second lock is refused until the first is released", () => {
    dir = mkdtempSync(join(tmpdir(), "fleet-"));
    const first = lockScratchDir(dir);
    expect(failure(() => lockScratchDir(dir)).code).toBe("scratch-dir-in-use");
    first.release();
    lockScratchDir(dir).release();
  });
});
