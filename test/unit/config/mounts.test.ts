import { describe, expect, test } from "bun:test";
import { loadLauncherConfig } from "../../../src/config/launcher-config.ts";
import { bindString, normalizeMountPath, parseMounts } from "../../../src/config/mounts.ts";
import { runContainerSpec } from "../../../src/launcher/supervisor/container-spec.ts";
import { parseRunSpec } from "../../../src/protocol/run-spec.ts";

function problems(text: string): string[] {
  const r = parseMounts(text);
  if (r.ok) throw new Error(`expected ${JSON.stringify(text)} to fail`);
  return r.problems;
}

test("a list of mounts with and without modes parses in order", () => {
  const r = parseMounts("/opt/cache:/mnt/cache, /etc/ssl/certs:/etc/ssl/certs:ro,/data:/data/:rw");
  expect(r).toEqual({
    ok: true,
    value: [
      { source: "/opt/cache", target: "/mnt/cache", readOnly: false },
      { source: "/etc/ssl/certs", target: "/etc/ssl/certs", readOnly: true },
      { source: "/data", target: "/data", readOnly: false },
    ],
  });
  if (r.ok) expect(r.value.map(bindString)).toEqual(["/opt/cache:/mnt/cache", "/etc/ssl/certs:/etc/ssl/certs:ro", "/data:/data"]);
});

test.each([
  ["relative host path", "cache:/mnt/cache", ["host path \"cache\" is not absolute"]],
  ["relative container path", "/opt/cache:mnt/cache", ["container path \"mnt/cache\" is not absolute"]],
  ["empty middle part", "/a:/a,,/b:/b", ["item 2 is empty"]],
  ["trailing comma", "/a:/a,", ["item 2 is empty"]],
  ["leading comma", ",/a:/a", ["item 1 is empty"]],
  ["missing colon", "/opt/cache", ["item 1 \"/opt/cache\" has no colon"]],
  ["unknown mode", "/a:/a:rx", ["unknown mode \"rx\""]],
  ["too many colons", "/a:/b:ro:z", ["too many colons"]],
  ["the workspace is the launcher's", "/x:/mnt/workspace", ["launcher owns container path \"/mnt/workspace\""]],
  ["the container root", "/x:/", ["launcher owns container path \"/\""]],
  ["a target mounted twice", "/a:/t,/b:/t/", ["item 2 \"/b:/t/\": container path \"/t\" is mounted twice"]],
  ["empty value", "", ["is empty"]],
])("%s is an error naming the item", (_why, text, expected) => {
  const got = problems(text);
  expect(got).toHaveLength(expected.length);
  expected.forEach((e, i) => expect(got[i]).toContain(e));
  for (const p of got) expect(p).toContain("; e.g. /opt/cache:/mnt/cache");
});

test("every bad item is reported, not only the first", () => {
  expect(problems("a:/a,/b:/b,/c:c,/d")).toHaveLength(3);
});

// Every spelling of a launcher-owned path is that path: a guard that compared strings as written
// would let `/mnt//workspace` cover the run's workspace.
const WORKSPACE_SPELLINGS = ["/mnt//workspace", "/mnt/./workspace", "/mnt/workspace/", "/mnt/x/../workspace", "//mnt/workspace", "/mnt/workspace/."];
const BUNDLE_SPELLINGS = ["/opt//spacelift-worker", "/opt/./spacelift-worker/lib", "/opt/spacelift-worker/", "/opt/x/../spacelift-worker", "/opt/spacelift-worker/lib/../bin"];

test.each(WORKSPACE_SPELLINGS)("container path %p is the workspace and is refused", (target) => {
  expect(problems(`/srv/x:${target}`)).toEqual([
    `item 1 "/srv/x:${target}": the launcher owns container path "/mnt/workspace"; e.g. /opt/cache:/mnt/cache,/etc/ssl/certs:/etc/ssl/certs:ro`,
  ]);
});

test.each(["/./", "//", "/x/..", "/.."])("container path %p is the container root and is refused", (target) => {
  expect(problems(`/srv/x:${target}`)[0]).toContain(`the launcher owns container path "/"`);
});

test("host and container paths are used in their normalized form, and duplicates are found by it", () => {
  expect(parseMounts("/opt//cache/./:/mnt/x/../cache/:ro")).toEqual({ ok: true, value: [{ source: "/opt/cache", target: "/mnt/cache", readOnly: true }] });
  expect(problems("/a:/t,/b:/x/../t/.")).toEqual([
    `item 2 "/b:/x/../t/.": container path "/t" is mounted twice; e.g. /opt/cache:/mnt/cache,/etc/ssl/certs:/etc/ssl/certs:ro`,
  ]);
  expect(normalizeMountPath("/srv//data/./x/../y/")).toBe("/srv/data/y");
  expect(normalizeMountPath("/")).toBe("/");
});

describe("the run container's own guard (it does not rely on the configuration having normalized)", () => {
  const config = loadLauncherConfig({}, { requireCredentials: false });
  const withMount = (source: string, target: string) => ({
    spec: parseRunSpec({
      id: "01HZY8Q3V6X9J2K4M5N6P7R8S9", type: "TRACKED",
      stack: { id: "stack-1", name: "Stack", branch: "main", repository: "org/repo" },
      commit: { hash: "abc", branch: "main", author: "Ada", message: "msg" },
      phases: [{ name: "planning", commands: ["true"] }],
    }),
    image: "busybox:1",
    config: { ...config, mounts: { allRuns: [{ source, target, readOnly: false }], readOnlyRuns: [], writeRuns: [] } },
    owner: { poolId: "pool-1", workerId: "worker-1", launcherId: "launcher-1" },
    bundle: { hostDir: "/opt/spacelift/bundle/abc", hash: "abc", loader: "ld-linux-x86-64.so.2" },
    workspaceHostDir: "/opt/spacelift/workspaces/01HZY8Q3V6X9J2K4M5N6P7R8S9",
    instructionsFile: ".spacelift-run.json",
  });

  test.each(WORKSPACE_SPELLINGS)("%p would cover the workspace", (target) => {
    expect(() => runContainerSpec(withMount("/srv/x", target))).toThrow(
      "the extra mount /srv/x:/mnt/workspace would cover /mnt/workspace, which the launcher mounts itself; choose another container path",
    );
  });

  test.each(BUNDLE_SPELLINGS)("%p would cover the worker bundle", (target) => {
    expect(() => runContainerSpec(withMount("/srv/x", target))).toThrow("would cover /opt/spacelift-worker, which the launcher mounts itself");
  });

  test("Docker gets the normalized paths", () => {
    const spec = runContainerSpec(withMount("/srv//x/", "/mnt/./cache/"));
    expect(spec.mounts?.at(-1)).toEqual({ host: "/srv/x", container: "/mnt/cache", readOnly: false });
    // A sibling whose name only starts like the bundle's is not inside it.
    expect(runContainerSpec(withMount("/srv/x", "/opt/spacelift-worker2")).mounts?.at(-1)?.container).toBe("/opt/spacelift-worker2");
  });
});
