/**
 * Image pull: `POST /images/create?fromImage=…&tag=…` answers 200 and then streams JSON progress lines;
 * a failure can arrive INSIDE that 200 stream (`{"error": …, "errorDetail": {…}}`), and that is a pull failure.
 * Lines are parsed as they arrive; a line longer than MAX_LINE is a protocol error (bounded memory).
 * The stream has an idle timeout of its own: a daemon (or registry behind it) that stops sending progress for
 * `idleTimeoutMs` fails the pull with `timeout` instead of hanging the run forever. The caller's AbortSignal
 * ends it as `aborted`, or `timeout` when its reason is a TimeoutError (AbortSignal.timeout).
 */
import { DockerError, errorFromTransport } from "./errors.ts";
import { daemonMessage, readText, type DockerHttp } from "./http.ts";
import type { PullOptions, PullProgress } from "./types.ts";

const MAX_LINE = 1 << 20;

/** Splits `name[:tag][@digest]`; without tag or digest the tag is `latest` (otherwise Docker pulls ALL tags). @testSeam */
export function splitImageRef(ref: string): { name: string; tag: string } {
  const at = ref.indexOf("@");
  if (at >= 0) return { name: ref.slice(0, at), tag: ref.slice(at + 1) };
  const slash = ref.lastIndexOf("/");
  const colon = ref.lastIndexOf(":");
  if (colon > slash) return { name: ref.slice(0, colon), tag: ref.slice(colon + 1) };
  return { name: ref, tag: "latest" };
}

/**
 * Docker ≥ 23 answers a refused pull with 401/403. Older engines (20.10 in Debian 12) answer 500 and carry
 * the registry's error in the message, formatted by the distribution `errcode` package as `<code>: <text>`
 * (`unauthorized: authentication required`, `denied: requested access to the resource is denied`), or, for a
 * registry that asked for basic auth when none was given, the engine's own `no basic auth credentials`.
 * We classify on those registry API error codes only, in this one place.
 */
const AUTH_ERROR = /(?:^|[\s"])(?:unauthorized|denied):|no basic auth credentials|pull access denied/i;

/** @testSeam */
export function pullErrorCode(status: number | undefined, message: string): "registry-auth-failed" | "pull-failed" {
  if (status === 401 || status === 403) return "registry-auth-failed";
  return AUTH_ERROR.test(message) ? "registry-auth-failed" : "pull-failed";
}

function encodeAuthHeader(auth: object): string {
  return Buffer.from(JSON.stringify(auth)).toString("base64url");
}

export async function pullImage(http: DockerHttp, path: string, ref: string, opts: PullOptions, idleTimeoutMs: number): Promise<void> {
  const { name, tag } = splitImageRef(ref);
  const what = `pull image ${ref}`;
  const res = await http.request(path, {
    method: "POST",
    query: { fromImage: name, tag },
    headers: opts.auth ? { "x-registry-auth": encodeAuthHeader(opts.auth) } : {},
    idleTimeoutMs,
    what,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  if (res.status >= 300) {
    const message = daemonMessage(await readText(res, { what, ...(opts.signal ? { signal: opts.signal } : {}) }));
    throw new DockerError(pullErrorCode(res.status, message), `${what}: ${message}`, { status: res.status });
  }
  let pending = "";
  const decoder = new TextDecoder();
  const handle = (line: string) => {
    if (line.trim() === "") return;
    let event: PullProgress & { error?: string; errorDetail?: { code?: number; message?: string } };
    try {
      event = JSON.parse(line) as typeof event;
    } catch (cause) {
      throw new DockerError("pull-failed", `${what}: the daemon sent a malformed progress line`, { cause });
    }
    if (event.error !== undefined || event.errorDetail !== undefined) {
      const message = event.errorDetail?.message ?? event.error ?? "unknown error";
      const status = event.errorDetail?.code;
      throw new DockerError(pullErrorCode(status, message), `${what}: ${message}`, status !== undefined ? { status } : undefined);
    }
    opts.onProgress?.({
      ...(event.status !== undefined ? { status: event.status } : {}),
      ...(event.id !== undefined ? { id: event.id } : {}),
      ...(event.progress !== undefined ? { progress: event.progress } : {}),
      ...((event as { progressDetail?: { current?: number; total?: number } }).progressDetail ?? {}),
    });
  };
  try {
    for await (const chunk of res.body) {
      pending += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = pending.indexOf("\n")) >= 0) {
        handle(pending.slice(0, nl));
        pending = pending.slice(nl + 1);
      }
      if (pending.length > MAX_LINE) throw new DockerError("pull-failed", `${what}: a progress line exceeded ${MAX_LINE} bytes`);
    }
    handle(pending);
  } catch (err) {
    res.body.destroy();
    const mapped = errorFromTransport(err, what, http.endpoint.display, opts.signal);
    if (mapped.code === "timeout" && !opts.signal?.aborted) {
      throw new DockerError("timeout", `${what}: no progress from Docker for ${idleTimeoutMs / 1000}s`, { cause: err });
    }
    // A connection lost mid-pull is still a failed pull (with the transport error as cause).
    if (mapped.code === "daemon-error") throw new DockerError("pull-failed", mapped.message, { cause: err });
    throw mapped;
  }
}
