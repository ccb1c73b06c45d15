/**
 * The input document of a run-initialization policy, in the shape Spacelift's launcher gives its
 * worker-side policies (the sample Spacelift documents under "User-provided metadata"): four keys,
 * `docker_image`, `run`, `static_run_environment` and `worker_version`. Field names and meanings follow
 * Spacelift's where our run spec carries the same fact; facts that only exist in Spacelift's backend
 * (account name, Terraform version, vendor config, log endpoints) are left out rather than invented.
 * docs/run-initialization-policy.md lists every field and where it comes from.
 *
 * The document is printed when the policy samples itself, so no secret may appear in it: secret
 * environment values are replaced by `sanitized(value)`, the same digest the policy's own
 * `sanitized()` helper computes, so a policy can still compare them with a known value.
 */
import type { RunSpec } from "../../protocol/run-spec.ts";
import { sanitized } from "../../policy/spacelift.ts";

/** A run as the policy sees it. `user_provided_metadata` is read when the spec carries it. */
export type PolicyRunSpec = RunSpec & { readonly user_provided_metadata?: readonly string[] };

export interface InputContext {
  /** SPACELIFT_DEFAULT_RUNNER_IMAGE, for runs that name no image. */
  readonly defaultRunnerImage: string | undefined;
  /** This launcher's version (`worker_version`: the worker is built into the launcher). */
  readonly workerVersion: string;
}

export interface InitPolicyInput {
  docker_image: string;
  run: {
    id: string;
    type: RunSpec["type"];
    /** Always PREPARING: the policy runs before anything of the run has started, as in Spacelift. */
    state: "PREPARING";
    based_on_local_workspace: false;
    changes: never[];
    commit: { author: string; branch: string; hash: string; message: string };
    triggered_by: null;
    user_provided_metadata: string[];
    /** Not in Spacelift's launcher document: the stack as our run spec describes it. */
    stack: { id: string; name: string; slug: string; labels: string[]; branch: string; repository: string; project_root: string };
  };
  static_run_environment: {
    run_ulid: string;
    run_type: RunSpec["type"];
    stack_slug: string;
    stack_labels: string[];
    commit_branch: string;
    commit_sha: string;
    repository_path: string;
    project_root: string;
    /** Name to value; secret values sanitized. */
    environment_variables: Record<string, string>;
    /** Not in Spacelift's document: the run's phases and their commands, in order. */
    phases: Array<{ name: string; commands: string[] }>;
    /** Not in Spacelift's document: where the source comes from, when the run has one. */
    source: { repository_url: string; branch: string | null; commit: string | null; vcs_agent_pool: string | null } | null;
  };
  worker_version: string;
}

export function buildInitPolicyInput(spec: PolicyRunSpec, ctx: InputContext): InitPolicyInput {
  const slug = spec.stack.slug ?? spec.stack.id;
  const environment: Record<string, string> = {};
  for (const e of spec.environment) environment[e.name] = e.secret ? (sanitized(e.value) as string) : e.value;
  const metadata = Array.isArray(spec.user_provided_metadata) ? spec.user_provided_metadata.filter((m) => typeof m === "string") : [];
  return {
    docker_image: spec.runner_image ?? ctx.defaultRunnerImage ?? "",
    run: {
      id: spec.id,
      type: spec.type,
      state: "PREPARING",
      based_on_local_workspace: false,
      changes: [],
      commit: { author: spec.commit.author, branch: spec.commit.branch, hash: spec.commit.hash, message: spec.commit.message },
      triggered_by: null,
      user_provided_metadata: [...metadata],
      stack: {
        id: spec.stack.id,
        name: spec.stack.name,
        slug,
        labels: [...spec.stack.labels],
        branch: spec.stack.branch,
        repository: spec.stack.repository,
        project_root: spec.stack.project_root,
      },
    },
    static_run_environment: {
      run_ulid: spec.id,
      run_type: spec.type,
      stack_slug: slug,
      stack_labels: [...spec.stack.labels],
      commit_branch: spec.commit.branch,
      commit_sha: spec.commit.hash,
      repository_path: spec.stack.repository,
      project_root: spec.stack.project_root,
      environment_variables: environment,
      phases: spec.phases.map((p) => ({ name: p.name, commands: [...p.commands] })),
      source: spec.source
        ? {
            repository_url: withoutCredentials(spec.source.repository_url),
            branch: spec.source.branch ?? null,
            commit: spec.source.commit ?? null,
            vcs_agent_pool: spec.source.vcs_agent_pool ?? null,
          }
        : null,
    },
    worker_version: ctx.workerVersion,
  };
}

/** A clone URL may carry a token (https://x-access-token:TOKEN@host/...); the policy never sees it. */
function withoutCredentials(url: string): string {
  try {
    const u = new URL(url);
    if (u.username === "" && u.password === "") return url;
    u.username = "";
    u.password = "";
    return u.toString();
  } catch {
    // scp-like git@host:org/repo has no secret in it; anything else unparsable is passed through.
    return url;
  }
}
