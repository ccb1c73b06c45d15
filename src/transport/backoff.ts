/**
 * Reconnect delays: exponential with jitter, so that a fleet of launchers cut off by the same broker
 * restart does not come back in lock step. Policy as data; the function is pure given its random source.
 */
export interface BackoffPolicy {
  /** Delay before the first retry, before jitter. */
  readonly initialMs: number;
  /** Ceiling of the exponential growth. */
  readonly maxMs: number;
  readonly factor: number;
  /** Fraction of the delay that is random: 0.5 gives a delay in [d/2, d]. */
  readonly jitter: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = Object.freeze({ initialMs: 500, maxMs: 30_000, factor: 2, jitter: 0.5 });

/** The delay before retry number `attempt` (0 for the first retry after a drop). */
export function backoffDelay(policy: BackoffPolicy, attempt: number, random: () => number = Math.random): number {
  const exp = Math.min(policy.maxMs, policy.initialMs * policy.factor ** Math.max(0, attempt));
  const jitter = Math.min(1, Math.max(0, policy.jitter));
  return Math.round(exp * (1 - jitter) + exp * jitter * random());
}
