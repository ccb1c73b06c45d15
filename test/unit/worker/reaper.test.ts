import { afterEach, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ZombieReaper, parseStat } from "../../../src/worker/reaper.ts";

describe("parseStat", () => {
  test("reads state and parent after the last parenthesis, whatever the command name", () => {
    expect(parseStat("42 (sleep) Z 1 42 42 0 -1 4194308")).toEqual({ state: "Z", ppid: 1 });
    expect(parseStat("43 (a) b (c) d) S 17 43 43")).toEqual({ state: "S", ppid: 17 });
    expect(parseStat("garbage")).toBeNull();
  });
});

describe("ZombieReaper", () => {
  let dir = "";
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test("waits only for zombies whose parent is us and that are not our own children", () => {
    dir = mkdtempSync(join(tmpdir(), "reaper-"));
    const procs: Record<string, string> = {
      "10": "10 (orphan) Z 1 1 1",
      "11": "11 (running) S 1 1 1",
      "12": "12 (own child) Z 1 1 1",
      "13": "13 (someone else's) Z 7 1 1",
      "14": "14 (x) y) Z 1 1 1",
    };
    for (const [pid, stat] of Object.entries(procs)) {
      mkdirSync(join(dir, pid));
      writeFileSync(join(dir, pid, "stat"), stat);
    }
    mkdirSync(join(dir, "self"));
    const waited: number[] = [];
    const reaper = new ZombieReaper({
      procDir: dir,
      selfPid: 1,
      isOwnChild: (pid) => pid === 12,
      waitpidNoHang: (pid) => (waited.push(pid), pid === 14 ? 0 : pid),
    });
    expect(reaper.reapOnce().sort()).toEqual([10]);
    expect(waited.sort()).toEqual([10, 14]);
  });
});
