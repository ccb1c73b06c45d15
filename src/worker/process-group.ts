/**
 * Runs the worker's children (user commands, git) one at a time, each as the leader of its own
 * process group, and forwards termination signals to that whole group: a command's own children
 * (terraform's providers, a `make` tree) get the signal too, exactly as they would from a
 * terminal's Ctrl-C. Output is inherited, never piped through the worker, so nothing can be lost
 * or reordered by us. Stdin is /dev/null: nobody can answer a prompt in a run, so a command that
 * asks (terraform without -input=false) fails at once instead of hanging until the logs timeout.
 */
import { spawn } from "node:child_process";
import { constants } from "node:os";

export interface RunOptions {
  cwd: string;
  env: Record<string, string>;
}

/** Exit status in shell convention: the code, or 128 + n when killed by signal n. */
export type ExitStatus = number;

/** What went wrong before the command could even start (e.g. /bin/sh missing). */
export class SpawnFailure {
  constructor(
    readonly exitCode: ExitStatus,
    readonly error: unknown,
  ) {}
}

export class ProcessGroupRunner {
  /**
   * @param user when set, every child runs with this uid and gid (and no supplementary groups):
   *   the runner image's non-root user, while the worker itself stays root.
   */
  constructor(private readonly user?: { uid: number; gid: number }) {}

  /** Pids of children that are running; the zombie reaper must leave them to the runtime. */
  private readonly live = new Set<number>();
  private current: number | null = null;
  /** The first termination signal received, if any: once set no new command is started. */
  private stopSignal: NodeJS.Signals | null = null;

  isOwnChild = (pid: number): boolean => this.live.has(pid);

  /** The signal that asked the worker to stop, or null. */
  get stoppedBy(): NodeJS.Signals | null {
    return this.stopSignal;
  }

  /**
   * Runs `file args` to completion. Resolves with its exit status, or a SpawnFailure when it could
   * not start. Does not start anything once a stop signal arrived (resolves 128 + n at once).
   */
  async run(file: string, args: string[], options: RunOptions): Promise<ExitStatus | SpawnFailure> {
    if (this.stopSignal !== null) return signalStatus(this.stopSignal);
    return new Promise((resolve) => {
      const child = spawn(file, args, {
        cwd: options.cwd, env: options.env, stdio: ["ignore", "inherit", "inherit"], detached: true,
        ...(this.user !== undefined ? { uid: this.user.uid, gid: this.user.gid } : {}),
      });
      const pid = child.pid;
      if (pid !== undefined) {
        this.live.add(pid);
        this.current = pid;
      }
      let settled = false;
      const finish = (status: ExitStatus | SpawnFailure): void => {
        if (settled) return;
        settled = true;
        if (pid !== undefined) this.live.delete(pid);
        if (this.current === pid) this.current = null;
        resolve(status);
      };
      child.once("error", (error) => finish(new SpawnFailure(spawnErrorStatus(error), error)));
      child.once("exit", (code, signal) => finish(code ?? signalStatus(signal ?? "SIGKILL")));
    });
  }

  /**
   * Forwards `signal` to the running command's process group and remembers it so that nothing
   * else starts. Safe to call at any time, any number of times.
   */
  forward(signal: NodeJS.Signals): void {
    this.stopSignal ??= signal;
    if (this.current === null) return;
    try {
      process.kill(-this.current, signal);
    } catch {
      // The group is already gone: its exit event is on its way.
    }
  }
}

/** 128 + the signal's number, as a shell reports a command killed by it. */
export function signalStatus(signal: NodeJS.Signals): number {
  return 128 + (constants.signals[signal] ?? 9);
}

function spawnErrorStatus(error: unknown): number {
  const code = (error as { code?: unknown }).code;
  if (code === "ENOENT") return 127; // As a shell reports "command not found".
  return 126; // "found but cannot be executed" (EACCES and the like).
}
