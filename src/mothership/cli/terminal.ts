/**
 * Text for the operator's terminal. Much of what the CLI prints was written by someone else: a
 * launcher's version, arch and metadata, a worker's rejection messages, names and descriptions given
 * through the API. A control character in any of them could move the cursor, clear the screen, set the
 * window title or rewrite earlier lines, so every printer passes its text through here: C0 controls,
 * DEL and C1 controls are shown as visible escapes (`\x1b`, `\x7f`, `\u009b`), everything else as is.
 * A run's own log (`run logs`) is the run's output and is printed raw, as a terminal would show it.
 */

// C0 (U+0000–U+001F), DEL (U+007F) and C1 (U+0080–U+009F); C1 includes CSI (U+009B) and OSC (U+009D).
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;

const escapeOne = (c: string): string => {
  const code = c.charCodeAt(0);
  return code < 0x80 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
};

/** One line of text with every control character (newlines too) made visible. */
export function printable(text: string): string {
  return text.replace(CONTROL, escapeOne);
}

/**
 * JSON for `--json`: JSON.stringify already escapes C0 controls inside strings but leaves DEL and C1
 * raw; those are escaped as `\u007f`/`\u009b` too, which is still the same JSON value.
 */
export function printableJson(data: unknown): string {
  return (JSON.stringify(data, null, 2) ?? "null").replace(/[\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}
