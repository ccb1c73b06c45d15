/**
 * The run-initialization policy, launcher side (see docs/run-initialization-policy.md): before anything of a run exists
 * (no image pull, no workspace, no container) the policy the operator configured is evaluated against
 * the run's input document (./input.ts); every `deny` message fails the run with reason
 * policy-denied, and the supervisor writes the messages into the run's initialization log.
 *
 * Evaluation never fails the launcher: a policy that errors or runs past its time limit denies the run
 * with a message saying so (a check that could not complete must not let the run through).
 * A policy whose `sample` rule is true gets its evaluation printed as ONE JSON line on stderr,
 * `{"input": ..., "results": {"deny": [...], "sample": true}, "outcome": "allow"|"deny"}`, which is how
 * Spacelift's launcher lets operators capture real inputs to develop policies against.
 */
import type { LauncherConfig } from "../../config/launcher-config.ts";
import type { Logger } from "../../log/logger.ts";
import { evaluateInitPolicy, PolicyError, type Value } from "../../policy/index.ts";
import type { RunSpec } from "../../protocol/run-spec.ts";
import { buildInfo } from "../../version.ts";
import { execHostFunction } from "./exec.ts";
import { buildInitPolicyInput, type InitPolicyInput, type PolicyRunSpec } from "./input.ts";

/** Default limit for one evaluation; the evaluator blocks the event loop while it runs, so keep it short. */
const INIT_POLICY_TIME_LIMIT_MS = 5_000;

export interface InitPolicyDecision {
  /** Messages that fail the run, sorted; empty when the run may go ahead. */
  deny: string[];
  outcome: "allow" | "deny";
}

export type InitPolicyCheck = (spec: RunSpec) => Promise<InitPolicyDecision>;

export interface InitPolicyIo {
  /** Where the sample line goes (the launcher's stderr). */
  stderr: (text: string) => void;
}

export interface InitPolicyOptions {
  /** Limit of one evaluation in ms (each of the two queries, deny and sample; exec() counts). */
  timeLimitMs?: number;
  /** Reported as `worker_version`; defaults to this build's version. */
  workerVersion?: string;
  /** The launcher's environment, handed (minus the pool credentials) to commands run by exec(). */
  env?: Readonly<Record<string, string | undefined>>;
}

type PolicyConfig = Pick<LauncherConfig, "runInitializationPolicy"> & { readonly docker: Pick<LauncherConfig["docker"], "defaultRunnerImage"> };

/** The check for the supervisor, or undefined when no policy is configured (then nothing is checked). */
export function createInitPolicy(config: PolicyConfig, logger: Logger, io: InitPolicyIo, options: InitPolicyOptions = {}): InitPolicyCheck | undefined {
  const policy = config.runInitializationPolicy;
  if (policy === undefined) return undefined;
  const limit = options.timeLimitMs ?? INIT_POLICY_TIME_LIMIT_MS;
  const workerVersion = options.workerVersion ?? buildInfo.version;
  const log = logger.child({ policy: policy.path });

  return (spec) => {
    const started = performance.now();
    const input = buildInitPolicyInput(spec as PolicyRunSpec, { defaultRunnerImage: config.docker.defaultRunnerImage, workerVersion });
    const builtins: Record<string, (x: Value) => Value> = {};
    if (policy.execEnabled) builtins.exec = execHostFunction({ remainingMs: () => limit - (performance.now() - started), env: options.env });
    let decision: InitPolicyDecision;
    try {
      const r = evaluateInitPolicy(policy.compiled, input, { timeoutMs: limit, builtins });
      decision = { deny: r.deny, outcome: r.outcome };
      if (r.sample) writeSample(io, input, r.deny, decision.outcome);
    } catch (err) {
      decision = { deny: [failureMessage(err, limit)], outcome: "deny" };
      log.warn("run initialization policy could not be evaluated; the run is denied", {
        run: spec.id,
        code: err instanceof PolicyError ? err.code : "internal",
        error: err instanceof Error ? err.message : String(err),
      });
    }
    log.info("run initialization policy evaluated", {
      run: spec.id,
      outcome: decision.outcome,
      denials: decision.deny.length,
      duration_ms: Math.round((performance.now() - started) * 100) / 100,
    });
    return Promise.resolve(decision);
  };
}

/**
 * The deny message of a failed evaluation. The supervisor prefixes every message with "denied by the
 * run initialization policy: ", so these say what went wrong, not that the run is denied.
 */
function failureMessage(err: unknown, limitMs: number): string {
  if (err instanceof PolicyError && err.code === "eval_timeout") {
    return `the policy did not finish within its time limit of ${limitMs / 1000}s (${oneLine(err.message)})`;
  }
  if (err instanceof PolicyError) return `the policy could not be evaluated: ${oneLine(err.message)}`;
  return "the policy could not be evaluated: internal error (see the launcher's log)";
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, "; ");
}

function writeSample(io: InitPolicyIo, input: InitPolicyInput, deny: string[], outcome: "allow" | "deny"): void {
  try {
    io.stderr(JSON.stringify({ input, results: { deny, sample: true }, outcome }) + "\n");
  } catch {
    // Like logging, sampling never fails a run.
  }
}
