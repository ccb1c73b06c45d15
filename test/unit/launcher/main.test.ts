// The multi-call entry point: dispatch, --help for each command, unknown commands.
import { describe, expect, test } from "bun:test";
import { main, type Io } from "../../../src/launcher/main.ts";

function capture(): Io & { out: string; err: string } {
  const io = { out: "", err: "", stdout: (t: string) => void (io.out += t), stderr: (t: string) => void (io.err += t) };
  return io;
}

describe("spacelift-launcher entry", () => {
  test("--help lists the commands", async () => {
    const io = capture();
    expect(await main(["--help"], {}, io)).toBe(0);
    for (const c of ["worker", "check", "version"]) expect(io.out).toContain(`  ${c}`);
  });

  test.each(["worker", "check", "version"])("%s --help prints its usage and exits 0", async (cmd) => {
    const io = capture();
    expect(await main([cmd, "--help"], {}, io)).toBe(0);
    expect(io.out).toStartWith(`usage: spacelift-launcher ${cmd}`);
  });

  test("version prints program, version, commit and target", async () => {
    const io = capture();
    expect(await main(["version"], {}, io)).toBe(0);
    expect(io.out).toMatch(/^spacelift-launcher \S+ \(commit \S+, linux-\S+/);
  });

  test("an unknown command is one clear line and exit 2", async () => {
    const io = capture();
    expect(await main(["frobnicate"], {}, io)).toBe(2);
    expect(io.err).toBe('spacelift-launcher: unknown command "frobnicate"; run `spacelift-launcher --help` for the list\n');
  });
});
