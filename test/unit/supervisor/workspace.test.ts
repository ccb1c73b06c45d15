// The run workspace on a temp dir: a fresh directory per run, the worker instructions readable by
// the launcher's user only (they carry the run's secrets and the phase-marker nonce), never
// overwritten, and everything removed afterwards.
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SpaceliftError } from "../../../src/errors.ts";
import { INSTRUCTIONS_FILE, createWorkspace, removeWorkspace, writeInstructions } from "../../../src/launcher/supervisor/workspace.ts";
import { newMarkerNonce } from "../../../src/protocol/phase-markers.ts";
import { parseRunSpec } from "../../../src/protocol/run-spec.ts";

const RUN = "01HZY8Q3V6X9J2K4M5N6P7R8S9";
let scratch = "";
afterEach(() => rmSync(scratch, { recursive: true, force: true }));

function instructions() {
  const run = parseRunSpec({
    id: RUN, type: "TRACKED",
    stack: { id: "s", name: "S", branch: "main", repository: "org/repo" },
    commit: { hash: "abc", branch: "main", author: "Ada", message: "msg" },
    environment: [{ name: "TOKEN", value: "secret-value", secret: true }],
    phases: [{ name: "planning", commands: ["true"] }],
  });
  return { run, marker_nonce: newMarkerNonce(), vcs_mapping: {} };
}

describe("run workspace", () => {
  test("the instructions file is 0600 whatever the umask, holds the instructions, and is never overwritten", async () => {
    scratch = mkdtempSync(join(tmpdir(), "workspace-test-"));
    const dir = await createWorkspace(scratch, RUN);
    expect(dir).toBe(join(scratch, "workspaces", RUN));
    const old = process.umask(0);
    try {
      const given = instructions();
      expect(await writeInstructions(dir, given)).toBe(INSTRUCTIONS_FILE);
      const path = join(dir, INSTRUCTIONS_FILE);
      expect(statSync(path).mode & 0o777).toBe(0o600);
      expect(JSON.parse(readFileSync(path, "utf8"))).toEqual(JSON.parse(JSON.stringify(given)));
      const again = await writeInstructions(dir, instructions()).then(() => null, (e: unknown) => e);
      expect(again instanceof SpaceliftError && again.code).toBe("workspace-failed");
      expect(JSON.parse(readFileSync(path, "utf8")).marker_nonce).toBe(given.marker_nonce);
    } finally {
      process.umask(old);
    }
  });

  test("a new workspace replaces what an earlier attempt of the run left; removal takes everything", async () => {
    scratch = mkdtempSync(join(tmpdir(), "workspace-test-"));
    const dir = await createWorkspace(scratch, RUN);
    writeFileSync(join(dir, "left-over"), "x");
    await createWorkspace(scratch, RUN);
    expect(existsSync(join(dir, "left-over"))).toBe(false);
    await writeInstructions(dir, instructions());
    expect(await removeWorkspace(dir)).toBeUndefined();
    expect(existsSync(dir)).toBe(false);
  });
});
