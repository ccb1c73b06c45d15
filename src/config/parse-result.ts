/**
 * What every value parser of the launcher configuration returns: the parsed value, or one or more
 * problems. A problem is "<what is wrong>; <what a good value looks like>" and never contains the
 * variable name (the schema adds it) nor, for secret variables, any part of the value.
 */
export type ParseResult<T> = { ok: true; value: T } | { ok: false; problems: string[] };

export function ok<T>(value: T): ParseResult<T> {
  return { ok: true, value };
}

/** One problem: `what` is wrong, `good` shows a value that would be accepted (e.g. "e.g. 1h30m"). */
export function fail<T = never>(what: string, good: string): ParseResult<T> {
  return { ok: false, problems: [problem(what, good)] };
}

export function problem(what: string, good: string): string {
  return `${what}; ${good}`;
}

/**
 * A non-secret value quoted for a message: JSON-quoted (so spaces and control characters are visible,
 * and a newline can never break the one-line rule) and shortened.
 */
export function quote(value: string, max = 60): string {
  const shown = value.length > max ? value.slice(0, max) + "…" : value;
  return JSON.stringify(shown);
}
