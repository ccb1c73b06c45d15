// A log chunk lost on the way while the connection stays up is sent again: the spool keeps it until the
// mothership acknowledges it, and a run whose outstanding chunks see no acknowledgement for two heartbeats
// gets them again (waiting twice as long each time the mothership still does not take them).
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LogShipper } from "../../../src/launcher/agent/log-shipper.ts";
import { LogSpool } from "../../../src/launcher/agent/log-spool.ts";
import { silentLogger } from "../../../src/log/logger.ts";
import type { UplinkMessage } from "../../../src/protocol/messages.ts";

const RUN = "01RUNSTALLED0000000000000A";
let dir: string;
let spool: LogSpool;
let sent: number[];
/** Seqs the "network" loses the first time they are sent. */
let lose: Set<number>;
let shipper: LogShipper;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "log-shipper-"));
  spool = await LogSpool.open(dir, silentLogger);
  sent = [];
  lose = new Set();
  shipper = new LogShipper(spool, {
    send: async (m: UplinkMessage) => {
      if (m.type !== "log") return;
      if (lose.delete(m.seq)) return;
      sent.push(m.seq);
    },
  }, silentLogger);
  shipper.setOnline(true);
  await spool.begin(RUN, "W1");
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const chunk = (seq: number) => ({ run: RUN, seq, data: new TextEncoder().encode(`line ${seq}\n`) });

/** What the mothership would acknowledge: the highest seq with every one before it stored. */
const watermark = () => {
  let acked = -1;
  while (sent.includes(acked + 1)) acked++;
  return acked;
};

describe("log chunks lost while connected", () => {
  test("a chunk lost on the way is sent again after two heartbeats without progress, then acknowledged", async () => {
    lose.add(2);
    for (let seq = 0; seq < 5; seq++) await shipper.ship(chunk(seq));
    await Bun.sleep(5);
    await spool.ack(RUN, watermark());
    expect(spool.ackedSeq(RUN)).toBe(1);
    expect(await shipper.resendStalled()).toBe(0); // first look: remembered
    expect(await shipper.resendStalled()).toBe(0); // one quiet heartbeat
    expect(await shipper.resendStalled()).toBe(3); // two: chunks 2, 3 and 4 again
    await Bun.sleep(5);
    await spool.ack(RUN, watermark());
    expect(spool.ackedSeq(RUN)).toBe(4);
    for (let i = 0; i < 5; i++) expect(await shipper.resendStalled()).toBe(0);
  });

  test("acknowledgements that keep coming mean no resend, however long the run", async () => {
    for (let seq = 0; seq < 20; seq++) {
      await shipper.ship(chunk(seq));
      await Bun.sleep(1);
      // The mothership is one chunk behind: always something outstanding, always progress.
      await spool.ack(RUN, seq - 1);
      expect(await shipper.resendStalled()).toBe(0);
    }
  });

  test("a run the mothership never acknowledges is resent ever more rarely (2, 4, 8... heartbeats)", async () => {
    lose.add(0);
    await shipper.ship(chunk(0));
    const resentAt: number[] = [];
    for (let beat = 0; beat < 40; beat++) {
      lose.add(0);
      if ((await shipper.resendStalled()) > 0) resentAt.push(beat);
    }
    expect(resentAt).toEqual([2, 6, 14, 30]);
  });

  test("offline, nothing is sent: the resend after the next registration does it", async () => {
    lose.add(0);
    await shipper.ship(chunk(0));
    shipper.setOnline(false);
    for (let beat = 0; beat < 5; beat++) expect(await shipper.resendStalled()).toBe(0);
    shipper.setOnline(true);
    expect(await shipper.resend()).toBe(1);
    expect(sent).toEqual([0]);
  });
});
