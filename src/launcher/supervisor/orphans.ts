/**
 * Orphan cleanup at launcher start, before the first run: the containers of this pool labelled with
 * this launcher's identity (launcher-identity.ts, kept in its scratch dir across restarts) can only be
 * left over from an earlier process of this launcher — nothing runs yet — whatever worker id they
 * carry. Each is removed, its workspace with it, and its run reported (the agent reports it as
 * `launcher-crashed`). Containers of other launchers are never touched, also of the same pool on the
 * same Docker daemon: they may be running a sibling's live run.
 */
import type { DockerClient } from "../../docker/types.ts";
import type { Logger } from "../../log/logger.ts";
import { errorMessage } from "../../errors.ts";
import { ULID_PATTERN } from "../../protocol/ulid.ts";
import { removeContainer } from "./container-ops.ts";
import { LABEL_RUN, LABEL_WORKER, launcherFilter } from "./labels.ts";
import { removeWorkspace, workspaceDir } from "./workspace.ts";

const LIST_TIMEOUT_MS = 30_000;

export interface OrphanCleanupOptions {
  docker: DockerClient;
  poolId: string;
  launcherId: string;
  scratchDir: string;
  logger: Logger;
  report: (runId: string) => Promise<void>;
}

/** Returns how many containers were removed. A container that cannot be removed is logged and skipped. */
export async function cleanupOrphans(options: OrphanCleanupOptions): Promise<number> {
  const { docker, logger } = options;
  const containers = await docker.containerList({ labels: launcherFilter(options.poolId, options.launcherId), all: true, signal: AbortSignal.timeout(LIST_TIMEOUT_MS) });
  let removed = 0;
  const reported = new Set<string>();
  for (const c of containers) {
    const run = c.labels[LABEL_RUN];
    try {
      await removeContainer(docker, c.id);
    } catch (error) {
      logger.warn("cannot remove an orphaned run container", { container: c.id, run, error: errorMessage(error) });
      continue;
    }
    removed++;
    logger.info("removed an orphaned run container", { container: c.id, run, worker: c.labels[LABEL_WORKER] });
    if (run === undefined || reported.has(run)) continue;
    reported.add(run);
    // Run ids are ULIDs; a label that is not one names no workspace we made.
    if (ULID_PATTERN.test(run)) {
      const problem = await removeWorkspace(workspaceDir(options.scratchDir, run));
      if (problem !== undefined) logger.warn(problem, { run });
    }
    await options.report(run);
  }
  return removed;
}
