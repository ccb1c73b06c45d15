/**
 * The worker's own writes to the container's stdout/stderr: phase markers and short notes for the
 * run log. Synchronous, so a marker is on the pipe before the next command starts and the order of
 * markers and command output on stdout is exact.
 */
import { writeSync } from "node:fs";

/** Writes all of `data` to `fd`, waiting out a full non-blocking pipe instead of dropping bytes. */
function writeFully(fd: number, data: Uint8Array): void {
  let offset = 0;
  while (offset < data.length) {
    try {
      offset += writeSync(fd, data, offset, data.length - offset);
    } catch (error) {
      if ((error as { code?: unknown }).code !== "EAGAIN") throw error;
      Bun.sleepSync(5);
    }
  }
}

export interface WorkerOutput {
  /** Writes a phase marker (already encoded) to stdout. */
  marker(bytes: Uint8Array): void;
  /** One line for the run log, from the worker itself. Never throws. */
  say(line: string): void;
}

export function fdOutput(stdoutFd = 1, stderrFd = 2): WorkerOutput {
  const encoder = new TextEncoder();
  return {
    marker: (bytes) => writeFully(stdoutFd, bytes),
    say: (line) => {
      try {
        writeFully(stderrFd, encoder.encode(`[spacelift-worker] ${line}\n`));
      } catch {
        // Nowhere left to report to.
      }
    },
  };
}
