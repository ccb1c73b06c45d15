/**
 * The Docker steps of a run, each small and separate: make sure the image is there, stop a
 * container (interrupt, grace, kill) and remove it. Teardown steps run under their own fresh,
 * time-limited AbortSignal: they must work after the run was cancelled, and must not hang
 * the launcher when the daemon does.
 */
import { isDockerError } from "../../docker/errors.ts";
import { resolveRegistryAuth } from "../../docker/registry-auth.ts";
import type { DockerClient, ImageInfo, PullProgress } from "../../docker/types.ts";

/** How long a stop may take beyond its grace period before we give up on the daemon. */
const STOP_SLACK_MS = 30_000;
const REMOVE_TIMEOUT_MS = 30_000;

export type PullPolicy = "if-not-present" | "always";

export interface EnsureImageOptions {
  configDir: string | undefined;
  policy: PullPolicy;
  /** One line per layer status change, for the run log. */
  onLine: (line: string) => void;
  signal: AbortSignal;
}

/**
 * Pulls `image` unless it is present and the policy allows using the local copy. Pull progress is
 * reduced to status changes per layer ("Pulling fs layer", "Download complete", ...): the byte
 * counters Docker sends several times a second would flood the run log. Returns the image as inspected
 * (its user decides who runs the commands, see container-spec.ts).
 */
export async function ensureImage(docker: DockerClient, image: string, options: EnsureImageOptions): Promise<ImageInfo> {
  if (options.policy === "if-not-present") {
    try {
      return await docker.imageInspect(image, options.signal);
    } catch (error) {
      if (!isDockerError(error, "not-found")) throw error;
    }
  }
  const auth = await resolveRegistryAuth(options.configDir, image, { signal: options.signal });
  options.onLine(`pulling ${image}${auth ? " (with registry credentials)" : ""}`);
  const last = new Map<string, string>();
  await docker.imagePull(image, {
    ...(auth ? { auth } : {}),
    signal: options.signal,
    onProgress: (event: PullProgress) => {
      if (event.status === undefined) return;
      const key = event.id ?? "";
      if (last.get(key) === event.status) return;
      last.set(key, event.status);
      options.onLine(event.id ? `${event.id}: ${event.status}` : event.status);
    },
  });
  return await docker.imageInspect(image, options.signal);
}

/**
 * Stops a running container: Docker sends the stop signal (SIGTERM; the worker forwards it to the
 * running command's process group), waits `graceMs`, then SIGKILLs. A container that is already gone
 * or stopped is fine. If the daemon fails to stop it, a direct SIGKILL is the last resort.
 */
export async function stopContainer(docker: DockerClient, id: string, graceMs: number): Promise<void> {
  try {
    await docker.containerStop(id, graceMs / 1000, AbortSignal.timeout(graceMs + STOP_SLACK_MS));
  } catch (error) {
    if (isDockerError(error, "not-found")) return;
    await docker.containerKill(id, "SIGKILL", AbortSignal.timeout(STOP_SLACK_MS)).catch(() => undefined);
    throw error;
  }
}

/** Removes a container (force: also a running one); a container already gone is fine. */
export async function removeContainer(docker: DockerClient, id: string): Promise<void> {
  try {
    await docker.containerRemove(id, { force: true, volumes: true, signal: AbortSignal.timeout(REMOVE_TIMEOUT_MS) });
  } catch (error) {
    if (!isDockerError(error, "not-found")) throw error;
  }
}
