/**
 * The one error family of the project. Every error that crosses a module boundary carries a stable
 * `code` (never match on message text) and, where it wraps another failure, a `cause`.
 * Errors become exit codes in exactly one place per program: its main.ts.
 */
export class SpaceliftError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** True when `err` is one of ours with the given code. */
export function hasCode(err: unknown, code: string): boolean {
  return err instanceof SpaceliftError && err.code === code;
}

/** A printable one-line message for any thrown value; never a stack trace. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message.replace(/\s*\n\s*/g, " ");
  return String(err);
}
