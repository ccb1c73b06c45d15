/**
 * A small Prometheus registry shared by the launcher and the mothership: counters, gauges (set, or
 * read at scrape time) and histograms, rendered in the text exposition format (version 0.0.4). No
 * client library: this is all either program needs, and the launcher imports this file only when
 * SPACELIFT_LAUNCHER_METRICS_ADDR is set.
 *
 * Names are checked when a metric is made, so a wrong one fails at start, not in a scrape: counters
 * end in `_total`, label names are Prometheus label names and never begin with `__`. Label values and
 * help texts are escaped as the format requires (backslash, double quote, newline).
 */

export type Labels = Readonly<Record<string, string>>;

/** The Content-Type of a rendered registry. */
export const EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Seconds: from a millisecond up to a few minutes, for latencies from a queue or a Docker pull. */
export const LATENCY_BUCKETS_SECONDS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

interface Sample {
  labels: Labels;
  value: number;
}

export interface Metric {
  readonly name: string;
  readonly help: string;
  readonly type: "counter" | "gauge" | "histogram";
  lines(): string[];
}

/** Values by their label set: one key per distinct set, whatever the order the labels were given in. */
class Series<T> {
  private readonly byKey = new Map<string, { labels: Labels; value: T }>();

  constructor(private readonly labelNames: readonly string[]) {}

  get(labels: Labels, make: () => T): T {
    const key = this.key(labels);
    let entry = this.byKey.get(key);
    if (!entry) this.byKey.set(key, (entry = { labels: { ...labels }, value: make() }));
    return entry.value;
  }

  find(labels: Labels): T | undefined {
    return this.byKey.get(this.key(labels))?.value;
  }

  entries(): Array<{ labels: Labels; value: T }> {
    return [...this.byKey.values()];
  }

  private key(labels: Labels): string {
    const names = Object.keys(labels);
    if (names.length !== this.labelNames.length || names.some((n) => !this.labelNames.includes(n))) {
      throw new RangeError(`labels {${names.join(", ")}} do not match the metric's labels {${this.labelNames.join(", ")}}`);
    }
    return this.labelNames.map((n) => labels[n]).join("\u0000");
  }
}

class Counter implements Metric {
  readonly type = "counter";
  private readonly series: Series<{ n: number }>;

  constructor(readonly name: string, readonly help: string, labelNames: readonly string[]) {
    this.series = new Series(labelNames);
    if (labelNames.length === 0) this.series.get({}, () => ({ n: 0 }));
  }

  inc(labels: Labels = {}, by = 1): void {
    if (!(by >= 0)) throw new RangeError(`counter ${this.name} can only go up (got ${by})`);
    this.series.get(labels, () => ({ n: 0 })).n += by;
  }

  value(labels: Labels = {}): number {
    return this.series.find(labels)?.n ?? 0;
  }

  lines(): string[] {
    return this.series.entries().map((e) => sampleLine(this.name, e.labels, e.value.n));
  }
}

class Gauge implements Metric {
  readonly type = "gauge";
  private readonly series: Series<{ n: number }>;

  /** `collect`, when given, is read at every scrape and is the gauge's whole content. */
  constructor(readonly name: string, readonly help: string, labelNames: readonly string[], private readonly collect?: () => Sample[]) {
    this.series = new Series(labelNames);
  }

  set(value: number, labels: Labels = {}): void {
    this.series.get(labels, () => ({ n: 0 })).n = value;
  }

  lines(): string[] {
    const samples = this.collect ? this.collect() : this.series.entries().map((e) => ({ labels: e.labels, value: e.value.n }));
    return samples.map((s) => sampleLine(this.name, s.labels, s.value));
  }
}

export class Histogram implements Metric {
  readonly type = "histogram";
  private readonly series: Series<{ counts: number[]; sum: number; count: number }>;

  constructor(readonly name: string, readonly help: string, labelNames: readonly string[], private readonly buckets: readonly number[]) {
    if (labelNames.includes("le")) throw new RangeError(`histogram ${name} cannot have a label named le`);
    if (buckets.length === 0 || buckets.some((b, i) => !Number.isFinite(b) || (i > 0 && b <= buckets[i - 1]!))) {
      throw new RangeError(`histogram ${name} needs finite buckets in increasing order`);
    }
    this.series = new Series(labelNames);
  }

  observe(value: number, labels: Labels = {}): void {
    if (Number.isNaN(value)) return;
    const s = this.series.get(labels, () => ({ counts: this.buckets.map(() => 0), sum: 0, count: 0 }));
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]!) s.counts[i]!++;
    s.sum += value;
    s.count++;
  }

  lines(): string[] {
    return this.series.entries().flatMap(({ labels, value }) => [
      ...this.buckets.map((le, i) => sampleLine(`${this.name}_bucket`, { ...labels, le: formatNumber(le) }, value.counts[i]!)),
      sampleLine(`${this.name}_bucket`, { ...labels, le: "+Inf" }, value.count),
      sampleLine(`${this.name}_sum`, labels, value.sum),
      sampleLine(`${this.name}_count`, labels, value.count),
    ]);
  }
}

export class Registry {
  private readonly metrics = new Map<string, Metric>();

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    if (!name.endsWith("_total")) throw new RangeError(`counter ${name} must end in _total`);
    return this.add(new Counter(name, help, checkLabels(name, labelNames)));
  }

  gauge(name: string, help: string, labelNames: readonly string[] = [], collect?: () => Sample[]): Gauge {
    return this.add(new Gauge(name, help, checkLabels(name, labelNames), collect));
  }

  histogram(name: string, help: string, buckets: readonly number[] = LATENCY_BUCKETS_SECONDS, labelNames: readonly string[] = []): Histogram {
    return this.add(new Histogram(name, help, checkLabels(name, labelNames), buckets));
  }

  /** The text exposition format: HELP and TYPE, then the samples, of every metric in the order made. */
  render(): string {
    const out: string[] = [];
    for (const m of this.metrics.values()) {
      out.push(`# HELP ${m.name} ${m.help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`, `# TYPE ${m.name} ${m.type}`, ...m.lines());
    }
    return out.join("\n") + "\n";
  }

  /** Adds a metric made elsewhere (one that outlives this registry, e.g. observed by a long-lived part). */
  add<M extends Metric>(metric: M): M {
    if (!METRIC_NAME.test(metric.name)) throw new RangeError(`${JSON.stringify(metric.name)} is not a Prometheus metric name`);
    if (this.metrics.has(metric.name)) throw new RangeError(`metric ${metric.name} is registered twice`);
    this.metrics.set(metric.name, metric);
    return metric;
  }
}

function checkLabels(metric: string, names: readonly string[]): readonly string[] {
  for (const n of names) {
    if (!LABEL_NAME.test(n) || n.startsWith("__")) throw new RangeError(`metric ${metric}: ${JSON.stringify(n)} is not a label name`);
  }
  if (new Set(names).size !== names.length) throw new RangeError(`metric ${metric} names a label twice`);
  return names;
}

function sampleLine(name: string, labels: Labels, value: number): string {
  const pairs = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabelValue(v)}"`);
  return `${name}${pairs.length > 0 ? `{${pairs.join(",")}}` : ""} ${formatNumber(value)}`;
}

/** Label values may hold anything; only these three need escapes in the text format. */
function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function formatNumber(n: number): string {
  if (Number.isNaN(n)) return "NaN";
  if (n === Infinity) return "+Inf";
  if (n === -Infinity) return "-Inf";
  return String(n);
}
