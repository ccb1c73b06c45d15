/**
 * Our own narrow view of the Docker Engine API: only the endpoints the launcher (and its tests) call.
 * Everything else in the project talks to Docker through this interface.
 */
import type { OutputFrame } from "./demux.ts";

export interface DockerClient {
  /** The negotiated API version, e.g. "1.41" (after the first call). */
  readonly apiVersion: string | undefined;
  ping(signal?: AbortSignal): Promise<{ apiVersion: string }>;
  version(signal?: AbortSignal): Promise<{ version: string; apiVersion: string; os: string; arch: string }>;

  imageInspect(ref: string, signal?: AbortSignal): Promise<ImageInfo>;
  /** Pulls `ref`; progress events go to `onProgress`; an error inside the 200 stream is a pull failure. */
  imagePull(ref: string, opts?: PullOptions): Promise<void>;
  /** `docker import`: a rootfs tarball becomes `repo:tag`. */
  imageImport(tarball: Blob | Uint8Array, repo: string, tag: string, signal?: AbortSignal): Promise<void>;

  containerCreate(spec: ContainerSpec, signal?: AbortSignal): Promise<string>;
  containerStart(id: string, signal?: AbortSignal): Promise<void>;
  /** Attach before start so no output is missed. Output is demultiplexed for non-TTY containers. */
  containerAttach(id: string, opts?: { tty?: boolean; signal?: AbortSignal }): Promise<AttachedOutput>;
  containerLogs(id: string, opts?: { follow?: boolean; tty?: boolean; signal?: AbortSignal }): AsyncIterable<OutputFrame>;
  containerWait(id: string, signal?: AbortSignal): Promise<{ exitCode: number }>;
  containerKill(id: string, signalName: string, signal?: AbortSignal): Promise<void>;
  /** SIGTERM (or the image's stop signal), then SIGKILL after `timeoutSeconds`. */
  containerStop(id: string, timeoutSeconds: number, signal?: AbortSignal): Promise<void>;
  containerRemove(id: string, opts?: { force?: boolean; volumes?: boolean; signal?: AbortSignal }): Promise<void>;
  containerList(opts: { labels: Record<string, string | true>; all?: boolean; signal?: AbortSignal }): Promise<ContainerSummary[]>;
  containerInspect(id: string, signal?: AbortSignal): Promise<ContainerInfo>;
  networkInspect(name: string, signal?: AbortSignal): Promise<NetworkInfo>;

  /** Waits for in-flight requests, then closes connections. */
  close(): Promise<void>;
}

export interface PullOptions {
  /** Already resolved credentials (see registry-auth.ts); sent as X-Registry-Auth. */
  auth?: RegistryCredentials;
  onProgress?: (event: PullProgress) => void;
  signal?: AbortSignal;
  /** Overrides the client's pull idle timeout (no progress line for this long → `timeout`); 0 disables it. */
  idleTimeoutMs?: number;
}

export interface PullProgress {
  status?: string;
  id?: string;
  progress?: string;
  current?: number;
  total?: number;
}

export type RegistryCredentials =
  | { username: string; password: string; serveraddress: string }
  | { identitytoken: string; serveraddress: string };

export interface Mount {
  host: string;
  container: string;
  readOnly: boolean;
}

export interface ContainerSpec {
  name?: string;
  image: string;
  env?: Record<string, string>;
  labels?: Record<string, string>;
  mounts?: Mount[];
  entrypoint?: string[];
  cmd?: string[];
  workingDir?: string;
  user?: string;
  networkMode?: string;
  runtime?: string;
  /** Docker's own init (tini) as PID 1; off when our worker is PID 1. */
  init?: boolean;
  securityOpt?: string[];
  tty?: boolean;
  /** Memory limit (swap included); past it the kernel OOM-kills and inspect reports `oomKilled`. */
  memoryBytes?: number;
}

export interface AttachedOutput {
  frames: AsyncIterable<OutputFrame>;
  /** Ends the attachment (the container keeps running). */
  close(): void;
}

export interface ImageInfo {
  id: string;
  repoTags: string[];
  architecture: string;
  os: string;
  /** The image's `Config.User` ("" when it names none: root). */
  user: string;
  /** The image's `Config.Env` (`NAME=value` entries). */
  env: string[];
}

export interface ContainerSummary {
  id: string;
  names: string[];
  image: string;
  state: string;
  labels: Record<string, string>;
}

export interface ContainerInfo {
  id: string;
  name: string;
  image: string;
  labels: Record<string, string>;
  tty: boolean;
  state: {
    status: string;
    running: boolean;
    exitCode: number;
    oomKilled: boolean;
    error: string;
    startedAt: string;
    finishedAt: string;
    pid: number;
  };
}

export interface NetworkInfo {
  id: string;
  name: string;
  driver: string;
}
