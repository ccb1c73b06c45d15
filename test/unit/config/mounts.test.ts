import { expect, test } from "bun:test";
import { bindString, parseMounts } from "../../../src/config/mounts.ts";

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
