/**
 * Structured logger: JSON lines by default, a short human format on a TTY. Injected, never global;
 * `child(fields)` adds context. Logging never throws: a failing sink drops the line.
 */
export type Level = "debug" | "info" | "warn" | "error";
export type Fields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
  child(fields: Fields): Logger;
}

const order: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface LoggerOptions {
  level?: Level;
  /** Human-readable output instead of JSON lines. Defaults to whether the sink is a TTY. */
  pretty?: boolean;
  write?: (line: string) => void;
}

export function createLogger(options: LoggerOptions = {}, base: Fields = {}): Logger {
  const min = order[options.level ?? "info"];
  const pretty = options.pretty ?? process.stderr.isTTY === true;
  const write = options.write ?? ((line: string) => process.stderr.write(line + "\n"));
  const emit = (level: Level, msg: string, fields?: Fields): void => {
    if (order[level] < min) return;
    try {
      const all = { ...base, ...fields };
      if (pretty) {
        const extra = Object.entries(all)
          .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
          .join(" ");
        write(`${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${msg}${extra ? " " + extra : ""}`);
      } else {
        write(JSON.stringify({ ts: new Date().toISOString(), level, msg, ...all }, jsonSafe));
      }
    } catch {
      // Logging never throws.
    }
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    child: (fields) => createLogger(options, { ...base, ...fields }),
  };
}

function jsonSafe(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Error) return { message: value.message, code: (value as { code?: unknown }).code };
  return value;
}

/** A logger that drops everything; for tests and tools that must stay quiet. @testSeam */
export const silentLogger: Logger = createLogger({ write: () => {} });
