/**
 * Image pull: `POST /images/create?fromImage=…&tag=…` answers 200 and then streams JSON progress lines;
 * a failure can arrive INSIDE that 200 stream (`{"error": …, "errorDetail": {…}}`), and that is a pull failure.
 * Lines are parsed as they arrive; a line longer than MAX_LINE is a protocol error (bounded memory).
 */
import { DockerError } from "./errors.ts";
import { daemonMessage, readText, type DockerHttp } from "./http.ts";
import type { PullOptions, PullProgress } from "./types.ts";

const MAX_LINE = 1 << 20;

/** Splits `name[:tag][@digest]`; without tag or digest the tag is `latest` (otherwise Docker pulls ALL tags). */
export function splitImageRef(ref: string): { name: string; tag: string } {
  const at = ref.indexOf("@");
  if (at >= 0) return { name: ref.slice(0, at), tag: ref.slice(at + 1) };
  const slash = ref.lastIndexOf("/");
  const colon = ref.lastIndexOf(":");
  if (colon > slash) return { name: ref.slice(0, colon), tag: ref.slice(colon + 1) };
  return { name: ref, tag: "latest" };
}

export function encodeAuthHeader(auth: object): string {
  return Buffer.from(JSON.stringify(auth)).toString("base64url");
}

export async function pullImage(http: DockerHttp, path: string, ref: string, opts: PullOptions): Promise<void> {
  const { name, tag } = splitImageRef(ref);
  const what = `pull image ${ref}`;
  const res = await http.request(path, {
    method: "POST",
    query: { fromImage: name, tag },
    headers: opts.auth ? { "x-registry-auth": encodeAuthHeader(opts.auth) } : {},
    streaming: true,
    what,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  if (res.status >= 300) {
    const message = daemonMessage(await readText(res, { what }));
    const code = res.status === 401 || res.status === 403 ? "registry-auth-failed" : "pull-failed";
    throw new DockerError(code, `${what}: ${message}`, { status: res.status });
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
      const code = status === 401 || status === 403 ? "registry-auth-failed" : "pull-failed";
      throw new DockerError(code, `${what}: ${message}`, status !== undefined ? { status } : undefined);
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
    if (err instanceof DockerError) throw err;
    throw new DockerError(opts.signal?.aborted ? "aborted" : "pull-failed", `${what}: ${(err as Error).message}`, { cause: err });
  }
}
