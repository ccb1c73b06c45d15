/**
 * Labels on every container the launcher creates: they are how a restarted launcher finds
 * what a previous one left behind, and how an operator tells our containers apart with
 * `docker ps --filter label=io.spacelift.managed=true`.
 * @testSeam
 */
export const LABEL_MANAGED = "io.spacelift.managed";
/** @testSeam */
export const LABEL_POOL = "io.spacelift.pool";
export const LABEL_WORKER = "io.spacelift.worker";
/**
 * The launcher's identity (launcher-identity.ts): constant across its restarts, unlike the worker id.
 * @testSeam
 */
export const LABEL_LAUNCHER = "io.spacelift.launcher";
export const LABEL_RUN = "io.spacelift.run";
const LABEL_STACK = "io.spacelift.stack";

export interface LabelOwner {
  poolId: string;
  workerId: string;
  launcherId: string;
}

export function runLabels(owner: LabelOwner, run: { id: string; stackId: string }): Record<string, string> {
  return {
    [LABEL_MANAGED]: "true",
    [LABEL_POOL]: owner.poolId,
    [LABEL_WORKER]: owner.workerId,
    [LABEL_LAUNCHER]: owner.launcherId,
    [LABEL_RUN]: run.id,
    [LABEL_STACK]: run.stackId,
  };
}

/**
 * The filter for the managed containers of a pool made by one launcher (on the daemon asked): other
 * launchers of the pool may share the daemon, and their containers are theirs.
 */
export function launcherFilter(poolId: string, launcherId: string): Record<string, string> {
  return { [LABEL_MANAGED]: "true", [LABEL_POOL]: poolId, [LABEL_LAUNCHER]: launcherId };
}
