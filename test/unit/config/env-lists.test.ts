import { expect, test } from "bun:test";
import { environmentForRun, parseNameList, resolveNames } from "../../../src/config/env-lists.ts";

test("whitelist items carry ro_/wo_ scopes", () => {
  expect(parseNameList("AWS_REGION, ro_PLAN_TOKEN,wo_DEPLOY_KEY,AWS_REGION", { scopes: true })).toEqual({
    ok: true,
    value: [
      { name: "AWS_REGION", scope: "all" },
      { name: "PLAN_TOKEN", scope: "readonly" },
      { name: "DEPLOY_KEY", scope: "write" },
    ],
  });
});

test("without scopes a ro_ prefix is part of the name", () => {
  expect(parseNameList("ro_X", { scopes: false })).toEqual({ ok: true, value: [{ name: "ro_X", scope: "all" }] });
});

test.each([
  ["A,,B", "item 2 is empty"],
  ["A,", "item 2 is empty"],
  ["", "is empty"],
  ["1ABC", "item 1 \"1ABC\" is not an environment variable name"],
  ["A-B", "is not an environment variable name"],
  ["ro_", "is not an environment variable name"],
  ["SPACELIFT_POOL_PRIVATE_KEY", "the pool credentials are never passed to runs"],
  ["wo_SPACELIFT_TOKEN", "the pool credentials are never passed to runs"],
])("%p is an error (%s)", (text, expected) => {
  const r = parseNameList(text, { scopes: true });
  expect(r.ok).toBe(false);
  if (!r.ok) expect(r.problems.join(" | ")).toContain(expected);
});

test("values come from the launcher's environment; a listed name that is not set is an error naming it", () => {
  const env = { A: "1", B: "" };
  expect(resolveNames([{ name: "A", scope: "all" }, { name: "B", scope: "write" }], env, { secret: false })).toEqual({
    ok: true,
    value: [
      { name: "A", value: "1", scope: "all" },
      { name: "B", value: "", scope: "write" },
    ],
  });
  const missing = resolveNames([{ name: "NOPE", scope: "all" }], env, { secret: false });
  expect(missing).toEqual({ ok: false, problems: [expect.stringContaining("lists NOPE, which is not set")] });
  const empty = resolveNames([{ name: "B", scope: "all" }], env, { secret: true });
  expect(empty).toEqual({ ok: false, problems: [expect.stringContaining("lists B, whose value is empty")] });
});

test("a run gets whitelisted variables by scope, masked ones always, and the masked values as secrets", () => {
  const lists = {
    masked: [{ name: "DB_PASSWORD", value: "hunter2", scope: "all" as const }],
    whitelisted: [
      { name: "REGION", value: "eu-west-1", scope: "all" as const },
      { name: "PLAN", value: "p", scope: "readonly" as const },
      { name: "DEPLOY", value: "d", scope: "write" as const },
    ],
  };
  expect(environmentForRun(lists, "readonly")).toEqual({ env: { REGION: "eu-west-1", PLAN: "p", DB_PASSWORD: "hunter2" }, secrets: ["hunter2"] });
  expect(environmentForRun(lists, "write")).toEqual({ env: { REGION: "eu-west-1", DEPLOY: "d", DB_PASSWORD: "hunter2" }, secrets: ["hunter2"] });
});
