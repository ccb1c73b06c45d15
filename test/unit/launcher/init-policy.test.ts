// The launcher's run-initialization policy check: the input document, Spacelift's documented example
// policies, a signed-run policy, the time limit, the sample line and exec(). Policies are loaded through
// the real configuration (so they are parsed and checked exactly as at launcher start).
import { afterAll, describe, expect, test } from "bun:test";
import { createHmac } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadLauncherConfig, type LauncherConfig } from "../../../src/config/launcher-config.ts";
import { createInitPolicy, type InitPolicyCheck, type InitPolicyOptions } from "../../../src/launcher/init-policy/check.ts";
import { buildInitPolicyInput, type PolicyRunSpec } from "../../../src/launcher/init-policy/input.ts";
import { createLogger } from "../../../src/log/logger.ts";
import { sanitized } from "../../../src/policy/spacelift.ts";
import { parseRunSpec } from "../../../src/protocol/run-spec.ts";

const dir = mkdtempSync(join(tmpdir(), "init-policy-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

function loadConfig(env: Record<string, string | undefined>): LauncherConfig {
  return loadLauncherConfig({ PATH: "/usr/bin:/bin", ...env }, { requireCredentials: false });
}

interface Harness {
  check: InitPolicyCheck;
  stderr: string[];
  logs: Array<Record<string, unknown>>;
}

/** A configured check for `source`, with stderr (sample lines) and the log captured. */
function harness(source: string, env: Record<string, string> = {}, options: InitPolicyOptions = {}): Harness {
  const path = join(dir, `policy-${++files}.rego`);
  writeFileSync(path, source);
  const config = loadConfig({ SPACELIFT_LAUNCHER_RUN_INITIALIZATION_POLICY: path, ...env });
  const stderr: string[] = [];
  const logs: Array<Record<string, unknown>> = [];
  const logger = createLogger({ pretty: false, write: (line) => logs.push(JSON.parse(line) as Record<string, unknown>) });
  const check = createInitPolicy(config, logger, { stderr: (t) => stderr.push(t) }, { workerVersion: "1.2.3-test", ...options });
  if (check === undefined) throw new Error("a configured policy must give a check");
  return { check, stderr, logs };
}

const SECRET_ENV = "s3cr3t-value-xyz";
const CLONE_TOKEN = "ghs_CLONETOKEN0123";

/** A valid run spec (parsed by the real schema), with top-level overrides. */
function runSpec(overrides: Record<string, unknown> = {}, metadata?: string[]): PolicyRunSpec {
  const spec = parseRunSpec({
    id: "01JABCDEFGHJKMNPQRSTVWXYZ0",
    type: "TRACKED",
    stack: { id: "stack-1", name: "Core infra", slug: "core-infra", labels: ["prod"], branch: "main", repository: "org/infra", project_root: "envs/prod" },
    commit: { hash: "7d629c6c3f3b6da07e28a87727f0586e577d98c1", branch: "main", author: "ada", message: "Update main.tf" },
    runner_image: "registry.internal:5000/runner:1.2",
    environment: [
      { name: "PLAIN", value: "hello", secret: false },
      { name: "TOKEN", value: SECRET_ENV, secret: true },
    ],
    phases: [{ name: "plan", commands: ["terraform init", "terraform plan"] }],
    source: { repository_url: `https://x-access-token:${CLONE_TOKEN}@github.example/org/infra.git`, branch: "main" },
    ...overrides,
  });
  return metadata === undefined ? spec : { ...spec, user_provided_metadata: metadata };
}

describe("input document (Spacelift's launcher-side shape)", () => {
  test("docker_image, run, static_run_environment and worker_version from the run spec", () => {
    const input = buildInitPolicyInput(runSpec({}, ["deploy-metadata"]), { defaultRunnerImage: undefined, workerVersion: "1.2.3" });
    expect(Object.keys(input).sort()).toEqual(["docker_image", "run", "static_run_environment", "worker_version"]);
    expect(input.docker_image).toBe("registry.internal:5000/runner:1.2");
    expect(input.worker_version).toBe("1.2.3");
    expect(input.run).toMatchObject({
      id: "01JABCDEFGHJKMNPQRSTVWXYZ0",
      type: "TRACKED",
      state: "PREPARING",
      commit: { author: "ada", branch: "main", hash: "7d629c6c3f3b6da07e28a87727f0586e577d98c1", message: "Update main.tf" },
      user_provided_metadata: ["deploy-metadata"],
      stack: { id: "stack-1", slug: "core-infra", labels: ["prod"], repository: "org/infra" },
    });
    expect(input.static_run_environment).toMatchObject({
      run_ulid: "01JABCDEFGHJKMNPQRSTVWXYZ0",
      run_type: "TRACKED",
      stack_slug: "core-infra",
      stack_labels: ["prod"],
      commit_branch: "main",
      commit_sha: "7d629c6c3f3b6da07e28a87727f0586e577d98c1",
      repository_path: "org/infra",
      project_root: "envs/prod",
      phases: [{ name: "plan", commands: ["terraform init", "terraform plan"] }],
    });
  });

  test("secret values are sanitized and clone credentials removed, so the document can be printed", () => {
    const input = buildInitPolicyInput(runSpec(), { defaultRunnerImage: undefined, workerVersion: "x" });
    expect(input.static_run_environment.environment_variables).toEqual({ PLAIN: "hello", TOKEN: sanitized(SECRET_ENV) as string });
    expect(input.static_run_environment.environment_variables.TOKEN).toMatch(/^[0-9a-f]{8}$/);
    expect(input.static_run_environment.source?.repository_url).toBe("https://github.example/org/infra.git");
    const text = JSON.stringify(input);
    expect(text).not.toContain(SECRET_ENV);
    expect(text).not.toContain(CLONE_TOKEN);
  });

  test("a run without an image gets SPACELIFT_DEFAULT_RUNNER_IMAGE; without metadata an empty list", () => {
    const spec = runSpec({ runner_image: undefined, stack: { id: "s", name: "n", branch: "b", repository: "r" } });
    const input = buildInitPolicyInput(spec, { defaultRunnerImage: "public.ecr.aws/spacelift/runner-terraform:latest", workerVersion: "x" });
    expect(input.docker_image).toBe("public.ecr.aws/spacelift/runner-terraform:latest");
    expect(input.run.user_provided_metadata).toEqual([]);
    expect(input.static_run_environment.stack_slug).toBe("s"); // no slug: the stack id, as the URL would use
    expect(buildInitPolicyInput(spec, { defaultRunnerImage: undefined, workerVersion: "x" }).docker_image).toBe("");
  });

  test("no policy configured: no check at all", () => {
    expect(createInitPolicy(loadConfig({}), createLogger({ write: () => {} }), { stderr: () => {} })).toBeUndefined();
  });
});

describe("Spacelift's documented initialization policies, launcher side", () => {
  test("deny an image that is not from an allowed registry (v0 syntax, future.keywords)", async () => {
    const { check } = harness(`package spacelift
import future.keywords.in

allowed_registries := {"registry.internal:5000", "public.ecr.aws/spacelift"}

deny[sprintf("image %s is not from an allowed registry", [input.docker_image])] {
  not allowed_image
}

allowed_image {
  some registry in allowed_registries
  startswith(input.docker_image, concat("", [registry, "/"]))
}
`);
    expect(await check(runSpec())).toEqual({ deny: [], outcome: "allow" });
    expect(await check(runSpec({ runner_image: "docker.io/evil/runner:latest" }))).toEqual({
      deny: ["image docker.io/evil/runner:latest is not from an allowed registry"],
      outcome: "deny",
    });
    // A look-alike host must not pass a prefix check.
    expect((await check(runSpec({ runner_image: "registry.internal:50001/runner:1" }))).outcome).toBe("deny");
  });

  test("deny on the commit message (v1 syntax)", async () => {
    const { check } = harness(`package spacelift
import rego.v1

deny contains msg if {
  input.run.type == "TRACKED"
  regex.match(\`(?i)\\b(wip|do not deploy)\\b\`, input.run.commit.message)
  msg := sprintf("commit %s is marked as not ready: %q", [substring(input.run.commit.hash, 0, 7), input.run.commit.message])
}
`);
    expect((await check(runSpec())).outcome).toBe("allow");
    const wip = { hash: "abcdef0123456789", branch: "main", author: "ada", message: "WIP: new VPC" };
    expect(await check(runSpec({ commit: wip }))).toEqual({ deny: ['commit abcdef0 is marked as not ready: "WIP: new VPC"'], outcome: "deny" });
    expect((await check(runSpec({ commit: wip, type: "PROPOSED" }))).outcome).toBe("allow");
  });

  test("feature branch naming convention with re_match (the documented example, on the launcher's fields)", async () => {
    const { check } = harness(`package spacelift

deny[sprintf("invalid feature branch name (%s)", [branch])] {
  branch := input.run.commit.branch
  input.run.type == "PROPOSED"
  not re_match("^(fix|feature)\\/.*", branch)
}
`);
    const commit = (branch: string) => ({ hash: "abc1", branch, author: "ada", message: "m" });
    expect((await check(runSpec({ type: "PROPOSED", commit: commit("feature/vpc") }))).outcome).toBe("allow");
    expect(await check(runSpec({ type: "PROPOSED", commit: commit("my-branch") }))).toEqual({ deny: ["invalid feature branch name (my-branch)"], outcome: "deny" });
    expect((await check(runSpec({ type: "TRACKED", commit: commit("my-branch") }))).outcome).toBe("allow");
  });

  test("no Terraform in commands other than the format check; several messages come back sorted", async () => {
    const { check } = harness(`package spacelift

deny[sprintf("don't use Terraform please (%s)", [command])] {
  command := input.static_run_environment.phases[_].commands[_]
  contains(command, "terraform")
  command != "terraform fmt -check"
}

deny["you shall not pass"] { input.run.stack.labels[_] == "frozen" }
`);
    expect(await check(runSpec({ phases: [{ name: "plan", commands: ["terraform fmt -check"] }] }))).toEqual({ deny: [], outcome: "allow" });
    const frozen = { id: "s", name: "n", labels: ["frozen"], branch: "b", repository: "r" };
    expect((await check(runSpec({ stack: frozen }))).deny).toEqual([
      "don't use Terraform please (terraform init)",
      "don't use Terraform please (terraform plan)",
      "you shall not pass",
    ]);
  });

  test("the secret-free environment lets a policy compare a secret through sanitized()", async () => {
    const { check } = harness(`package spacelift
deny["TOKEN is not the production token"] {
  input.static_run_environment.environment_variables.TOKEN != sanitized("${SECRET_ENV}")
}
`);
    expect((await check(runSpec())).outcome).toBe("allow");
    const env = [{ name: "TOKEN", value: "another-token", secret: true }];
    expect((await check(runSpec({ environment: env }))).deny).toEqual(["TOKEN is not the production token"]);
  });
});

describe("signed runs: an HS256 JWT in user-provided metadata", () => {
  const SECRET = "run-signature-secret";
  const b64 = (x: string | Buffer): string => Buffer.from(x).toString("base64url");
  const jwt = (payload: object, secret = SECRET): string => {
    const unsigned = `${b64(JSON.stringify({ alg: "HS256", typ: "JWT" }))}.${b64(JSON.stringify(payload))}`;
    return `${unsigned}.${b64(createHmac("sha256", secret).update(unsigned).digest())}`;
  };
  const now = Math.floor(Date.now() / 1000);
  const sha = "7d629c6c3f3b6da07e28a87727f0586e577d98c1";
  const good = { sub: sha, spacelift_stack: "core-infra", iat: now - 10, exp: now + 600 };
  // Spacelift's reference implementation (signed-run-reference-implementation), plus a rule for a
  // missing token, which the reference leaves to the other rules.
  const { check } = harness(`package spacelift

deny["No token"] {
  count(input.run.user_provided_metadata) == 0
}

deny["Invalid token"] {
  token := input.run.user_provided_metadata[0]
  constraints := {"secret": "${SECRET}"}
  [valid, _, _] := io.jwt.decode_verify(token, constraints)
  not valid
}

deny["Stack mismatch"] {
  token := input.run.user_provided_metadata[0]
  [_, payload, _] := io.jwt.decode(token)
  payload.spacelift_stack != input.static_run_environment.stack_slug
}

deny["Commit mismatch"] {
  token := input.run.user_provided_metadata[0]
  [_, payload, _] := io.jwt.decode(token)
  payload.sub != input.run.commit.hash
}
`);

  test("a token signed with the secret for this stack and commit: allowed", async () => {
    expect(await check(runSpec({}, [jwt(good)]))).toEqual({ deny: [], outcome: "allow" });
  });
  test("no token, a forged signature, an expired token: denied", async () => {
    expect((await check(runSpec({}, []))).deny).toEqual(["No token"]);
    expect((await check(runSpec({}, [jwt(good, "not-the-secret")]))).deny).toEqual(["Invalid token"]);
    expect((await check(runSpec({}, [jwt({ ...good, exp: now - 60 })]))).deny).toEqual(["Invalid token"]);
  });
  test("a malformed token: the reference policy lets it through, as OPA does (decode errors are undefined)", async () => {
    // Every rule of the reference policy needs a decodable token to fire. docs/run-initialization-policy.md
    // recommends the `not signed` form below for that reason.
    expect(await check(runSpec({}, ["not.a.jwt"]))).toEqual({ deny: [], outcome: "allow" });
  });
  test("a valid token for another stack or commit: denied", async () => {
    expect((await check(runSpec({}, [jwt({ ...good, spacelift_stack: "other" })]))).deny).toEqual(["Stack mismatch"]);
    expect((await check(runSpec({}, [jwt({ ...good, sub: "0".repeat(40) })]))).deny).toEqual(["Commit mismatch"]);
  });

  test("the fail-closed form: deny unless some metadata entry is a valid token for this stack and commit", async () => {
    const closed = harness(`package spacelift
import future.keywords.in

deny["run is not signed for this stack and commit"] { not signed }

signed {
  some token in input.run.user_provided_metadata
  [valid, _, payload] := io.jwt.decode_verify(token, {"secret": "${SECRET}"})
  valid
  payload.spacelift_stack == input.static_run_environment.stack_slug
  payload.sub == input.run.commit.hash
}
`).check;
    const denied = ["run is not signed for this stack and commit"];
    expect(await closed(runSpec({}, ["deploy-metadata", jwt(good)]))).toEqual({ deny: [], outcome: "allow" });
    for (const metadata of [[], ["not.a.jwt"], [jwt(good, "nope")], [jwt({ ...good, exp: now - 1 })], [jwt({ ...good, sub: "f".repeat(40) })]]) {
      expect((await closed(runSpec({}, metadata))).deny).toEqual(denied);
    }
  });
});

describe("time limit and failures", () => {
  test("a runaway policy denies the run with a timeout message instead of hanging the launcher", async () => {
    const h = harness(
      `package spacelift
import rego.v1
deny contains "never" if {
  some i in numbers.range(1, 100000)
  some j in numbers.range(1, 100000)
  i * j == -1
}
`,
      {},
      { timeLimitMs: 300 },
    );
    const started = performance.now();
    const decision = await h.check(runSpec());
    const elapsed = performance.now() - started;
    expect(decision.outcome).toBe("deny");
    expect(decision.deny).toHaveLength(1);
    expect(decision.deny[0]).toStartWith("the policy did not finish within its time limit of 0.3s (");
    expect(decision.deny[0]).toContain("eval_timeout");
    // Two queries (deny, sample) may each use the limit; far less than the 10^10 steps would take.
    expect(elapsed).toBeLessThan(1500);
    expect(h.logs.find((l) => l.level === "warn")).toMatchObject({ code: "eval_timeout", run: "01JABCDEFGHJKMNPQRSTVWXYZ0" });
  });

  test("an evaluation error denies the run and says so", async () => {
    const { check } = harness(`package spacelift
deny[msg] { msg := input.run.stack.labels }
deny["x"] { deny_twice }
deny_twice := 1
deny_twice := 2 if { true }
`);
    const d = await check(runSpec());
    expect(d.outcome).toBe("deny");
    expect(d.deny[0]).toStartWith("the policy could not be evaluated: ");
    expect(d.deny[0]).toContain("eval_conflict_error");
  });

  test("every evaluation is one log event with outcome, number of denials and duration", async () => {
    const h = harness('package spacelift\ndeny["a"] { true }\ndeny["b"] { true }\n');
    await h.check(runSpec());
    const event = h.logs.find((l) => l.msg === "run initialization policy evaluated");
    expect(event).toMatchObject({ run: "01JABCDEFGHJKMNPQRSTVWXYZ0", outcome: "deny", denials: 2 });
    expect(typeof event?.duration_ms).toBe("number");
    expect(String(event?.policy)).toEndWith(".rego");
  });
});

describe("sample", () => {
  test("a true sample rule prints ONE JSON line {input, results, outcome} on stderr, without secrets", async () => {
    const h = harness('package spacelift\ndeny["blocked"] { input.run.type == "TASK" }\nsample { true }\n');
    await h.check(runSpec({}, ["deploy-metadata"]));
    expect(h.stderr).toHaveLength(1);
    const line = h.stderr[0] ?? "";
    expect(line.endsWith("\n")).toBe(true);
    expect(line.trimEnd()).not.toContain("\n");
    const sample = JSON.parse(line) as { input: Record<string, unknown>; results: unknown; outcome: string };
    expect(Object.keys(sample).sort()).toEqual(["input", "outcome", "results"]);
    expect(sample.outcome).toBe("allow");
    expect(sample.results).toEqual({ deny: [], sample: true });
    expect(sample.input).toMatchObject({ worker_version: "1.2.3-test", run: { user_provided_metadata: ["deploy-metadata"] } });
    expect(line).not.toContain(SECRET_ENV);
    expect(line).not.toContain(CLONE_TOKEN);

    await h.check(runSpec({ type: "TASK" }));
    expect(JSON.parse(h.stderr[1] ?? "")).toMatchObject({ outcome: "deny", results: { deny: ["blocked"], sample: true } });
  });

  test("no line when sample is false or absent", async () => {
    const conditional = harness('package spacelift\nsample { input.run.type == "PROPOSED" }\n');
    await conditional.check(runSpec());
    expect(conditional.stderr).toEqual([]);
    await conditional.check(runSpec({ type: "PROPOSED" }));
    expect(conditional.stderr).toHaveLength(1);
    const none = harness('package spacelift\ndeny["x"] { false }\n');
    await none.check(runSpec());
    expect(none.stderr).toEqual([]);
  });
});

describe("exec (opt-in)", () => {
  const on = { SPACELIFT_LAUNCHER_RUN_INITIALIZATION_POLICY_EXEC_ENABLED: "true" };

  test("runs the command array without a shell and returns status, exit_code, stdout and stderr", async () => {
    const { check } = harness(
      `package spacelift
r := exec(["/bin/sh", "-c", "echo out-$0; echo err >&2; exit 3", input.run.id])
deny[sprintf("%d %d %s %s", [r.status, r.exit_code, trim_space(r.stdout), trim_space(r.stderr)])] { true }
deny["metacharacters stayed literal"] { exec(["/bin/echo", "a;b", "$(id)"]).stdout == "a;b $(id)\\n" }
`,
      on,
    );
    expect((await check(runSpec())).deny).toEqual(["3 3 out-01JABCDEFGHJKMNPQRSTVWXYZ0 err", "metacharacters stayed literal"]);
  });

  test("a verifier program decides: exit 0 allows, anything else denies", async () => {
    const verifier = join(dir, "verify.sh");
    writeFileSync(verifier, '#!/bin/sh\n[ "$1" = "trusted" ]\n', { mode: 0o755 });
    const { check } = harness(
      `package spacelift
deny["signature check failed"] { exec(["${verifier}", input.run.user_provided_metadata[0]]).status != 0 }
`,
      on,
    );
    expect((await check(runSpec({}, ["trusted"]))).outcome).toBe("allow");
    expect((await check(runSpec({}, ["forged"]))).deny).toEqual(["signature check failed"]);
  });

  test("the pool credentials are not in the command's environment; the rest of the launcher's is", async () => {
    const { check } = harness(
      `package spacelift
deny[trim_space(exec(["/bin/sh", "-c", "echo \${SPACELIFT_TOKEN:-none} \${SPACELIFT_POOL_PRIVATE_KEY:-none} $AWS_REGION"]).stdout)] { true }
`,
      on,
      { env: { SPACELIFT_TOKEN: "tok", SPACELIFT_POOL_PRIVATE_KEY: "key", AWS_REGION: "eu-west-1", PATH: "/usr/bin:/bin" } },
    );
    expect((await check(runSpec())).deny).toEqual(["none none eu-west-1"]);
  });

  test("a command that cannot run, or runs past the time limit, denies the run", async () => {
    const missing = harness('package spacelift\ndeny["x"] { exec(["/nonexistent/verify"]).status != 0 }\n', on);
    const d = await missing.check(runSpec());
    expect(d.deny).toHaveLength(1);
    expect(d.deny[0]).toContain('exec: could not run "/nonexistent/verify": no such program');

    const slow = harness('package spacelift\ndeny["x"] { exec(["/bin/sleep", "5"]).status != 0 }\n', on, { timeLimitMs: 300 });
    const started = performance.now();
    const t = await slow.check(runSpec());
    expect(performance.now() - started).toBeLessThan(2000);
    expect(t.deny[0]).toStartWith("the policy did not finish within its time limit of 0.3s");

    const wrong = harness('package spacelift\ndeny["x"] { exec("ls").status != 0 }\n', on);
    expect((await wrong.check(runSpec())).deny[0]).toContain("exec: the argument must be an array of strings");
  });
});
