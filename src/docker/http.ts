/**
 * HTTP to the Docker Engine over its unix socket (or tcp://host:port) with the real undici.
 * NOTE: never the bare name `undici` — under Bun that is Bun's shim, which ignores socketPath. Only the two
 * parts used are loaded, the connection pool and the promise `request`: undici's entry point (fetch,
 * WebSocket, caches, mocks) costs the launcher about 7 MB more resident memory (docs/performance.md).
 */
import type { Pool as UndiciPool } from "undici/index.js";
import Pool from "undici/lib/dispatcher/pool.js";
import undiciRequest from "undici/lib/api/api-request.js";
import type { Duplex, Readable } from "node:stream";
import { DockerError, daemonMessage, errorFromStatus, errorFromTransport } from "./errors.ts";
import { hijack } from "./hijack.ts";

export { daemonMessage };

export interface Endpoint {
  /** The DOCKER_HOST value, for messages. */
  display: string;
  origin: string;
  socketPath?: string;
}

export function parseDockerHost(host: string | undefined): Endpoint {
  const value = host && host !== "" ? host : "unix:///var/run/docker.sock";
  if (value.startsWith("unix://")) {
    const socketPath = value.slice("unix://".length);
    if (!socketPath.startsWith("/")) throw new DockerError("daemon-unreachable", `DOCKER_HOST ${value}: the socket path must be absolute, e.g. unix:///var/run/docker.sock`);
    return { display: value, origin: "http://docker", socketPath };
  }
  const tcp = /^tcp:\/\/([^/:]+|\[[0-9a-fA-F:]+\]):(\d+)\/?$/.exec(value);
  if (tcp) return { display: value, origin: `http://${tcp[1]}:${tcp[2]}` };
  throw new DockerError("daemon-unreachable", `DOCKER_HOST ${value}: use unix:///path/to/docker.sock or tcp://host:port`);
}

export interface TransportOptions {
  connectTimeoutMs: number;
  /** Idle time allowed between bytes of a non-streaming answer. Streaming calls disable it. */
  idleTimeoutMs: number;
  /** Upper bound of simultaneous connections to the daemon. */
  maxConnections?: number;
}

export interface RequestOptions {
  method?: "GET" | "POST" | "DELETE" | "HEAD" | "PUT";
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  rawBody?: Readable | Uint8Array | string;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** A long-lived answer (logs follow, wait, stop): no idle timeout, unless `idleTimeoutMs` sets one. */
  streaming?: boolean;
  /** Overrides the idle timeout for this call (headers, and between body chunks); 0 disables it. */
  idleTimeoutMs?: number;
  /** Short description for errors, e.g. "inspect container abc". */
  what: string;
}

export interface Response {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable & AsyncIterable<Uint8Array>;
}

export class DockerHttp {
  readonly endpoint: Endpoint;
  private readonly client: UndiciPool;
  private readonly options: TransportOptions;

  constructor(endpoint: Endpoint, options: TransportOptions) {
    this.endpoint = endpoint;
    this.options = options;
    // A pool, not one connection: long-lived answers (wait, logs follow, attach) each hold a connection
    // while other calls go on. Keep-alive connections are reused for the short calls.
    this.client = new Pool(endpoint.origin, {
      ...(endpoint.socketPath ? { socketPath: endpoint.socketPath } : {}),
      connections: options.maxConnections ?? 32,
      connectTimeout: options.connectTimeoutMs,
      keepAliveTimeout: 10_000,
    });
  }

  async request(path: string, opts: RequestOptions): Promise<Response> {
    const headers: Record<string, string> = { ...opts.headers };
    let body: Readable | Uint8Array | string | undefined = opts.rawBody;
    if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers["content-type"] = "application/json";
    }
    const idle = opts.idleTimeoutMs ?? (opts.streaming ? 0 : this.options.idleTimeoutMs);
    try {
      const res = await undiciRequest.call(this.client, {
        path: withQuery(path, opts.query),
        method: opts.method ?? "GET",
        headers,
        body: body ?? null,
        signal: opts.signal ?? null,
        headersTimeout: idle,
        bodyTimeout: idle,
      });
      return { status: res.statusCode, headers: res.headers, body: res.body as unknown as Response["body"] };
    } catch (err) {
      throw errorFromTransport(err, opts.what, this.endpoint.display, opts.signal);
    }
  }

  /** A request whose answer must be 2xx; returns the parsed JSON body (or undefined for an empty one). */
  async json<T>(path: string, opts: RequestOptions): Promise<T> {
    const res = await this.request(path, opts);
    const text = await readText(res, opts);
    if (res.status >= 300) throw errorFromStatus(res.status, daemonMessage(text), opts.what);
    return (text === "" ? undefined : JSON.parse(text)) as T;
  }

  /** A request whose answer must be 2xx; the body is discarded. */
  async call(path: string, opts: RequestOptions): Promise<number> {
    const res = await this.request(path, opts);
    const text = await readText(res, opts);
    if (res.status >= 300 && res.status !== 304) throw errorFromStatus(res.status, daemonMessage(text), opts.what);
    return res.status;
  }

  /**
   * HTTP upgrade to a raw stream (Docker's hijacked attach). A refused upgrade is classified from its status
   * (404 → not-found); after the upgrade `opts.signal` still destroys the stream (see hijack.ts).
   */
  async upgrade(path: string, opts: RequestOptions): Promise<Duplex> {
    return await hijack(this.client, {
      path: withQuery(path, opts.query),
      what: opts.what,
      endpoint: this.endpoint.display,
      headersTimeoutMs: this.options.idleTimeoutMs,
      signal: opts.signal,
    });
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  destroy(): void {
    void this.client.destroy().catch(() => undefined);
  }
}

export async function readText(res: Response, opts: RequestOptions): Promise<string> {
  try {
    return await (res.body as unknown as { text(): Promise<string> }).text();
  } catch (err) {
    throw errorFromTransport(err, opts.what, "the daemon", opts.signal);
  }
}

function withQuery(path: string, query: RequestOptions["query"]): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}
