/**
 * The launcher -> worker hand-over: a JSON file the launcher writes into the run's workspace and
 * names with `spacelift-launcher worker --spec PATH`. It holds the run spec plus what only the
 * worker may know: the phase-marker nonce (so user output cannot forge phase boundaries) and the
 * VCS agent pool mapping the launcher resolved from SPACELIFT_PRIVATEVCS_MAPPING_*. The worker
 * deletes the file before it runs any user command.
 */
import * as v from "valibot";
import { NONCE_PATTERN } from "./phase-markers.ts";
import { RunSpecSchema, parseWith } from "./run-spec.ts";

const WorkerInstructionsSchema = v.object({
  run: RunSpecSchema,
  marker_nonce: v.pipe(v.string(), v.regex(NONCE_PATTERN, "not a marker nonce (16-128 letters and digits)")),
  /** VCS agent pool name -> base URL (scheme, host and optional path prefix) that replaces the source's. */
  vcs_mapping: v.optional(v.record(v.string(), v.pipe(v.string(), v.url("not a URL"))), {}),
});

export type WorkerInstructions = v.InferOutput<typeof WorkerInstructionsSchema>;

/** Throws `run-spec-invalid` naming the first bad field. */
export function parseWorkerInstructions(json: unknown): WorkerInstructions {
  return parseWith(WorkerInstructionsSchema, json, "worker instructions");
}
