/**
 * The Docker client's error family. Codes are stable and classified at this boundary from HTTP status codes
 * and stream structure — never from message text — so callers can map them to run failure reasons.
 */
import { SpaceliftError } from "../errors.ts";

export type DockerErrorCode =
  | "daemon-unreachable" // nothing answers on the socket / address
  | "not-found" // 404: no such container, image or network
  | "conflict" // 409: name in use, container not running, ...
  | "pull-failed" // the registry or daemon refused a pull (message from the registry)
  | "registry-auth-failed" // credentials were rejected, or a credential helper failed
  | "api-version" // the daemon is older than the minimum API version we speak
  | "timeout" // connect or idle timeout, or the caller's deadline
  | "aborted" // the caller's AbortSignal fired
  | "daemon-error"; // any other non-2xx answer

export class DockerError extends SpaceliftError {
  declare readonly code: DockerErrorCode;
  /** HTTP status of the daemon's answer, when there was one. */
  readonly status: number | undefined;

  constructor(code: DockerErrorCode, message: string, options?: { cause?: unknown; status?: number }) {
    super(code, message, options);
    this.status = options?.status;
  }
}

export function isDockerError(err: unknown, code?: DockerErrorCode): err is DockerError {
  return err instanceof DockerError && (code === undefined || err.code === code);
}

/** The daemon's own message from an error body: JSON `{"message": …}`, else the text itself. */
export function daemonMessage(text: string): string {
  try {
    const parsed = JSON.parse(text) as { message?: unknown };
    if (typeof parsed.message === "string") return parsed.message;
  } catch {
    // not JSON: use the text itself
  }
  return text.trim();
}

/** Maps a daemon's non-2xx answer to an error; `message` is the daemon's own JSON `message`. */
export function errorFromStatus(status: number, message: string, what: string): DockerError {
  const text = `${what}: ${message || `HTTP ${status}`}`;
  if (status === 404) return new DockerError("not-found", text, { status });
  if (status === 409) return new DockerError("conflict", text, { status });
  if (status === 401 || status === 403) return new DockerError("registry-auth-failed", text, { status });
  return new DockerError("daemon-error", text, { status });
}

const UNREACHABLE = new Set(["ENOENT", "ECONNREFUSED", "ECONNRESET", "EACCES", "EHOSTUNREACH", "ENOTSOCK", "EPIPE"]);
const TIMEOUTS = new Set(["UND_ERR_CONNECT_TIMEOUT", "UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT", "ETIMEDOUT"]);
/** The daemon's side of an open connection went away mid-answer (undici's "other side closed"): dockerd stopped. */
const CUT = "UND_ERR_SOCKET";

/** Classifies a transport failure (undici or socket error) by its code. */
export function errorFromTransport(err: unknown, what: string, endpoint: string, signal?: AbortSignal): DockerError {
  if (err instanceof DockerError) return err;
  if (signal?.aborted) {
    const reason: unknown = signal.reason;
    const timedOut = reason instanceof DOMException && reason.name === "TimeoutError";
    return new DockerError(timedOut ? "timeout" : "aborted", `${what}: ${timedOut ? "timed out" : "aborted"}`, { cause: err });
  }
  const code = codeOf(err);
  if (code === CUT) {
    return new DockerError("daemon-unreachable", `${what}: Docker closed the connection (${(err as Error)?.message ?? code}); did dockerd stop?`, { cause: err });
  }
  if (code && TIMEOUTS.has(code)) return new DockerError("timeout", `${what}: Docker at ${endpoint} did not answer in time`, { cause: err });
  if (code && UNREACHABLE.has(code)) {
    return new DockerError(
      "daemon-unreachable",
      `${what}: cannot reach Docker at ${endpoint} (${code}); is dockerd running and DOCKER_HOST right?`,
      { cause: err },
    );
  }
  return new DockerError("daemon-error", `${what}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
}

function codeOf(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && (UNREACHABLE.has(code) || TIMEOUTS.has(code) || code === CUT)) return code;
  }
  return undefined;
}
