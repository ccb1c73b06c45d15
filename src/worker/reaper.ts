/**
 * Zombie reaping for a worker that is PID 1. Orphaned grandchildren (a daemon a command started,
 * a `cmd &` whose shell exited) are re-parented to PID 1; when they exit nobody waits for them
 * and they stay zombies, filling the pid table over a long run. The kernel's usual reaper, init,
 * is us.
 *
 * We must not call waitpid(-1): the runtime waits for the worker's own children (the commands) by
 * pid to learn their exit status, and a wildcard wait would steal it. So we scan /proc for zombies
 * whose parent is us and that are not one of our own children, and wait for exactly those pids.
 */
import { readdirSync, readFileSync } from "node:fs";

export interface ReaperOptions {
  /** waitpid(pid, WNOHANG). */
  waitpidNoHang: (pid: number) => number;
  /** Our pid (1 in the container). */
  selfPid: number;
  /** True for a pid the runtime spawned for us and will wait for itself. */
  isOwnChild: (pid: number) => boolean;
  procDir?: string;
}

export class ZombieReaper {
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(private readonly options: ReaperOptions) {}

  /** One pass: reaps every orphaned zombie found now; returns their pids. Never throws. */
  reapOnce(): number[] {
    const reaped: number[] = [];
    for (const pid of this.orphanedZombies()) {
      if (this.options.waitpidNoHang(pid) === pid) reaped.push(pid);
    }
    return reaped;
  }

  /** Reaps every `intervalMs` until stop(); the timer does not keep the process alive. */
  start(intervalMs: number): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => this.reapOnce(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  private orphanedZombies(): number[] {
    const procDir = this.options.procDir ?? "/proc";
    let entries: string[];
    try {
      entries = readdirSync(procDir);
    } catch {
      return [];
    }
    const found: number[] = [];
    for (const entry of entries) {
      if (!/^\d+$/.test(entry)) continue;
      const pid = Number(entry);
      if (this.options.isOwnChild(pid)) continue;
      let stat: string;
      try {
        stat = readFileSync(`${procDir}/${entry}/stat`, "latin1");
      } catch {
        continue; // Gone meanwhile.
      }
      const parsed = parseStat(stat);
      if (parsed !== null && parsed.state === "Z" && parsed.ppid === this.options.selfPid) found.push(pid);
    }
    return found;
  }
}

/**
 * `/proc/<pid>/stat` is "pid (comm) state ppid ...", where comm may itself contain spaces and
 * parentheses: the fields after it start after the LAST ")".
 * @testSeam
 */
export function parseStat(stat: string): { state: string; ppid: number } | null {
  const close = stat.lastIndexOf(")");
  if (close === -1) return null;
  const fields = stat.slice(close + 2).split(" ");
  const state = fields[0];
  const ppid = Number(fields[1]);
  if (state === undefined || !Number.isInteger(ppid)) return null;
  return { state, ppid };
}
