// The log spool on a real temp dir: chunks survive a restart until acknowledged, acknowledged segments
// are deleted, a torn record is ignored, and a finished run is forgotten once fully acknowledged.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { appendFile, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LogSpool } from "../../../src/launcher/agent/log-spool.ts";
import { chooseWorkerId } from "../../../src/launcher/agent/worker-id.ts";
import { silentLogger } from "../../../src/log/logger.ts";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "spool-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const RUN = "01J0000000000000000000000A";
const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

async function collect(spool: LogSpool, run: string): Promise<Array<[number, string]>> {
  const out: Array<[number, string]> = [];
  for await (const c of spool.unacked(run)) out.push([c.seq, text(c.data)]);
  return out;
}

describe("log spool", () => {
  test("unacknowledged chunks are read back, also by a new launcher on the same dir", async () => {
    const spool = await LogSpool.open(dir, silentLogger);
    await spool.begin(RUN, "W1");
    for (let seq = 0; seq < 5; seq++) await spool.append({ run: RUN, seq, data: bytes(`line ${seq}\n`) });
    await spool.ack(RUN, 1);
    expect(await collect(spool, RUN)).toEqual([[2, "line 2\n"], [3, "line 3\n"], [4, "line 4\n"]]);

    const again = await LogSpool.open(dir, silentLogger);
    expect(again.list()).toEqual([{ run: RUN, worker: "W1", finished: null }]);
    expect(again.lastSeq(RUN)).toBe(4);
    // A restart does not know the watermark: everything is resent, the mothership deduplicates.
    expect((await collect(again, RUN)).map(([s]) => s)).toEqual([0, 1, 2, 3, 4]);
  });

  test("a torn record at the end (crash mid-write) is ignored", async () => {
    const spool = await LogSpool.open(dir, silentLogger);
    await spool.begin(RUN, "W1");
    await spool.append({ run: RUN, seq: 0, data: bytes("whole\n") });
    const [seg] = (await readdir(join(dir, RUN))).filter((n) => n.endsWith(".seg"));
    await appendFile(join(dir, RUN, seg!), new Uint8Array([0, 0, 0, 1, 0, 0, 0, 50, 65, 66]));
    const again = await LogSpool.open(dir, silentLogger);
    expect(await collect(again, RUN)).toEqual([[0, "whole\n"]]);
  });

  test("acknowledged segments are deleted; a finished, fully acknowledged run disappears", async () => {
    const spool = await LogSpool.open(dir, silentLogger);
    await spool.begin(RUN, "W1");
    const big = new Uint8Array(300 * 1024).fill(97);
    for (let seq = 0; seq < 10; seq++) await spool.append({ run: RUN, seq, data: big });
    const segments = async () => (await readdir(join(dir, RUN))).filter((n) => n.endsWith(".seg")).length;
    expect(await segments()).toBe(3);
    await spool.ack(RUN, 7);
    expect(await segments()).toBe(1);
    expect((await collect(spool, RUN)).map(([s]) => s)).toEqual([8, 9]);
    await spool.finish(RUN, { exit_code: 0, reason: "ok", last_seq: 9 });
    expect(spool.list()).toHaveLength(1);
    await spool.ack(RUN, 9);
    expect(spool.list()).toEqual([]);
    expect(await readdir(dir)).toEqual([]);
  });

  test("a run that printed nothing is forgotten when it finishes", async () => {
    const spool = await LogSpool.open(dir, silentLogger);
    await spool.begin(RUN, "W1");
    await spool.finish(RUN, { exit_code: 0, reason: "ok", last_seq: -1 });
    expect(spool.list()).toEqual([]);
  });

  test("worker identity: resumed from the newest spooled run, fresh otherwise", () => {
    expect(chooseWorkerId([], () => "NEW")).toEqual({ worker: "NEW", resumed: false, undeliverable: [] });
    const spooled = [
      { run: "01J0000000000000000000000A", worker: "OLD", finished: null },
      { run: "01J0000000000000000000000B", worker: "W2", finished: null },
    ];
    expect(chooseWorkerId(spooled, () => "NEW")).toEqual({ worker: "W2", resumed: true, undeliverable: ["01J0000000000000000000000A"] });
  });
});
