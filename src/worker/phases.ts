/**
 * The run's phases, in order: each command through `/bin/sh -c` in the project root; the first
 * command that fails ends the run with its exit status.
 */
import type { RunPhase } from "../protocol/run-spec.ts";
import type { WorkerOutput } from "./output.ts";
import { type ProcessGroupRunner, SpawnFailure, signalStatus } from "./process-group.ts";
import { errorMessage } from "../errors.ts";

export interface PhaseContext {
  runner: ProcessGroupRunner;
  cwd: string;
  env: Record<string, string>;
  output: WorkerOutput;
  /** Marks the start of a phase on stdout. */
  mark: (phase: string) => void;
  shell?: string;
}

/**
 * Runs `phases`; resolves with 0 when every command succeeded, otherwise the failing command's
 * status (128 + n for a signal). After a stop signal nothing new starts, and a command that exits
 * 0 after being signalled still yields a non-zero status: the run did not complete.
 */
export async function runPhases(phases: readonly RunPhase[], ctx: PhaseContext): Promise<number> {
  const shell = ctx.shell ?? "/bin/sh";
  for (const phase of phases) {
    if (ctx.runner.stoppedBy !== null) return signalStatus(ctx.runner.stoppedBy);
    ctx.mark(phase.name);
    for (const [index, command] of phase.commands.entries()) {
      const result = await ctx.runner.run(shell, ["-c", command], { cwd: ctx.cwd, env: ctx.env });
      const where = `command ${index + 1} of ${phase.commands.length} in phase ${phase.name}`;
      if (result instanceof SpawnFailure) {
        ctx.output.say(`${where} could not start ${shell}: ${errorMessage(result.error)}`);
        return result.exitCode;
      }
      const stoppedBy = ctx.runner.stoppedBy;
      if (stoppedBy !== null) {
        ctx.output.say(`${where} stopped by ${stoppedBy} (exit status ${result})`);
        return result !== 0 ? result : signalStatus(stoppedBy);
      }
      if (result !== 0) {
        ctx.output.say(`${where} failed with exit status ${result}`);
        return result;
      }
    }
  }
  return 0;
}
