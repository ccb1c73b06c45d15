// `make demo` fails when its followed logs leak the secret or do not show it masked (scripts/demo.ts).
import { expect, test } from "bun:test";
import { MASK } from "../../../src/launcher/log-masker.ts";
import { secretProblem } from "../../../scripts/demo/secret-check.ts";

const SECRET = "correct-horse-battery-staple";

test("masked logs pass", () => {
  expect(secretProblem(`hello from the planning phase\nthe secret is ${MASK}\napplying\n`, SECRET, "the secret is ")).toBeNull();
});

test("the secret value anywhere in the logs is a leak, even next to a mask", () => {
  expect(secretProblem(`the secret is ${SECRET}\n`, SECRET, "the secret is ")?.kind).toBe("leaked");
  expect(secretProblem(`the secret is ${MASK}\nlater: x${SECRET}y\n`, SECRET, "the secret is ")?.kind).toBe("leaked");
});

test("no mask where the secret was printed (line missing, or cut) fails too", () => {
  expect(secretProblem("hello\napplying\n", SECRET, "the secret is ")).toMatchObject({ kind: "unmasked", message: expect.stringContaining(MASK) });
  expect(secretProblem("the secret is correct-horse\n", SECRET, "the secret is ")?.kind).toBe("unmasked");
});
