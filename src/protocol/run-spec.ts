/**
 * The run spec: what the mothership asks a launcher to execute, after the launcher decrypted the
 * schedule's JWE (src/protocol/README.md). Field names are snake_case on the wire. Unknown fields are
 * dropped so a newer mothership may add some; a missing or malformed field is refused with
 * `run-spec-invalid` naming it, never guessed at. Secret values live here: never log a RunSpec.
 */
import * as v from "valibot";
import { SpaceliftError } from "../errors.ts";
import { RUN_TYPES, type RunType } from "./states.ts";
import { ULID_PATTERN } from "./ulid.ts";

/** A PROPOSED run is read-only; every other type is a write run (see RUN_TYPES). */
export function isReadOnlyRun(type: RunType): boolean {
  return type === "PROPOSED";
}

const Ulid = v.pipe(v.string(), v.regex(ULID_PATTERN, "not a ULID (26 Crockford base32 characters)"));
const NonEmpty = v.pipe(v.string(), v.minLength(1, "must not be empty"));

/** POSIX-style names only: anything else cannot be exported by /bin/sh and would be silently lost. */
const EnvName = v.pipe(v.string(), v.regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "not a valid environment variable name"));

/**
 * Phase names travel inside the worker's phase marker lines and in the UI: a short lowercase
 * word, so no name can contain a line break or a space.
 */
const PhaseName = v.pipe(v.string(), v.regex(/^[a-z][a-z0-9_-]{0,63}$/, "not a phase name (lowercase letters, digits, - and _)"));

/**
 * Relative to the repository root (or the workspace when the run has no source). Absolute paths
 * and `..` segments are refused: the project root must stay inside what the run checked out.
 */
const ProjectRoot = v.pipe(
  v.string(),
  v.check((p) => !p.startsWith("/") && !p.split("/").includes(".."), "must be a relative path without '..'"),
);

const TimeoutMs = v.pipe(v.number(), v.integer("must be whole milliseconds"), v.minValue(1, "must be positive"));

const StackSchema = v.object({
  id: NonEmpty,
  /** Human name and its URL slug; both are shown in logs. */
  name: NonEmpty,
  slug: v.optional(NonEmpty),
  labels: v.optional(v.array(v.string()), []),
  branch: v.string(),
  /** The repository as the VCS names it, e.g. "org/infra". */
  repository: v.string(),
  project_root: v.optional(ProjectRoot, ""),
});

const CommitHash = v.pipe(v.string(), v.regex(/^[0-9a-fA-F]{4,64}$/, "not a commit hash (4 to 64 hex digits)"));

const CommitSchema = v.object({
  /** The commit the run is for (`run.commit.hash` of the policy input); "" when the run names none. */
  hash: v.string(),
  branch: v.string(),
  author: v.string(),
  message: v.string(),
});

const EnvironmentVariableSchema = v.object({
  name: EnvName,
  value: v.string(),
  /** A secret value is masked in every log the launcher produces. */
  secret: v.optional(v.boolean(), false),
});

const PhaseSchema = v.object({
  name: PhaseName,
  /** Each runs as `/bin/sh -c <command>` in the project root; the first failing one stops the run. */
  commands: v.array(NonEmpty),
});

const SourceSchema = v.object({
  /** Clone URL. With a VCS agent pool its scheme and host are replaced by the pool's base endpoint. */
  repository_url: NonEmpty,
  branch: v.optional(NonEmpty),
  /** Commit to check out; without it the branch head (or the default branch) is used. */
  commit: v.optional(CommitHash),
  /** Name of the VCS agent pool that reaches a private VCS (SPACELIFT_PRIVATEVCS_MAPPING_*). */
  vcs_agent_pool: v.optional(NonEmpty),
});

const TimeoutsSchema = v.object({
  /** Kill the run after this long without output; at most the launcher's SPACELIFT_LAUNCHER_LOGS_TIMEOUT. */
  logs_ms: v.optional(TimeoutMs),
  /** Maximum wall-clock time; at most the launcher's SPACELIFT_LAUNCHER_RUN_TIMEOUT. */
  run_ms: v.optional(TimeoutMs),
});

export const RunSpecSchema = v.object({
  id: Ulid,
  type: v.picklist(RUN_TYPES),
  stack: StackSchema,
  commit: CommitSchema,
  /** Image to run; the launcher's SPACELIFT_DEFAULT_RUNNER_IMAGE when absent. */
  runner_image: v.optional(NonEmpty),
  environment: v.pipe(
    v.optional(v.array(EnvironmentVariableSchema), []),
    v.check((vars) => new Set(vars.map((e) => e.name)).size === vars.length, "names a variable twice"),
  ),
  phases: v.array(PhaseSchema),
  source: v.optional(SourceSchema),
  timeouts: v.optional(TimeoutsSchema),
  /**
   * Strings the user attached when triggering the run (Spacelift's "user-provided metadata"), e.g. a
   * signed JWT that a run-initialization policy verifies. Opaque to the launcher.
   */
  user_provided_metadata: v.optional(v.array(v.pipe(v.string(), v.maxLength(65536, "longer than 64 KiB")))),
});

export type RunSpec = v.InferOutput<typeof RunSpecSchema>;
export type RunSource = NonNullable<RunSpec["source"]>;
export type RunPhase = RunSpec["phases"][number];

/** Parses a decrypted run; throws `run-spec-invalid` naming the first bad field. */
export function parseRunSpec(json: unknown): RunSpec {
  return parseWith(RunSpecSchema, json, "run spec");
}

/**
 * Parses `json` with `schema`, turning the first issue into a SpaceliftError that names the field
 * path (e.g. `phases.1.name`) but never echoes the value: it may be a secret.
 */
export function parseWith<S extends v.GenericSchema>(schema: S, json: unknown, what: string): v.InferOutput<S> {
  const result = v.safeParse(schema, json);
  if (result.success) return result.output;
  const issue = result.issues[0];
  const path = v.getDotPath(issue);
  // Valibot's default messages quote the received value; schema (type) issues are rephrased and
  // every validation above carries its own value-free message.
  const problem = issue.kind !== "schema" ? issue.message : issue.input === undefined ? "is missing" : `must be ${issue.expected ?? "valid"}`;
  throw new SpaceliftError("run-spec-invalid", `invalid ${what}: ${path ?? "(root)"} ${problem}`);
}

/** The launcher's configured limits, in milliseconds. */
export interface TimeoutLimits {
  logsMs: number;
  runMs: number;
}

/**
 * The timeouts that apply to `spec`: its own where it sets them, otherwise the launcher's. A run
 * may shorten the launcher's limits but never extend them (the operator's limits are a promise
 * about how long a host stays busy), so a larger value is refused, not clipped.
 */
export function effectiveTimeouts(spec: RunSpec, limits: TimeoutLimits): TimeoutLimits {
  const own = spec.timeouts ?? {};
  if (own.logs_ms !== undefined && own.logs_ms > limits.logsMs) {
    throw new SpaceliftError(
      "run-spec-invalid",
      `invalid run spec: timeouts.logs_ms ${own.logs_ms} exceeds the launcher's logs timeout of ${limits.logsMs} ms`,
    );
  }
  if (own.run_ms !== undefined && own.run_ms > limits.runMs) {
    throw new SpaceliftError(
      "run-spec-invalid",
      `invalid run spec: timeouts.run_ms ${own.run_ms} exceeds the launcher's run timeout of ${limits.runMs} ms`,
    );
  }
  return { logsMs: own.logs_ms ?? limits.logsMs, runMs: own.run_ms ?? limits.runMs };
}

/** Every non-empty secret value of the run: what the log masker must hide. */
export function runSecrets(spec: RunSpec): string[] {
  return spec.environment.filter((e) => e.secret && e.value !== "").map((e) => e.value);
}
