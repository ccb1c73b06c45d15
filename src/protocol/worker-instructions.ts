/**
 * The launcher -> worker hand-over: a JSON file the launcher writes into the run's workspace and
 * names with `spacelift-launcher worker --spec PATH`. It holds the run spec plus what only the
 * worker may know: the phase-marker nonce (so user output cannot forge phase boundaries) and the
 * VCS agent pool mapping the launcher resolved from SPACELIFT_PRIVATEVCS_MAPPING_*, and, for a runner
 * image that sets a non-root USER, that user. The worker deletes the file before it runs any user
 * command.
 */
import * as v from "valibot";
import { NONCE_PATTERN } from "./phase-markers.ts";
import { RunSpecSchema, parseWith } from "./run-spec.ts";

/** A user and an optional group, each a name or a number, as Docker's USER takes them; bounded. */
export const RUN_AS_PATTERN = /^[^:\s\p{Cc}]{1,64}(:[^:\s\p{Cc}]{1,64})?$/u;

const WorkerInstructionsSchema = v.object({
  run: RunSpecSchema,
  marker_nonce: v.pipe(v.string(), v.regex(NONCE_PATTERN, "not a marker nonce (16-128 letters and digits)")),
  /** VCS agent pool name -> base URL (scheme, host and optional path prefix) that replaces the source's. */
  vcs_mapping: v.optional(v.record(v.string(), v.pipe(v.string(), v.url("not a URL"))), {}),
  /**
   * The runner image's `Config.User` when it is not root. The container then runs as root so that
   * the worker can read this root-only file; the worker gives the workspace to this user and runs
   * git and the commands as it.
   */
  run_as: v.optional(v.object({
    /** Docker's USER syntax: `user`, `uid`, `user:group`, `uid:gid` (names resolved in the image). */
    user: v.pipe(v.string(), v.regex(RUN_AS_PATTERN, "not a Docker USER value (user or uid, optionally :group or :gid)")),
    /** The image's own env sets HOME: keep it rather than the user's home from /etc/passwd. */
    image_home: v.boolean(),
  })),
});

export type WorkerInstructions = v.InferOutput<typeof WorkerInstructionsSchema>;

/** Throws `run-spec-invalid` naming the first bad field. */
export function parseWorkerInstructions(json: unknown): WorkerInstructions {
  return parseWith(WorkerInstructionsSchema, json, "worker instructions");
}
