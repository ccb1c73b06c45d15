/**
 * The worker id (src/protocol/README.md): a ULID made at launcher start — unless the spool holds output of runs
 * that a previous launcher on this scratch dir did not get acknowledged. The mothership accepts a
 * run's logs only from the worker that held the run, so the new launcher resumes that identity until
 * the spool is empty; after that every start is a fresh worker again.
 */
import { ulid } from "../../protocol/ulid.ts";
import type { SpooledRun } from "./log-spool.ts";

/** The id to use and the spooled runs that belong to another (older) identity and cannot be delivered. */
export function chooseWorkerId(spooled: readonly SpooledRun[], make: () => string = ulid): { worker: string; resumed: boolean; undeliverable: string[] } {
  // Run ids are ULIDs too: the newest run names the most recent identity.
  const newest = [...spooled].sort((a, b) => (a.run < b.run ? 1 : -1))[0];
  if (!newest) return { worker: make(), resumed: false, undeliverable: [] };
  return { worker: newest.worker, resumed: true, undeliverable: spooled.filter((s) => s.worker !== newest.worker).map((s) => s.run) };
}
