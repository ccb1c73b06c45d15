/**
 * A strict reader of the Prometheus text exposition format (0.0.4) for tests: every line must be a
 * HELP, a TYPE or a sample of the family those announced; label values are unescaped; a histogram's
 * buckets must be cumulative and end in `+Inf` equal to its `_count`. It throws, naming the line, on
 * anything a scraper would reject or that breaks the naming conventions (`_total` counters, base
 * units: `_seconds` and `_bytes`, never milliseconds or kilobytes).
 */
export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface PromFamily {
  name: string;
  help: string;
  type: "counter" | "gauge" | "histogram" | "summary" | "untyped";
  samples: PromSample[];
}

const NAME = "[a-zA-Z_:][a-zA-Z0-9_:]*";
const SAMPLE = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)$`);
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)/y;
const NON_BASE_UNITS = /_(milliseconds|ms|microseconds|minutes|hours|kilobytes|megabytes|kb|mb|percent)(_|$)/;

export function parseExposition(text: string): Map<string, PromFamily> {
  if (!text.endsWith("\n")) throw new Error("the exposition does not end with a newline");
  const families = new Map<string, PromFamily>();
  let current: PromFamily | undefined;
  const lines = text.slice(0, -1).split("\n");
  lines.forEach((line, i) => {
    const where = `line ${i + 1} ${JSON.stringify(line)}`;
    if (line.startsWith("# HELP ")) {
      const m = new RegExp(`^# HELP (${NAME}) (.*)$`).exec(line);
      if (!m) throw new Error(`${where}: malformed HELP`);
      if (families.has(m[1]!)) throw new Error(`${where}: family ${m[1]} described twice`);
      current = { name: m[1]!, help: m[2]!.replace(/\\n/g, "\n").replace(/\\\\/g, "\\"), type: "untyped", samples: [] };
      families.set(current.name, current);
      return;
    }
    if (line.startsWith("# TYPE ")) {
      const m = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`).exec(line);
      if (!m || !current || m[1] !== current.name || current.samples.length > 0) throw new Error(`${where}: TYPE must follow its family's HELP, before its samples`);
      current.type = m[2] as PromFamily["type"];
      return;
    }
    if (line.startsWith("#") || line.trim() === "") throw new Error(`${where}: unexpected comment or blank line`);
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`${where}: not a sample line`);
    const [, name, labelText, valueText] = m as unknown as [string, string, string | undefined, string];
    if (!current || !belongsTo(name, current)) throw new Error(`${where}: sample ${name} outside its family's HELP/TYPE`);
    const value = valueText === "+Inf" ? Infinity : valueText === "-Inf" ? -Infinity : valueText === "NaN" ? NaN : Number(valueText);
    if (!/^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$|^[-+]Inf$|^NaN$/.test(valueText)) throw new Error(`${where}: ${valueText} is not a number`);
    current.samples.push({ name, labels: parseLabels(labelText ?? "", where), value });
  });
  for (const f of families.values()) checkConventions(f);
  return families;
}

function belongsTo(sample: string, f: PromFamily): boolean {
  if (f.type === "histogram") return [`${f.name}_bucket`, `${f.name}_sum`, `${f.name}_count`].includes(sample);
  return sample === f.name;
}

function parseLabels(text: string, where: string): Record<string, string> {
  const labels: Record<string, string> = {};
  LABEL.lastIndex = 0;
  while (LABEL.lastIndex < text.length) {
    const m = LABEL.exec(text);
    if (!m) throw new Error(`${where}: malformed labels`);
    if (m[1]!.startsWith("__")) throw new Error(`${where}: label ${m[1]} is reserved`);
    if (Object.hasOwn(labels, m[1]!)) throw new Error(`${where}: label ${m[1]} twice`);
    labels[m[1]!] = m[2]!.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
    if (m[3] === "") break;
  }
  return labels;
}

function checkConventions(f: PromFamily): void {
  if (f.type === "untyped") throw new Error(`${f.name}: no TYPE line`);
  if (f.help.trim() === "") throw new Error(`${f.name}: empty HELP`);
  if ((f.type === "counter") !== f.name.endsWith("_total")) throw new Error(`${f.name}: a counter's name, and only a counter's, ends in _total`);
  if (NON_BASE_UNITS.test(f.name)) throw new Error(`${f.name}: not in base units (seconds, bytes)`);
  if (f.type === "histogram") checkHistogram(f);
  const seen = new Set<string>();
  for (const s of f.samples) {
    const key = `${s.name}${JSON.stringify(Object.entries(s.labels).sort())}`;
    if (seen.has(key)) throw new Error(`${f.name}: sample ${key} twice`);
    seen.add(key);
  }
}

function checkHistogram(f: PromFamily): void {
  const series = new Map<string, PromSample[]>();
  for (const s of f.samples.filter((x) => x.name.endsWith("_bucket"))) {
    const { le, ...rest } = s.labels;
    if (le === undefined) throw new Error(`${f.name}: a bucket without le`);
    const key = JSON.stringify(Object.entries(rest).sort());
    series.set(key, [...(series.get(key) ?? []), s]);
  }
  for (const [key, buckets] of series) {
    const bounds = buckets.map((b) => (b.labels.le === "+Inf" ? Infinity : Number(b.labels.le)));
    if (bounds.at(-1) !== Infinity) throw new Error(`${f.name}${key}: the last bucket is not le="+Inf"`);
    for (let i = 1; i < buckets.length; i++) {
      if (!(bounds[i]! > bounds[i - 1]!) || buckets[i]!.value < buckets[i - 1]!.value) throw new Error(`${f.name}${key}: buckets not increasing and cumulative`);
    }
    const count = f.samples.find((s) => s.name === `${f.name}_count` && JSON.stringify(Object.entries(s.labels).sort()) === key);
    if (!count || count.value !== buckets.at(-1)!.value) throw new Error(`${f.name}${key}: _count differs from the +Inf bucket`);
    if (!f.samples.some((s) => s.name === `${f.name}_sum` && JSON.stringify(Object.entries(s.labels).sort()) === key)) throw new Error(`${f.name}${key}: no _sum`);
  }
}

/** The value of the sample `name` whose labels include `labels`; undefined when there is none. */
export function sampleValue(families: Map<string, PromFamily>, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const f of families.values()) {
    const s = f.samples.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
    if (s) return s.value;
  }
  return undefined;
}
