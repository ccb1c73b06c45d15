// Policy engine benchmark: parse+check time of a generated 1,000-line policy, and evaluation
// latency (p50/p99) of a realistic Spacelift run-initialization policy.
import { compilePolicy, evaluateInitPolicy } from "../../src/policy/index.ts";
import { percentile } from "./lib/proc.ts";
import { report } from "./lib/report.ts";

function generatedPolicy(lines: number): string {
  const out = ["package spacelift", "import future.keywords.in", ""];
  let i = 0;
  while (out.length < lines) {
    out.push(
      `deny[sprintf("rule ${i}: image %s is not allowed", [input.docker_image])] {`,
      `  input.run.type == "TRACKED"`,
      `  not startswith(input.docker_image, "registry-${i}.example.com/")`,
      `  some label in input.run.labels`,
      `  label == "check-${i}"`,
      `}`,
      `helper_${i}(x) := y if { y := concat("-", [x, "${i}"]) }`,
      "",
    );
    i++;
  }
  return out.join("\n");
}

const initPolicy = `package spacelift

import future.keywords.in

allowed_registries := {"public.ecr.aws/spacelift/", "ghcr.io/acme/"}

deny[sprintf("image %s is not from an allowed registry", [input.docker_image])] {
  not any_prefix(input.docker_image)
}

any_prefix(image) {
  some prefix in allowed_registries
  startswith(image, prefix)
}

deny["tracked runs need a signed commit"] {
  input.run.type == "TRACKED"
  not signed
}

signed {
  some meta in input.run.user_provided_metadata
  io.jwt.verify_hs256(meta, "bench-secret")
}

deny[sprintf("label %s is forbidden", [l])] {
  some l in input.run.labels
  regex.match("^forbidden-", l)
}

sample { input.run.type == "TRACKED" }
`;

const input = {
  docker_image: "public.ecr.aws/spacelift/runner-terraform:latest",
  run: {
    type: "TRACKED",
    labels: ["team-infra", "forbidden-x", "env-prod"],
    user_provided_metadata: ["eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyIjoiYWRhIn0.invalid"],
    commit: { hash: "abc123", message: "Update", author: "ada" },
  },
  static_run_environment: { environment_variables: { A: "1" } },
  worker_version: "0.1.0",
};

const pct = percentile;

const big = generatedPolicy(1000);
const compileTimes: number[] = [];
for (let i = 0; i < 10; i++) {
  const t0 = performance.now();
  compilePolicy(big, "generated.rego");
  compileTimes.push(performance.now() - t0);
}
const policy = compilePolicy(initPolicy, "init.rego");
for (let i = 0; i < 200; i++) evaluateInitPolicy(policy, input);
const evalTimes: number[] = [];
let result = evaluateInitPolicy(policy, input);
for (let i = 0; i < 2000; i++) {
  const t0 = performance.now();
  result = evaluateInitPolicy(policy, input);
  evalTimes.push(performance.now() - t0);
}

if (result.outcome !== "deny" || result.deny.length !== 2) throw new Error(`the init policy gave ${result.outcome} with ${result.deny.length} messages, expected deny with 2`);
report({ name: "policy parse+check, 1,000-line policy", value: pct(compileTimes, 50), unit: "ms", target: { max: 100 }, note: `p50 of 10 (max ${Math.max(...compileTimes).toFixed(1)} ms)` });
report({ name: "policy evaluation p50, init policy", value: pct(evalTimes, 50) * 1000, unit: "µs", target: { max: 1000 }, note: "2,000 evaluations after 200 warm-up" });
report({ name: "policy evaluation p99, init policy", value: pct(evalTimes, 99) * 1000, unit: "µs", target: { max: 25_000 }, note: "GC pauses and a shared machine land here" });
