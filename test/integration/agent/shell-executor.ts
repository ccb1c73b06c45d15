/**
 * A small real executor for agent tests: runs each phase's commands with `/bin/sh -c` on this host (no
 * Docker), masks the run's secrets with the launcher's LogMasker, reports phases and chunks to the sink
 * exactly as the run supervisor's contract says, and stops the command on abort. It keeps what it was
 * asked to do so tests can assert that nothing ran.
 */
import { LogMasker } from "../../../src/launcher/log-masker.ts";
import type { RunExecutor, RunResult, RunSink } from "../../../src/launcher/run-executor.ts";
import { runSecrets, type RunSpec } from "../../../src/protocol/run-spec.ts";

export class ShellExecutor implements RunExecutor {
  readonly executed: string[] = [];
  /** Every chunk handed to the sink, by run, unmasked order preserved. */
  readonly output = new Map<string, string>();
  private readonly live = new Set<() => void>();

  /** Kills whatever is still running, as the death of the launcher's host would. */
  killAll(): void {
    for (const kill of this.live) kill();
  }

  async execute(spec: RunSpec, sink: RunSink, signal: AbortSignal): Promise<RunResult> {
    this.executed.push(spec.id);
    const masker = new LogMasker(runSecrets(spec));
    let seq = 0;
    const emit = async (parts: Uint8Array[]) => {
      for (const bytes of parts) {
        this.output.set(spec.id, (this.output.get(spec.id) ?? "") + new TextDecoder().decode(bytes));
        await sink.log({ run: spec.id, seq: seq++, data: bytes });
      }
    };
    const env: Record<string, string> = { PATH: process.env.PATH ?? "/usr/bin:/bin" };
    for (const e of spec.environment) env[e.name] = e.value;
    sink.phase(spec.id, "preparing");
    let exitCode = 0;
    for (const phase of spec.phases) {
      if (signal.aborted) break;
      sink.phase(spec.id, phase.name);
      for (const command of phase.commands) {
        // Its own process group (setsid), so a stop reaches the command's children too, as in a container.
        const proc = Bun.spawn(["setsid", "/bin/sh", "-c", command], { env, stdout: "pipe", stderr: "pipe" });
        const kill = () => {
          try {
            process.kill(-proc.pid, "SIGTERM");
          } catch {
            proc.kill("SIGTERM");
          }
        };
        signal.addEventListener("abort", kill, { once: true });
        this.live.add(kill);
        for await (const chunk of proc.stdout) await emit(masker.write(chunk));
        exitCode = await proc.exited;
        signal.removeEventListener("abort", kill);
        this.live.delete(kill);
        if (exitCode !== 0 || signal.aborted) break;
      }
      if (exitCode !== 0 || signal.aborted) break;
    }
    await emit(masker.end());
    const reason = signal.aborted ? "cancelled" : exitCode === 0 ? "ok" : "failed";
    return { run: spec.id, exitCode, reason, lastSeq: seq - 1, messages: [] };
  }
}
