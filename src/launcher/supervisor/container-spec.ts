/**
 * What a run container looks like (see src/launcher/supervisor/README.md), as a pure function of the run, the launcher's
 * configuration and the prepared host paths — so it can be tested without Docker and printed under
 * SPACELIFT_DEBUG exactly as it is sent.
 *
 * - The image's ENTRYPOINT and CMD are replaced: the worker from the read-only bundle is PID 1
 *   (`init: false`, Docker's tini would take PID 1 away from it).
 * - Environment: the launcher's whitelisted variables for this run kind, the masked variables, then
 *   the run's own NON-secret variables. The run's secrets reach the commands through the worker
 *   instructions file only (the worker deletes it before any command runs): in the container's
 *   configuration they would be readable by anyone allowed to `docker inspect` on the host.
 * - Mounts: the workspace, the bundle (read-only), and the operator's extra mounts for every run plus
 *   those for this run kind. Nothing else: no Docker socket unless the operator mounts one.
 * - Never privileged (the Docker client has no way to ask for it).
 * - User: an image whose USER is not root still starts as root (`User: "0"`), so that the worker can
 *   read the root-only instructions; the worker then hands the workspace to the image's user and runs
 *   git and the commands as that user (`runAsUser`, the worker's run-as.ts).
 */
import { SpaceliftError } from "../../errors.ts";
import { environmentForRun } from "../../config/env-lists.ts";
import type { LauncherConfig } from "../../config/launcher-config.ts";
import { normalizeMountPath } from "../../config/mounts.ts";
import type { ContainerSpec, ImageInfo, Mount } from "../../docker/types.ts";
import { isReadOnlyRun, runSecrets, type RunSpec } from "../../protocol/run-spec.ts";
import { RUN_AS_PATTERN, type WorkerInstructions } from "../../protocol/worker-instructions.ts";
import { runLabels, type LabelOwner } from "./labels.ts";
import { RUN_CA_MOUNT, runCaEnvironment, runCaHostDir } from "./run-ca-bundle.ts";
import { BUNDLE_MOUNT, bundleCommand, type WorkerBundle } from "./worker-bundle.ts";

const WORKSPACE_MOUNT = "/mnt/workspace";

export interface ContainerSpecInput {
  spec: RunSpec;
  image: string;
  /** `trust` and `scratchDir`: the extra CA certificates given to runs (./run-ca-bundle.ts). */
  config: Pick<LauncherConfig, "runEnv" | "mounts" | "docker"> & Partial<Pick<LauncherConfig, "trust" | "scratchDir">>;
  owner: LabelOwner;
  bundle: WorkerBundle;
  workspaceHostDir: string;
  /** File name of the worker instructions inside the workspace. */
  instructionsFile: string;
  /** The image's non-root user (runAsUser): the container starts as root and the worker drops to it. */
  runAs?: WorkerInstructions["run_as"] | undefined;
}

/**
 * Who runs the commands, from the image's `Config.User`: undefined for root (no USER, `root`, `0`,
 * with no group or group 0/root), which runs as it always did; otherwise that user, which the
 * worker resolves inside the image.
 */
export function runAsUser(image: Pick<ImageInfo, "user" | "env">): WorkerInstructions["run_as"] {
  const user = image.user.trim();
  if (user === "") return undefined;
  if (!RUN_AS_PATTERN.test(user)) {
    throw new SpaceliftError(
      "runner-image-user-invalid",
      `the runner image's USER ${JSON.stringify(user.slice(0, 80))} is not a user or uid with an optional :group or :gid; fix the image's USER instruction`,
    );
  }
  const [name, group] = user.split(":") as [string, string | undefined];
  const isRoot = (part: string): boolean => part === "0" || part === "root";
  if (isRoot(name) && (group === undefined || isRoot(group))) return undefined;
  return { user, image_home: image.env.some((entry) => entry.startsWith("HOME=")) };
}

function runKind(spec: RunSpec): "readonly" | "write" {
  return isReadOnlyRun(spec.type) ? "readonly" : "write";
}

/** Values to mask in a run's log: the run's secrets and the launcher's masked variables. */
export function runLogSecrets(spec: RunSpec, runEnv: LauncherConfig["runEnv"]): string[] {
  return [...runSecrets(spec), ...environmentForRun(runEnv, runKind(spec)).secrets];
}

export function runContainerSpec(input: ContainerSpecInput): ContainerSpec {
  const { spec, config } = input;
  const kind = runKind(spec);
  const launcherEnv = environmentForRun(config.runEnv, kind);
  // The CA variables first: whatever the operator or the run sets under the same name wins.
  const withCas = (config.trust?.additionalCas.length ?? 0) > 0 && config.scratchDir !== undefined;
  const env: Record<string, string> = { ...(withCas ? runCaEnvironment() : {}), ...launcherEnv.env };
  for (const variable of spec.environment) if (!variable.secret) env[variable.name] = variable.value;

  const extra = [...config.mounts.allRuns, ...(kind === "readonly" ? config.mounts.readOnlyRuns : config.mounts.writeRuns)];
  const mounts: Mount[] = [
    { host: input.workspaceHostDir, container: WORKSPACE_MOUNT, readOnly: false },
    { host: input.bundle.hostDir, container: BUNDLE_MOUNT, readOnly: true },
    ...(withCas ? [{ host: runCaHostDir(config.scratchDir!), container: RUN_CA_MOUNT, readOnly: true }] : []),
  ];
  for (const m of extra) {
    // The configuration normalizes already; the guard does not rely on it, and Docker gets what was checked.
    const host = normalizeMountPath(m.source);
    const container = normalizeMountPath(m.target);
    const covered = isInside(container, BUNDLE_MOUNT) ? BUNDLE_MOUNT : container === WORKSPACE_MOUNT ? WORKSPACE_MOUNT : withCas && isInside(container, RUN_CA_MOUNT) ? RUN_CA_MOUNT : undefined;
    if (covered !== undefined) {
      throw new SpaceliftError(
        "container-spec-invalid",
        `the extra mount ${host}:${container} would cover ${covered}, which the launcher mounts itself; choose another container path`,
      );
    }
    mounts.push({ host, container, readOnly: m.readOnly });
  }

  const entrypoint = bundleCommand(input.bundle, BUNDLE_MOUNT, [
    "--spec", `${WORKSPACE_MOUNT}/${input.instructionsFile}`, "--workspace", WORKSPACE_MOUNT,
  ]);
  return {
    name: `spacelift-run-${spec.id.toLowerCase()}`,
    image: input.image,
    env,
    labels: runLabels(input.owner, { id: spec.id, stackId: spec.stack.id }),
    mounts,
    entrypoint,
    cmd: [],
    workingDir: WORKSPACE_MOUNT,
    ...(input.runAs !== undefined ? { user: "0" } : {}),
    networkMode: config.docker.network,
    ...(config.docker.runtime !== undefined ? { runtime: config.docker.runtime } : {}),
    init: false,
    tty: false,
  };
}

/** True when `path` is `dir` or below it (both normalized). */
function isInside(path: string, dir: string): boolean {
  return path === dir || path.startsWith(`${dir}/`);
}

/** The spec as printed into the run log under SPACELIFT_DEBUG (the log masker hides secret values). */
export function describeContainerSpec(container: ContainerSpec): string {
  return JSON.stringify(container, null, 2);
}
