/**
 * The log spool: every chunk of a run's output is written here before it is published, and stays until
 * the mothership acknowledges it (`log_ack`, cumulative). After a reconnect or a launcher restart the
 * unacknowledged chunks are read back and sent again; the mothership stores each (run, seq) once, so
 * a resend can never duplicate a line and a lost connection can never drop one.
 *
 * Layout under the spool dir, one folder per run:
 *   <run>/meta.json         {run, worker, finished}: who produced it and, once known, the final result
 *   <run>/<first seq>.seg   records [u32 seq][u32 length][bytes], appended; a new segment every ~1 MiB
 * A fully acknowledged segment is deleted, so disk use follows what is in flight, not the run's size.
 * A torn record at the end of a segment (the launcher died mid-write) is ignored on reading.
 */
import { mkdir, open, readdir, readFile, rm, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { errorMessage, SpaceliftError } from "../../errors.ts";
import type { Logger } from "../../log/logger.ts";
import type { RunReason } from "../../protocol/states.ts";
import type { LogChunk } from "../run-executor.ts";

export interface FinishedRun {
  exit_code: number | null;
  reason: RunReason;
  last_seq: number;
}

export interface SpooledRun {
  run: string;
  /** The worker id that ran it: the mothership takes a run's logs only from its own worker. */
  worker: string;
  finished: FinishedRun | null;
}

interface Segment {
  first: number;
  last: number;
  bytes: number;
  path: string;
}

interface RunSpool {
  meta: SpooledRun;
  dir: string;
  segments: Segment[];
  /** Every chunk with seq <= acked is stored by the mothership. */
  acked: number;
  /** Appends are serialized per run so records never interleave. */
  tail: Promise<void>;
}

const SEGMENT_BYTES = 1 << 20;
const RUN_ID = /^[0-9A-Za-z_-]{1,128}$/;

export class LogSpool {
  private readonly runs = new Map<string, RunSpool>();

  private constructor(
    private readonly dir: string,
    private readonly log: Logger,
  ) {}

  /** Opens (creating) the spool dir and loads what a previous launcher left. */
  static async open(dir: string, logger: Logger): Promise<LogSpool> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const spool = new LogSpool(dir, logger.child({ component: "spool" }));
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      if (!entry.isDirectory() || !RUN_ID.test(entry.name)) continue;
      await spool.load(entry.name);
    }
    return spool;
  }

  private async load(run: string): Promise<void> {
    const dir = join(this.dir, run);
    let meta: SpooledRun;
    try {
      meta = JSON.parse(await readFile(join(dir, "meta.json"), "utf8")) as SpooledRun;
    } catch {
      this.log.warn("spooled run without readable metadata removed", { run });
      await rm(dir, { recursive: true, force: true });
      return;
    }
    const segments: Segment[] = [];
    for (const name of (await readdir(dir)).filter((n) => n.endsWith(".seg")).sort()) {
      const path = join(dir, name);
      const records = parseRecords(await readFile(path));
      if (records.length === 0) continue;
      segments.push({ first: records[0]!.seq, last: records.at(-1)!.seq, bytes: SEGMENT_BYTES, path });
    }
    segments.sort((a, b) => a.first - b.first);
    this.runs.set(run, { meta, dir, segments, acked: -1, tail: Promise.resolve() });
  }

  /** Runs with chunks or a result not yet confirmed, oldest first. */
  list(): SpooledRun[] {
    return [...this.runs.values()].map((r) => ({ ...r.meta }));
  }

  /** Runs held and their chunks not acknowledged yet (for /metrics). */
  depth(): { runs: number; chunks: number } {
    let chunks = 0;
    for (const r of this.runs.values()) chunks += Math.max(0, (r.segments.at(-1)?.last ?? -1) - r.acked);
    return { runs: this.runs.size, chunks };
  }

  /** The highest seq the mothership acknowledged for `run` (-1 when none). */
  ackedSeq(run: string): number {
    return this.runs.get(run)?.acked ?? -1;
  }

  /** The highest seq written for `run` (-1 when none). */
  lastSeq(run: string): number {
    return this.runs.get(run)?.segments.at(-1)?.last ?? -1;
  }

  async begin(run: string, worker: string): Promise<void> {
    if (!RUN_ID.test(run)) throw new RangeError(`run id ${JSON.stringify(run)} cannot name a spool folder`);
    if (this.runs.has(run)) return;
    const dir = join(this.dir, run);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const meta: SpooledRun = { run, worker, finished: null };
    await writeFile(join(dir, "meta.json"), JSON.stringify(meta));
    this.runs.set(run, { meta, dir, segments: [], acked: -1, tail: Promise.resolve() });
  }

  /** Appends one chunk; resolves when it is on disk. Chunks of a run come in seq order, from 0. */
  append({ run, seq, data }: LogChunk): Promise<void> {
    const r = this.runs.get(run);
    if (!r) return Promise.reject(new RangeError(`run ${run} is not in the spool`));
    const write = r.tail.then(async () => {
      let seg = r.segments.at(-1);
      if (!seg || seg.bytes >= SEGMENT_BYTES) {
        seg = { first: seq, last: seq, bytes: 0, path: join(r.dir, `${String(seq).padStart(12, "0")}.seg`) };
        r.segments.push(seg);
      }
      // The record's header and the chunk's own bytes in one write: the chunk is not copied into a record.
      const header = new Uint8Array(8);
      const view = new DataView(header.buffer);
      view.setUint32(0, seq);
      view.setUint32(4, data.length);
      try {
        await appendRecord(seg.path, header, data);
      } catch (err) {
        // Usually a full disk: say where, so the run's failure (and its messages) names what to fix.
        throw new SpaceliftError("spool-write-failed", `cannot write the run's output to the log spool ${this.dir} (${errorMessage(err)}); free space on that disk or give SPACELIFT_LAUNCHER_SCRATCH_DIR more room`, { cause: err });
      }
      seg.last = seq;
      seg.bytes += 8 + data.length;
    });
    r.tail = write.catch(() => {});
    return write;
  }

  /** The mothership stored every chunk <= seq: drop whole segments below it; forget a finished run. */
  async ack(run: string, seq: number): Promise<void> {
    const r = this.runs.get(run);
    if (!r || seq <= r.acked) return;
    r.acked = seq;
    await r.tail;
    // The last segment may still grow; it goes only with the run.
    while (r.segments.length > 1 && r.segments[0]!.last <= seq) {
      const seg = r.segments.shift()!;
      await unlink(seg.path).catch(() => {});
    }
    await this.dropIfDone(r);
  }

  /** Records the run's final result (kept until every chunk is acknowledged). */
  async finish(run: string, result: FinishedRun): Promise<void> {
    const r = this.runs.get(run);
    if (!r) return;
    await r.tail;
    r.meta = { ...r.meta, finished: result };
    await writeFile(join(r.dir, "meta.json"), JSON.stringify(r.meta));
    await this.dropIfDone(r);
  }

  private async dropIfDone(r: RunSpool): Promise<void> {
    const finished = r.meta.finished;
    if (!finished || r.acked < finished.last_seq) return;
    this.runs.delete(r.meta.run);
    await rm(r.dir, { recursive: true, force: true });
  }

  /** Forgets a run whatever its state (e.g. the mothership no longer knows it). */
  async discard(run: string): Promise<void> {
    const r = this.runs.get(run);
    if (!r) return;
    this.runs.delete(run);
    await r.tail;
    await rm(r.dir, { recursive: true, force: true });
  }

  /** The chunks of `run` not acknowledged yet, read back from disk one segment at a time. */
  async *unacked(run: string): AsyncGenerator<LogChunk> {
    const r = this.runs.get(run);
    if (!r) return;
    for (const seg of [...r.segments]) {
      if (seg.last <= r.acked) continue;
      let bytes: Buffer;
      try {
        bytes = await readFile(seg.path);
      } catch {
        continue; // acknowledged and deleted meanwhile
      }
      for (const rec of parseRecords(bytes)) if (rec.seq > r.acked) yield { run, ...rec };
    }
  }
}

/** Appends header + data to the file (created 0600 when missing); a short write is completed, never left torn. */
async function appendRecord(path: string, header: Uint8Array, data: Uint8Array): Promise<void> {
  const file = await open(path, "a", 0o600);
  try {
    let parts = [header, data];
    let left = header.length + data.length;
    while (left > 0) {
      const { bytesWritten } = await file.writev(parts);
      left -= bytesWritten;
      parts = remaining(parts, bytesWritten);
    }
  } finally {
    await file.close();
  }
}

function remaining(parts: Uint8Array[], written: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const part of parts) {
    if (written >= part.length) written -= part.length;
    else {
      out.push(written === 0 ? part : part.subarray(written));
      written = 0;
    }
  }
  return out;
}

function parseRecords(bytes: Uint8Array): Array<{ seq: number; data: Uint8Array }> {
  const out: Array<{ seq: number; data: Uint8Array }> = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  while (at + 8 <= bytes.length) {
    const seq = view.getUint32(at);
    const len = view.getUint32(at + 4);
    if (at + 8 + len > bytes.length) break; // torn tail
    out.push({ seq, data: bytes.slice(at + 8, at + 8 + len) });
    at += 8 + len;
  }
  return out;
}
