// The worker with a run_as user, run as root on this host (whose /etc/passwd has nobody, 65534): it
// deletes the root-only instructions, hands the workspace to the user and runs the commands as it with
// the user's HOME and USER; a user the system does not know fails the run before any command.
import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { hostCapability } from "../../support/env.ts";
import { NOBODY } from "../../support/unprivileged.ts";
import { type Sandbox, runSpec, runWorker, sandbox } from "./harness.ts";

const asRoot = hostCapability("root (the worker drops to another user)", process.getuid?.() === 0);
let box: Sandbox | undefined;
afterEach(() => box?.cleanup());

function instruct(b: Sandbox, user: string, phases: Array<{ name: string; commands: string[] }>): void {
  // Only the modes of the workspace itself may matter, not a private temp dir above it.
  chmodSync(b.dir, 0o755);
  writeFileSync(b.specPath, JSON.stringify({ run: runSpec(phases), marker_nonce: b.nonce, run_as: { user, image_home: false } }), { mode: 0o600 });
}

describe.skipIf(!asRoot)("worker: run as the image's user", () => {
  test("the commands run as nobody with its HOME and USER in a workspace nobody owns; the instructions are gone", async () => {
    box = sandbox();
    instruct(box, "nobody", [{ name: "planning", commands: [
      "echo $(id -u):$(id -g) $HOME $USER",
      "echo data > written && stat -c %u written",
      `test -e ${box.specPath} && echo instructions-present || echo instructions-gone`,
    ] }]);
    const result = await runWorker(box, { env: { HOME: "/root" } });
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.events).toEqual([{ phase: "planning" }, { out: `${NOBODY}:${NOBODY} /nonexistent nobody\n${NOBODY}\ninstructions-gone\n` }]);
    expect(statSync(box.workspace).uid).toBe(NOBODY);
    expect(statSync(join(box.workspace, "written")).uid).toBe(NOBODY);
  });

  test("a failing command still reports its own status when run as another user", async () => {
    box = sandbox();
    instruct(box, `${NOBODY}:${NOBODY}`, [{ name: "planning", commands: ["exit 7"] }]);
    const result = await runWorker(box);
    expect(result.code).toBe(7);
  });

  test("a user name the system does not know: exit 1, one clear line, no phase, the instructions deleted all the same", async () => {
    box = sandbox();
    instruct(box, "no-such-user-h8", [{ name: "planning", commands: ["echo never"] }]);
    const result = await runWorker(box);
    expect(result.code).toBe(1);
    expect(result.events).toEqual([]);
    expect(result.stderr).toContain(`USER "no-such-user-h8" is not in the image's /etc/passwd`);
    expect(existsSync(box.specPath)).toBe(false);
    expect(statSync(box.workspace).uid).toBe(0);
  });
});
