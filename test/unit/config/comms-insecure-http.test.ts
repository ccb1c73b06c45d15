// A plain http:// comms URL (the variable or the token's comms_url) is a configuration error for the
// poll transport unless SPACELIFT_WORKER_COMMS_INSECURE_HTTP=true says the operator means it; MQTT
// does not use the URL, so it does not care.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { loadLauncherConfig } from "../../../src/config/launcher-config.ts";
import { makeFixture, problemsOf, type Fixture } from "./config-env.ts";
import { b64, NOW, tokenJson } from "./pki-fixtures.ts";

let f: Fixture;
let plainToken: string;
beforeAll(async () => {
  f = await makeFixture();
  plainToken = b64(JSON.stringify(tokenJson(f.certificate, f.ca, { broker: undefined, comms_url: "http://10.0.0.5:8080" })));
});
afterAll(() => f.cleanup());

const OPT_IN = "SPACELIFT_WORKER_COMMS_INSECURE_HTTP";

test("poll to an http:// SPACELIFT_WORKER_COMMS_URL: one line naming the variable and the opt-in", () => {
  const problems = problemsOf({ ...f.base, SPACELIFT_WORKER_COMMS_PROTOCOL: "poll", SPACELIFT_WORKER_COMMS_URL: "http://lb.internal" });
  expect(problems).toHaveLength(1);
  expect(problems[0]!.variable).toBe("SPACELIFT_WORKER_COMMS_URL");
  expect(problems[0]!.message).toContain("is a plain http:// URL; give the https:// URL");
  expect(problems[0]!.message).toContain(`${OPT_IN}=true`);
});

test("poll by default (no broker) to a token whose comms_url is http://: the problem is the token's, its URL not echoed", () => {
  const problems = problemsOf({ ...f.base, SPACELIFT_TOKEN: plainToken });
  expect(problems.map((p) => p.variable)).toEqual(["SPACELIFT_TOKEN"]);
  expect(problems[0]!.message).toContain("has a plain http:// comms_url");
  expect(problems[0]!.message).not.toContain("10.0.0.5");
  // An https:// URL given instead of the token's is fine.
  expect(problemsOf({ ...f.base, SPACELIFT_TOKEN: plainToken, SPACELIFT_WORKER_COMMS_URL: "https://lb.internal" })).toEqual([]);
});

test("the opt-in accepts both; mqtt never looks at the URL; a malformed opt-in is its own problem", () => {
  const c = loadLauncherConfig({ ...f.base, SPACELIFT_TOKEN: plainToken, [OPT_IN]: "true" }, { now: NOW });
  expect(c.comms).toMatchObject({ protocol: "poll", url: "http://10.0.0.5:8080" });
  expect(problemsOf({ ...f.base, SPACELIFT_WORKER_COMMS_PROTOCOL: "poll", SPACELIFT_WORKER_COMMS_URL: "http://lb.internal", [OPT_IN]: "yes" })).toEqual([]);
  expect(problemsOf({ ...f.base, SPACELIFT_WORKER_COMMS_URL: "http://lb.internal" })).toEqual([]);
  expect(problemsOf({ ...f.base, [OPT_IN]: "maybe" }).map((p) => p.variable)).toEqual([OPT_IN]);
  expect(problemsOf({ ...f.base, SPACELIFT_WORKER_COMMS_PROTOCOL: "poll", SPACELIFT_WORKER_COMMS_URL: "http://lb.internal", [OPT_IN]: "false" }).map((p) => p.variable)).toEqual([
    "SPACELIFT_WORKER_COMMS_URL",
  ]);
});
