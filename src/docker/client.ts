/**
 * DockerClient on the real undici over the Engine's unix socket (or tcp://). The API version is negotiated
 * once from `/_ping`: the daemon's version, capped at the newest we know; older than MIN is an error.
 */
import { DockerError, errorFromStatus } from "./errors.ts";
import { DockerHttp, daemonMessage, parseDockerHost, readText, type RequestOptions } from "./http.ts";
import { demultiplex, MAX_FRAME_BYTES, raw, type OutputFrame } from "./demux.ts";
import { pullImage } from "./pull.ts";
import { batches, guarded } from "./streams.ts";
import type {
  AttachedOutput, ContainerInfo, ContainerSpec, ContainerSummary, DockerClient, ImageInfo, NetworkInfo, PullOptions,
} from "./types.ts";

const MIN_API_VERSION = "1.40"; // Docker 19.03
const MAX_API_VERSION = "1.45";

export interface DockerClientOptions {
  /** DOCKER_HOST value: unix:///path or tcp://host:port. Default unix:///var/run/docker.sock. */
  host?: string;
  connectTimeoutMs?: number;
  /** Time allowed between bytes of a non-streaming answer. Default 60 s. */
  idleTimeoutMs?: number;
  /**
   * Time a pull may go without a progress line before it fails with `timeout`. Docker sends progress while
   * it downloads and extracts, so a long silence means a stalled daemon or registry. Default 120 s.
   */
  pullIdleTimeoutMs?: number;
}

export function createDockerClient(options: DockerClientOptions = {}): DockerClient {
  return new UndiciDockerClient(options);
}

class UndiciDockerClient implements DockerClient {
  private readonly http: DockerHttp;
  private readonly pullIdleTimeoutMs: number;
  private negotiated: Promise<string> | undefined;
  apiVersion: string | undefined;

  constructor(options: DockerClientOptions) {
    this.http = new DockerHttp(parseDockerHost(options.host), {
      connectTimeoutMs: options.connectTimeoutMs ?? 5_000,
      idleTimeoutMs: options.idleTimeoutMs ?? 60_000,
    });
    this.pullIdleTimeoutMs = options.pullIdleTimeoutMs ?? 120_000;
  }

  async ping(signal?: AbortSignal): Promise<{ apiVersion: string }> {
    const res = await this.http.request("/_ping", { what: "ping Docker", ...(signal ? { signal } : {}) });
    const text = await readText(res, { what: "ping Docker", ...sig(signal) });
    if (res.status !== 200) throw errorFromStatus(res.status, daemonMessage(text), "ping Docker");
    const header = res.headers["api-version"];
    const daemon = typeof header === "string" ? header : MIN_API_VERSION;
    if (compareVersions(daemon, MIN_API_VERSION) < 0) {
      throw new DockerError("api-version", `Docker at ${this.http.endpoint.display} speaks API ${daemon}; at least ${MIN_API_VERSION} (Docker 19.03) is required — upgrade Docker`);
    }
    this.apiVersion = compareVersions(daemon, MAX_API_VERSION) > 0 ? MAX_API_VERSION : daemon;
    return { apiVersion: this.apiVersion };
  }

  private async path(p: string, signal?: AbortSignal): Promise<string> {
    if (this.apiVersion !== undefined) return `/v${this.apiVersion}${p}`;
    if (!this.negotiated) {
      this.negotiated = this.ping(signal).then((r) => r.apiVersion);
      this.negotiated.catch(() => (this.negotiated = undefined));
    }
    return `/v${await this.negotiated}${p}`;
  }

  private async json<T>(p: string, opts: RequestOptions): Promise<T> {
    return await this.http.json<T>(await this.path(p, opts.signal), opts);
  }

  private async call(p: string, opts: RequestOptions): Promise<number> {
    return await this.http.call(await this.path(p, opts.signal), opts);
  }

  async version(signal?: AbortSignal) {
    const v = await this.json<{ Version: string; ApiVersion: string; Os: string; Arch: string }>("/version", { what: "Docker version", ...sig(signal) });
    return { version: v.Version, apiVersion: v.ApiVersion, os: v.Os, arch: v.Arch };
  }

  async imageInspect(ref: string, signal?: AbortSignal): Promise<ImageInfo> {
    const i = await this.json<{ Id: string; RepoTags: string[] | null; Architecture: string; Os: string; Config?: { User?: string; Env?: string[] | null } | null }>(
      `/images/${encodeURIComponent(ref)}/json`, { what: `inspect image ${ref}`, ...sig(signal) });
    return { id: i.Id, repoTags: i.RepoTags ?? [], architecture: i.Architecture, os: i.Os, user: i.Config?.User ?? "", env: i.Config?.Env ?? [] };
  }

  async imagePull(ref: string, opts: PullOptions = {}): Promise<void> {
    await pullImage(this.http, await this.path("/images/create", opts.signal), ref, opts, opts.idleTimeoutMs ?? this.pullIdleTimeoutMs);
  }

  async imageImport(tarball: Blob | Uint8Array, repo: string, tag: string, signal?: AbortSignal): Promise<void> {
    const bytes = tarball instanceof Uint8Array ? tarball : new Uint8Array(await tarball.arrayBuffer());
    const what = `import image ${repo}:${tag}`;
    const res = await this.http.request(await this.path("/images/create", signal), {
      method: "POST", query: { fromSrc: "-", repo, tag }, rawBody: bytes,
      headers: { "content-type": "application/x-tar" }, what, ...sig(signal),
    });
    const text = await readText(res, { what, ...sig(signal) });
    if (res.status >= 300) throw errorFromStatus(res.status, daemonMessage(text), what);
    const failed = text.split("\n").map(parseLine).find((l) => l?.error);
    if (failed) throw new DockerError("daemon-error", `${what}: ${failed.error}`);
  }

  async containerCreate(spec: ContainerSpec, signal?: AbortSignal): Promise<string> {
    const body = {
      Image: spec.image,
      Env: spec.env ? Object.entries(spec.env).map(([k, v]) => `${k}=${v}`) : [],
      Labels: spec.labels ?? {},
      Entrypoint: spec.entrypoint ?? null,
      Cmd: spec.cmd ?? null,
      WorkingDir: spec.workingDir ?? "",
      User: spec.user ?? "",
      Tty: spec.tty ?? false,
      OpenStdin: false,
      AttachStdout: true,
      AttachStderr: true,
      HostConfig: {
        Binds: (spec.mounts ?? []).map((m) => `${m.host}:${m.container}${m.readOnly ? ":ro" : ""}`),
        NetworkMode: spec.networkMode ?? "bridge",
        ...(spec.runtime ? { Runtime: spec.runtime } : {}),
        Init: spec.init ?? false,
        SecurityOpt: spec.securityOpt ?? [],
        Privileged: false,
        // MemorySwap equal to Memory: no swap on top, so going past the limit is an OOM kill, not a slow crawl.
        ...(spec.memoryBytes ? { Memory: spec.memoryBytes, MemorySwap: spec.memoryBytes } : {}),
      },
    };
    const what = `create container from ${spec.image}`;
    const created = await this.json<{ Id: string }>("/containers/create", {
      method: "POST", query: { name: spec.name }, body, what, ...sig(signal),
    });
    return created.Id;
  }

  async containerStart(id: string, signal?: AbortSignal): Promise<void> {
    await this.call(`/containers/${id}/start`, { method: "POST", what: `start container ${short(id)}`, ...sig(signal) });
  }

  /** `opts.signal` also ends the attachment after it is established: the frames then fail with aborted/timeout. */
  async containerAttach(id: string, opts: { tty?: boolean; signal?: AbortSignal } = {}): Promise<AttachedOutput> {
    const what = `attach to container ${short(id)}`;
    const socket = await this.http.upgrade(await this.path(`/containers/${id}/attach`, opts.signal), {
      query: { stream: 1, stdout: 1, stderr: 1 }, what, ...sig(opts.signal),
    });
    // Read in batches, one frame per stream per batch (docs/performance.md: the garbage of a busy run's log path).
    const source = batches(socket);
    const frames = guarded(opts.tty ? raw(source) : demultiplex(source, MAX_FRAME_BYTES, { merge: true }), what, this.http.endpoint.display, opts.signal);
    return { frames, close: () => socket.destroy() };
  }

  async *containerLogs(id: string, opts: { follow?: boolean; tty?: boolean; signal?: AbortSignal } = {}): AsyncIterable<OutputFrame> {
    const what = `logs of container ${short(id)}`;
    const res = await this.http.request(await this.path(`/containers/${id}/logs`, opts.signal), {
      query: { follow: opts.follow ? 1 : 0, stdout: 1, stderr: 1 }, streaming: opts.follow === true, what, ...sig(opts.signal),
    });
    if (res.status >= 300) throw errorFromStatus(res.status, daemonMessage(await readText(res, { what, ...sig(opts.signal) })), what);
    // No idle timeout when following: a quiet container is not a stalled daemon (the launcher's logs timeout
    // decides how long silence may last).
    yield* guarded(opts.tty ? raw(res.body) : demultiplex(res.body), what, this.http.endpoint.display, opts.signal);
  }

  async containerWait(id: string, signal?: AbortSignal): Promise<{ exitCode: number }> {
    const r = await this.json<{ StatusCode: number; Error?: { Message?: string } | null }>(`/containers/${id}/wait`, {
      method: "POST", query: { condition: "not-running" }, streaming: true, what: `wait for container ${short(id)}`, ...sig(signal),
    });
    if (r.Error?.Message) throw new DockerError("daemon-error", `wait for container ${short(id)}: ${r.Error.Message}`);
    return { exitCode: r.StatusCode };
  }

  async containerKill(id: string, signalName: string, signal?: AbortSignal): Promise<void> {
    await this.call(`/containers/${id}/kill`, { method: "POST", query: { signal: signalName }, what: `kill container ${short(id)}`, ...sig(signal) });
  }

  async containerStop(id: string, timeoutSeconds: number, signal?: AbortSignal): Promise<void> {
    await this.call(`/containers/${id}/stop`, {
      method: "POST", query: { t: Math.max(0, Math.ceil(timeoutSeconds)) }, streaming: true, what: `stop container ${short(id)}`, ...sig(signal),
    });
  }

  async containerRemove(id: string, opts: { force?: boolean; volumes?: boolean; signal?: AbortSignal } = {}): Promise<void> {
    await this.call(`/containers/${id}`, {
      method: "DELETE", query: { force: opts.force ? 1 : 0, v: opts.volumes ? 1 : 0 }, what: `remove container ${short(id)}`, ...sig(opts.signal),
    });
  }

  async containerList(opts: { labels: Record<string, string | true>; all?: boolean; signal?: AbortSignal }): Promise<ContainerSummary[]> {
    const label = Object.entries(opts.labels).map(([k, v]) => (v === true ? k : `${k}=${v}`));
    const list = await this.json<Array<{ Id: string; Names: string[]; Image: string; State: string; Labels: Record<string, string> | null }>>(
      "/containers/json", { query: { all: opts.all === false ? 0 : 1, filters: JSON.stringify({ label }) }, what: "list containers", ...sig(opts.signal) });
    return list.map((c) => ({ id: c.Id, names: c.Names, image: c.Image, state: c.State, labels: c.Labels ?? {} }));
  }

  async containerInspect(id: string, signal?: AbortSignal): Promise<ContainerInfo> {
    type Raw = {
      Id: string; Name: string; Config: { Image: string; Labels: Record<string, string> | null; Tty: boolean };
      State: { Status: string; Running: boolean; ExitCode: number; OOMKilled: boolean; Error: string; StartedAt: string; FinishedAt: string; Pid: number };
    };
    const c = await this.json<Raw>(`/containers/${id}/json`, { what: `inspect container ${short(id)}`, ...sig(signal) });
    const s = c.State;
    return {
      id: c.Id, name: c.Name.replace(/^\//, ""), image: c.Config.Image, labels: c.Config.Labels ?? {}, tty: c.Config.Tty,
      state: { status: s.Status, running: s.Running, exitCode: s.ExitCode, oomKilled: s.OOMKilled, error: s.Error, startedAt: s.StartedAt, finishedAt: s.FinishedAt, pid: s.Pid },
    };
  }

  async networkInspect(name: string, signal?: AbortSignal): Promise<NetworkInfo> {
    const n = await this.json<{ Id: string; Name: string; Driver: string }>(`/networks/${encodeURIComponent(name)}`, { what: `inspect network ${name}`, ...sig(signal) });
    return { id: n.Id, name: n.Name, driver: n.Driver };
  }

  async close(): Promise<void> {
    await this.http.close();
  }
}

function sig(signal: AbortSignal | undefined): { signal?: AbortSignal } {
  return signal ? { signal } : {};
}

function short(id: string): string {
  return /^[0-9a-f]{64}$/.test(id) ? id.slice(0, 12) : id;
}

function parseLine(line: string): { error?: string } | undefined {
  try {
    return line.trim() ? (JSON.parse(line) as { error?: string }) : undefined;
  } catch {
    return undefined;
  }
}

function compareVersions(a: string, b: string): number {
  const [am = 0, an = 0] = a.split(".").map(Number);
  const [bm = 0, bn = 0] = b.split(".").map(Number);
  return am !== bm ? am - bm : an - bn;
}
