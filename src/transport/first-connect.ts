/**
 * What both transports' `connect()` returns: a promise settled by the first successful connection,
 * by the caller's abort, or by `close()` — whichever comes first. Later connections settle nothing.
 */
import { SpaceliftError } from "../errors.ts";

export class FirstConnect {
  private pending: { resolve: () => void; reject: (err: unknown) => void } | null = null;

  /** `peer` names the other end in the abort message ("the broker", "the mothership"). */
  wait(peer: string, signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        this.pending = null;
        reject(new SpaceliftError("transport-aborted", `gave up connecting to ${peer}`, { cause: signal?.reason }));
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      const settle = () => signal?.removeEventListener("abort", onAbort);
      this.pending = {
        resolve: () => {
          settle();
          resolve();
        },
        reject: (err) => {
          settle();
          reject(err);
        },
      };
    });
  }

  connected(): void {
    this.pending?.resolve();
    this.pending = null;
  }

  closed(): void {
    this.pending?.reject(closedError());
    this.pending = null;
  }
}

export function closedError(): SpaceliftError {
  return new SpaceliftError("transport-closed", "the transport is closed");
}
