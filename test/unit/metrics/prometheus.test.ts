// The shared Prometheus registry (src/metrics/prometheus.ts): what it renders is read back by the strict
// exposition reader of the tests (HELP/TYPE, label escapes, cumulative buckets), and bad names fail when made.
import { describe, expect, test } from "bun:test";
import { parseListenAddress } from "../../../src/config/listen-address.ts";
import { Registry } from "../../../src/metrics/prometheus.ts";
import { parseExposition, sampleValue } from "../../support/prometheus.ts";

describe("Registry", () => {
  test("counters, gauges and a histogram render as a valid exposition, values read back exactly", () => {
    const r = new Registry();
    const runs = r.counter("spacelift_test_runs_total", "Runs by reason.", ["reason"]);
    r.gauge("spacelift_test_depth", "Depth read at scrape.", [], () => [{ labels: {}, value: 7 }]);
    const up = r.gauge("spacelift_test_up", "Set gauge.", ["what"]);
    const h = r.histogram("spacelift_test_wait_seconds", "A latency.", [0.1, 1, 10]);
    runs.inc({ reason: "ok" });
    runs.inc({ reason: "ok" }, 2);
    runs.inc({ reason: "failed" });
    up.set(1, { what: "docker" });
    for (const v of [0.05, 0.5, 0.5, 5, 50]) h.observe(v);
    const families = parseExposition(r.render());
    expect([...families.keys()]).toEqual(["spacelift_test_runs_total", "spacelift_test_depth", "spacelift_test_up", "spacelift_test_wait_seconds"]);
    expect(sampleValue(families, "spacelift_test_runs_total", { reason: "ok" })).toBe(3);
    expect(sampleValue(families, "spacelift_test_runs_total", { reason: "failed" })).toBe(1);
    expect(sampleValue(families, "spacelift_test_depth")).toBe(7);
    expect(sampleValue(families, "spacelift_test_up", { what: "docker" })).toBe(1);
    expect([0.1, 1, 10].map((le) => sampleValue(families, "spacelift_test_wait_seconds_bucket", { le: String(le) }))).toEqual([1, 3, 4]);
    expect(sampleValue(families, "spacelift_test_wait_seconds_bucket", { le: "+Inf" })).toBe(5);
    expect(sampleValue(families, "spacelift_test_wait_seconds_count")).toBe(5);
    expect(sampleValue(families, "spacelift_test_wait_seconds_sum")).toBeCloseTo(56.05);
  });

  test("label values with quotes, backslashes and newlines are escaped and read back as given", () => {
    const r = new Registry();
    const c = r.counter("spacelift_test_escapes_total", 'Help with a \\ and a\nnewline and "quotes".', ["v"]);
    const tricky = ['a"b', "back\\slash", "two\nlines", "ünïcödé ✓", "}{,="];
    for (const v of tricky) c.inc({ v });
    const text = r.render();
    expect(text.split("\n").filter((l) => l.startsWith("spacelift_test_escapes_total"))).toHaveLength(tricky.length);
    const families = parseExposition(text);
    for (const v of tricky) expect(sampleValue(families, "spacelift_test_escapes_total", { v })).toBe(1);
    expect(families.get("spacelift_test_escapes_total")!.help).toBe('Help with a \\ and a\nnewline and "quotes".');
  });

  test("names against the conventions fail when made, not in a scrape", () => {
    const r = new Registry();
    expect(() => r.counter("spacelift_runs", "no _total")).toThrow(/must end in _total/);
    expect(() => r.gauge("spacelift-bad", "dash")).toThrow(/not a Prometheus metric name/);
    expect(() => r.gauge("spacelift_ok", "reserved label", ["__name"])).toThrow(/not a label name/);
    expect(() => r.histogram("spacelift_h_seconds", "le label", [1], ["le"])).toThrow(/le/);
    expect(() => r.histogram("spacelift_h2_seconds", "unordered", [1, 0.5])).toThrow(/increasing/);
    r.gauge("spacelift_once", "x");
    expect(() => r.gauge("spacelift_once", "x")).toThrow(/twice/);
    const c = r.counter("spacelift_c_total", "x", ["a"]);
    expect(() => c.inc({ b: "1" })).toThrow(/do not match/);
    expect(() => c.inc({ a: "1" }, -1)).toThrow(/only go up/);
  });

  test("the exposition reader rejects what a scraper would", () => {
    expect(() => parseExposition("spacelift_x 1\n")).toThrow(/outside its family/);
    expect(() => parseExposition("# HELP spacelift_x_total x\n# TYPE spacelift_x_total gauge\nspacelift_x_total 1\n")).toThrow(/_total/);
    expect(() => parseExposition("# HELP spacelift_x_ms x\n# TYPE spacelift_x_ms gauge\nspacelift_x_ms 1\n")).toThrow(/base units/);
    expect(() => parseExposition('# HELP spacelift_y x\n# TYPE spacelift_y gauge\nspacelift_y{a="1} 1\n')).toThrow();
  });
});

describe("SPACELIFT_LAUNCHER_METRICS_ADDR values", () => {
  test.each([
    ["127.0.0.1:9100", { host: "127.0.0.1", port: 9100 }],
    ["[::1]:9100", { host: "::1", port: 9100 }],
    ["0.0.0.0:1", { host: "0.0.0.0", port: 1 }],
    ["metrics.internal:65535", { host: "metrics.internal", port: 65535 }],
  ])("%s is accepted", (text, want) => {
    expect(parseListenAddress(text)).toEqual({ ok: true, value: want });
  });

  test.each([
    [":9100", /has no host/],
    ["9100", /has no port/],
    ["127.0.0.1:0", /1 to 65535/],
    ["127.0.0.1:99999", /1 to 65535/],
    ["127.0.0.1:http", /1 to 65535/],
    ["::1:9100", /brackets/],
    ["[nope]:9100", /not an IPv6 address/],
    ["bad_host!:9100", /not an IP address or a host name/],
  ])("%s is refused with a reason and an example", (text, why) => {
    const r = parseListenAddress(text);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.problems[0]).toMatch(why);
      expect(r.problems[0]).toContain("e.g. 127.0.0.1:9100");
    }
  });
});
