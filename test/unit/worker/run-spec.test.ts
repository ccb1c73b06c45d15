import { describe, expect, test } from "bun:test";
import { hasCode } from "../../../src/errors.ts";
import { effectiveTimeouts, isReadOnlyRun, parseRunSpec, runSecrets } from "../../../src/protocol/run-spec.ts";
import { parseWorkerInstructions } from "../../../src/protocol/worker-instructions.ts";

function validSpec(): Record<string, unknown> {
  return {
    id: "01HZY8Q3V6X9J2K4M5N6P7R8S9",
    type: "TRACKED",
    stack: { id: "stack-1", name: "Infra", slug: "infra", labels: ["prod"], branch: "main", repository: "org/infra", project_root: "envs/prod" },
    commit: { hash: "0123abcd", branch: "main", author: "Ada", message: "Add bucket" },
    runner_image: "registry.local/runner:1",
    environment: [
      { name: "TF_VAR_region", value: "eu-west-1" },
      { name: "AWS_SECRET_ACCESS_KEY", value: "wJalrXUtnFEMI", secret: true },
    ],
    phases: [
      { name: "initializing", commands: ["terraform init"] },
      { name: "planning", commands: ["terraform plan"] },
    ],
    source: { repository_url: "https://github.com/org/infra.git", branch: "main", commit: "0123abcd" },
    timeouts: { logs_ms: 60000 },
    future_field: "ignored",
  };
}

/** The message of the run-spec-invalid error thrown for `json`. */
function problem(json: unknown): string {
  try {
    parseRunSpec(json);
  } catch (error) {
    expect(hasCode(error, "run-spec-invalid")).toBe(true);
    return (error as Error).message;
  }
  throw new Error("expected parseRunSpec to throw");
}

describe("run spec", () => {
  test("parses a full spec, drops unknown fields and fills defaults", () => {
    const spec = parseRunSpec(validSpec());
    expect(spec.stack.project_root).toBe("envs/prod");
    expect(spec.environment[0]).toEqual({ name: "TF_VAR_region", value: "eu-west-1", secret: false });
    expect("future_field" in spec).toBe(false);
    const minimal = validSpec();
    delete minimal.source;
    delete minimal.timeouts;
    delete minimal.runner_image;
    delete minimal.environment;
    const parsed = parseRunSpec({ ...minimal, stack: { id: "s", name: "S", branch: "main", repository: "r" } });
    expect(parsed.stack.labels).toEqual([]);
    expect(parsed.stack.project_root).toBe("");
    expect(parsed.environment).toEqual([]);
  });

  test("names the missing or bad field", () => {
    const noName = validSpec();
    noName.stack = { ...(noName.stack as object), name: undefined };
    expect(problem(noName)).toBe("invalid run spec: stack.name is missing");
    expect(problem({ ...validSpec(), id: "not-a-ulid" })).toContain("id not a ULID");
    expect(problem({ ...validSpec(), type: "DELETE" })).toContain(`type must be ("PROPOSED" | "TRACKED" | "TASK" | "DESTROY")`);
    expect(problem({ ...validSpec(), phases: [{ name: "ok", commands: [] }, { name: "Bad Name", commands: [] }] })).toContain("phases.1.name");
    expect(problem({ ...validSpec(), phases: [{ name: "planning", commands: [""] }] })).toContain("phases.0.commands.0 must not be empty");
    expect(problem({ ...validSpec(), stack: { ...(validSpec().stack as object), project_root: "../etc" } })).toContain("stack.project_root");
    expect(problem({ ...validSpec(), stack: { ...(validSpec().stack as object), project_root: "/abs" } })).toContain("stack.project_root");
    expect(problem({ ...validSpec(), environment: [{ name: "1BAD", value: "x" }] })).toContain("environment.0.name");
    expect(problem({ ...validSpec(), environment: [{ name: "A", value: "1" }, { name: "A", value: "2" }] })).toContain("names a variable twice");
    expect(problem({ ...validSpec(), timeouts: { run_ms: 1.5 } })).toContain("timeouts.run_ms");
    expect(problem(null)).toContain("(root)");
  });

  test("never echoes a value in its error", () => {
    const message = problem({ ...validSpec(), environment: [{ name: "TOKEN", value: 424242, secret: true }] });
    expect(message).toContain("environment.0.value");
    expect(message).not.toContain("424242");
  });

  test("user-provided metadata is kept as strings; a non-string entry is refused", () => {
    expect(parseRunSpec({ ...validSpec(), user_provided_metadata: ["eyJhbGciOi.x.y", "note"] }).user_provided_metadata).toEqual(["eyJhbGciOi.x.y", "note"]);
    expect(parseRunSpec(validSpec()).user_provided_metadata).toBeUndefined();
    expect(problem({ ...validSpec(), user_provided_metadata: [42] })).toContain("user_provided_metadata.0");
  });

  test("read-only runs are exactly the proposed ones", () => {
    expect(isReadOnlyRun("PROPOSED")).toBe(true);
    for (const type of ["TRACKED", "TASK", "DESTROY"] as const) expect(isReadOnlyRun(type)).toBe(false);
  });

  test("per-run timeouts may shorten the launcher's limits, never extend them", () => {
    const limits = { logsMs: 420_000, runMs: 4_200_000 };
    const spec = parseRunSpec(validSpec());
    expect(effectiveTimeouts(spec, limits)).toEqual({ logsMs: 60_000, runMs: 4_200_000 });
    const tooLong = parseRunSpec({ ...validSpec(), timeouts: { run_ms: 5_000_000 } });
    expect(() => effectiveTimeouts(tooLong, limits)).toThrow("timeouts.run_ms 5000000 exceeds");
    const tooQuiet = parseRunSpec({ ...validSpec(), timeouts: { logs_ms: 420_001 } });
    expect(() => effectiveTimeouts(tooQuiet, limits)).toThrow("timeouts.logs_ms");
  });

  test("secrets are the non-empty secret values", () => {
    const spec = parseRunSpec({ ...validSpec(), environment: [...(validSpec().environment as object[]), { name: "EMPTY", value: "", secret: true }] });
    expect(runSecrets(spec)).toEqual(["wJalrXUtnFEMI"]);
  });

  test("worker instructions carry the nonce and the VCS mapping", () => {
    const instructions = parseWorkerInstructions({ run: validSpec(), marker_nonce: "abcdef0123456789abcd" });
    expect(instructions.vcs_mapping).toEqual({});
    expect(() => parseWorkerInstructions({ run: validSpec(), marker_nonce: "short" })).toThrow("marker_nonce");
    expect(() => parseWorkerInstructions({ run: validSpec(), marker_nonce: "abcdef0123456789abcd", vcs_mapping: { gl: "nope" } })).toThrow(
      "vcs_mapping.gl",
    );
  });
});
