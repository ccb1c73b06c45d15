/**
 * The worker id (DESIGN §6): a ULID made at launcher start — unless the spool holds output of runs
 * that a previous launcher on this scratch dir did not get acknowledged. The mothership accepts a
 * run's logs only from the worker that held the run, so the new launcher resumes that identity until
 * the spool is empty; after that every start is a fresh worker again.
 */
import type { SpooledRun } from "./log-spool.ts";

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

export function newUlid(now = Date.now()): string {
  let time = "";
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32]! + time;
    t = Math.floor(t / 32);
  }
  const random = crypto.getRandomValues(new Uint8Array(16));
  return time + Array.from(random, (b) => CROCKFORD[b % 32]!).join("");
}

/** The id to use and the spooled runs that belong to another (older) identity and cannot be delivered. */
export function chooseWorkerId(spooled: readonly SpooledRun[], make: () => string = newUlid): { worker: string; resumed: boolean; undeliverable: string[] } {
  // Run ids are ULIDs too: the newest run names the most recent identity.
  const newest = [...spooled].sort((a, b) => (a.run < b.run ? 1 : -1))[0];
  if (!newest) return { worker: make(), resumed: false, undeliverable: [] };
  return { worker: newest.worker, resumed: true, undeliverable: spooled.filter((s) => s.worker !== newest.worker).map((s) => s.run) };
}
