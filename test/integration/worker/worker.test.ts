import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { encodePhaseMarker, newMarkerNonce } from "../../../src/protocol/phase-markers.ts";
import { type Sandbox, runSpec, runWorker, sandbox, startWorker, waitForFile, writeInstructions } from "./harness.ts";

let box: Sandbox;
afterEach(() => box.cleanup());

describe("worker phases", () => {
  test("runs the phases in order in the project root and marks each phase", async () => {
    box = sandbox();
    writeInstructions(
      box,
      runSpec([
        { name: "initializing", commands: ["echo init", "printf 'no newline'"] },
        { name: "planning", commands: ["pwd"] },
        { name: "applying", commands: ["echo apply >&1"] },
      ]),
    );
    const result = await runWorker(box);
    expect(result.code).toBe(0);
    expect(result.events).toEqual([
      { phase: "initializing" },
      { out: "init\nno newline" },
      { phase: "planning" },
      { out: box.workspace + "\n" },
      { phase: "applying" },
      { out: "apply\n" },
    ]);
  });

  test("stops at the first failing command and exits with its status", async () => {
    box = sandbox();
    const marker = join(box.dir, "ran-after-failure");
    writeInstructions(
      box,
      runSpec([
        { name: "planning", commands: ["echo ok", "echo bad >&2; exit 42", `touch ${marker}`] },
        { name: "applying", commands: [`touch ${marker}`] },
      ]),
    );
    const result = await runWorker(box);
    expect(result.code).toBe(42);
    expect(result.events).toEqual([{ phase: "planning" }, { out: "ok\n" }]);
    expect(result.stderr).toContain("bad\n");
    expect(result.stderr).toContain("command 2 of 3 in phase planning failed with exit status 42");
    expect(existsSync(marker)).toBe(false);
  });

  test("commands read end-of-file from stdin instead of waiting for input", async () => {
    box = sandbox();
    writeInstructions(box, runSpec([{ name: "planning", commands: ['read answer; echo "read status $?"'] }]));
    const result = await runWorker(box, { openStdin: true });
    expect(result.events).toEqual([{ phase: "planning" }, { out: "read status 1\n" }]);
  });

  test("a command killed by a signal yields 128 + n", async () => {
    box = sandbox();
    writeInstructions(box, runSpec([{ name: "planning", commands: ["kill -KILL $$"] }]));
    expect((await runWorker(box)).code).toBe(137);
  });

  test("commands get the container env plus the run's variables, never the nonce", async () => {
    box = sandbox();
    const run = runSpec([{ name: "planning", commands: ['echo "$FROM_CONTAINER/$TF_VAR_x/$OVERRIDDEN"', "env"] }], {
      environment: [
        { name: "TF_VAR_x", value: "from-run" },
        { name: "OVERRIDDEN", value: "by-run", secret: true },
      ],
    });
    writeInstructions(box, run);
    const result = await runWorker(box, { env: { FROM_CONTAINER: "yes", OVERRIDDEN: "container" } });
    expect(result.code).toBe(0);
    const out = result.events[1] as { out: string };
    expect(out.out.split("\n")[0]).toBe("yes/from-run/by-run");
    expect(result.stdout).toContain(box.nonce); // In the markers...
    expect(out.out).not.toContain(box.nonce); // ...but in nothing a command can see.
  });

  test("deletes the instructions file before the first command", async () => {
    box = sandbox();
    writeInstructions(box, runSpec([{ name: "planning", commands: [`test -e ${box.specPath} && echo present || echo absent`, `grep -r ${box.nonce} ${box.dir} || echo not-found`] }]));
    const result = await runWorker(box);
    expect(result.events).toEqual([{ phase: "planning" }, { out: "absent\nnot-found\n" }]);
    expect(existsSync(box.specPath)).toBe(false);
  });

  test("output that imitates a marker stays output", async () => {
    box = sandbox();
    const fake = join(box.dir, "fake-marker");
    writeFileSync(fake, encodePhaseMarker(newMarkerNonce(), "applying"));
    // Also the shape with a nonce-like word and without the leading newline.
    const command = `cat ${fake}; printf '\\036%s phase applying\\n' 0123456789abcdef`;
    writeInstructions(box, runSpec([{ name: "planning", commands: [command] }]));
    const result = await runWorker(box);
    expect(result.code).toBe(0);
    expect(result.events.filter((e) => "phase" in e)).toEqual([{ phase: "planning" }]);
    const out = (result.events[1] as { out: string }).out;
    expect(out.match(/\x1e[0-9a-f]+ phase applying\n/g)?.length).toBe(2);
  });

  test("forwards SIGTERM to the command's process group and exits with its status", async () => {
    box = sandbox();
    const ready = join(box.dir, "ready");
    const trapped = join(box.dir, "trapped");
    const child = join(box.dir, "child-got-term");
    const script = [
      `(trap 'echo child > ${child}; exit 0' TERM; touch ${ready}-child; while :; do sleep 0.05; done) &`,
      `trap 'echo parent > ${trapped}; wait; exit 3' TERM`,
      `touch ${ready}`,
      "while :; do sleep 0.05; done",
    ].join("\n");
    writeInstructions(box, runSpec([{ name: "planning", commands: [script] }, { name: "applying", commands: ["echo never"] }]));
    const { proc, result } = startWorker(box);
    await waitForFile(ready);
    await waitForFile(`${ready}-child`);
    proc.kill("SIGTERM");
    const { code, events, stderr } = await result;
    expect(code).toBe(3);
    expect(readFileSync(trapped, "utf8")).toBe("parent\n");
    expect(readFileSync(child, "utf8")).toBe("child\n");
    expect(events).toEqual([{ phase: "planning" }]);
    expect(stderr).toContain("stopped by SIGTERM");
  });

  test("a signalled command that exits 0 still fails the run, and nothing else starts", async () => {
    box = sandbox();
    const ready = join(box.dir, "ready");
    const script = `trap 'exit 0' INT; touch ${ready}; while :; do sleep 0.05; done`;
    writeInstructions(box, runSpec([{ name: "planning", commands: [script, "echo never"] }]));
    const { proc, result } = startWorker(box);
    await waitForFile(ready);
    proc.kill("SIGINT");
    const { code, stdout } = await result;
    expect(code).toBe(130);
    expect(stdout).not.toContain("never");
  });

  test("bad instructions fail with a message naming the field", async () => {
    box = sandbox();
    writeInstructions(box, runSpec([{ name: "Not Valid", commands: [] }]));
    const result = await runWorker(box);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("run.phases.0.name");
    expect(result.stdout).toBe("");
    expect(existsSync(box.specPath)).toBe(false);
  });

  test("a missing project root fails the run before any phase", async () => {
    box = sandbox();
    writeInstructions(box, runSpec([{ name: "planning", commands: ["echo never"] }], { stack: { id: "s", name: "S", branch: "main", repository: "r", project_root: "nope" } }));
    const result = await runWorker(box);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('the project root "nope" does not exist');
    expect(result.stdout).toBe("");
  });
});
