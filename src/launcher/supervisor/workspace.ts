/**
 * A run's workspace: a fresh host directory `<scratch>/workspaces/<run>` mounted at /mnt/workspace
 * (the Docker daemon must see the same path). It first holds the worker instructions
 * (0600: they carry the run's secrets and the phase-marker nonce; the worker deletes them before any
 * command runs), then the source and whatever the run writes. Removed after every run.
 */
import { existsSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { SpaceliftError, errorMessage } from "../../errors.ts";
import type { WorkerInstructions } from "../../protocol/worker-instructions.ts";

/** @testSeam */
export const INSTRUCTIONS_FILE = ".spacelift-run.json";

export function workspaceDir(scratchDir: string, runId: string): string {
  // Run ids are ULIDs (checked by the run spec schema): safe as a path component.
  return join(scratchDir, "workspaces", runId);
}

/** Creates an empty workspace, replacing anything a previous attempt of the same run left behind. */
export async function createWorkspace(scratchDir: string, runId: string): Promise<string> {
  const dir = workspaceDir(scratchDir, runId);
  try {
    await mkdir(join(scratchDir, "workspaces"), { recursive: true, mode: 0o711 });
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { mode: 0o755 });
  } catch (cause) {
    throw new SpaceliftError("workspace-failed", `cannot create the run workspace ${dir}: ${errorMessage(cause)}`, { cause });
  }
  return dir;
}

/** Writes the instructions; `wx` so an existing file (which cannot be there) is never overwritten. */
export async function writeInstructions(dir: string, instructions: WorkerInstructions): Promise<string> {
  const path = join(dir, INSTRUCTIONS_FILE);
  try {
    await writeFile(path, JSON.stringify(instructions), { mode: 0o600, flag: "wx" });
  } catch (cause) {
    throw new SpaceliftError("workspace-failed", `cannot write the worker instructions into ${dir}: ${errorMessage(cause)}`, { cause });
  }
  return INSTRUCTIONS_FILE;
}

/**
 * Removes the workspace. Files the run created belong to the container's user; a launcher that
 * does not run as root may be unable to remove them, which is reported, not thrown.
 */
export async function removeWorkspace(dir: string): Promise<string | undefined> {
  try {
    await rm(dir, { recursive: true, force: true, maxRetries: 2 });
    return existsSync(dir) ? `the workspace ${dir} could not be removed completely` : undefined;
  } catch (error) {
    return `cannot remove the workspace ${dir}: ${errorMessage(error)}`;
  }
}
