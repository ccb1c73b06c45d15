// `spacelift-launcher` with a bad configuration: one line per problem naming the variable, exit 1,
// nothing started. No network: the configuration is refused before anything connects.
import { expect, test } from "bun:test";
import { main } from "../../../src/launcher/main.ts";

async function launch(env: Record<string, string>): Promise<{ code: number; stderr: string }> {
  let stderr = "";
  const code = await main([], env, { stdout: () => {}, stderr: (t) => (stderr += t) });
  return { code, stderr };
}

test("missing credentials: exit 1, one line per variable", async () => {
  const r = await launch({ PATH: "/usr/bin" });
  expect(r.code).toBe(1);
  const lines = r.stderr.trimEnd().split("\n");
  expect(lines).toEqual([expect.stringMatching(/^spacelift-launcher: SPACELIFT_TOKEN: is not set/), expect.stringMatching(/^spacelift-launcher: SPACELIFT_POOL_PRIVATE_KEY: is not set/)]);
});

test("a bad instance metadata endpoint is named with a good example", async () => {
  const r = await launch({ SPACELIFT_INSTANCE_METADATA_ENDPOINT: "ftp://nope" });
  expect(r.code).toBe(1);
  const line = r.stderr.split("\n").find((l) => l.includes("SPACELIFT_INSTANCE_METADATA_ENDPOINT"));
  expect(line).toContain("is not an http(s) URL");
});
