/**
 * Spot interruption watcher (see docs/architecture.md): polls the EC2 instance metadata service with IMDSv2 — a
 * session token from `PUT /latest/api/token`, then `GET /latest/meta-data/spot/instance-action` —
 * and calls `onNotice` once when AWS announces the instance's stop. 404 means no notice. Off EC2 the
 * service does not answer; that is logged once and polling goes on quietly (cheap, and correct if the
 * service appears later). Plain fetch: the service is a link-local HTTP endpoint, nothing to pool.
 */
import { errorMessage } from "../../errors.ts";
import type { Logger } from "../../log/logger.ts";

export interface SpotWatcherOptions {
  /** IMDS base URL, e.g. http://169.254.169.254. */
  endpoint: string;
  logger: Logger;
  onNotice: (notice: { action: string; time: string | null }) => void;
  intervalMs?: number;
  /** Per request; the real service answers in a millisecond or not at all. */
  requestTimeoutMs?: number;
}

const TOKEN_TTL_SECONDS = 21_600;

export class SpotWatcher {
  private timer: ReturnType<typeof setTimeout> | null = null;
  private stopped = false;
  private token: { value: string; expires: number } | null = null;
  private unreachableLogged = false;
  private readonly log: Logger;

  constructor(private readonly opts: SpotWatcherOptions) {
    this.log = opts.logger.child({ component: "spot-watcher" });
  }

  start(): void {
    this.log.info("watching for spot interruption notices", { endpoint: this.opts.endpoint });
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private schedule(delay: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.poll().then((noticed) => {
        if (!noticed) this.schedule(this.opts.intervalMs ?? 5_000);
      });
    }, delay);
    this.timer.unref?.();
  }

  /** One round; true when a notice was delivered (the watcher is then done). */
  private async poll(): Promise<boolean> {
    try {
      const token = await this.sessionToken();
      const res = await this.request("GET", "/latest/meta-data/spot/instance-action", { "X-aws-ec2-metadata-token": token });
      if (res.status === 401) {
        this.token = null; // expired or revoked: a new one next round
        return false;
      }
      if (res.status === 404) return false;
      if (!res.ok) throw new Error(`instance-action answered HTTP ${res.status}`);
      const body = (await res.json().catch(() => ({}))) as { action?: unknown; time?: unknown };
      const notice = { action: typeof body.action === "string" ? body.action : "unknown", time: typeof body.time === "string" ? body.time : null };
      if (this.stopped) return true;
      this.stopped = true;
      this.log.warn("spot interruption notice: draining", notice);
      this.opts.onNotice(notice);
      return true;
    } catch (err) {
      if (!this.unreachableLogged) {
        this.unreachableLogged = true;
        this.log.info("instance metadata not answering; spot notices cannot be seen until it does", { error: errorMessage(err) });
      }
      return false;
    }
  }

  private async sessionToken(): Promise<string> {
    if (this.token && this.token.expires > Date.now()) return this.token.value;
    const res = await this.request("PUT", "/latest/api/token", { "X-aws-ec2-metadata-token-ttl-seconds": String(TOKEN_TTL_SECONDS) });
    if (!res.ok) throw new Error(`IMDSv2 token request answered HTTP ${res.status}`);
    const value = (await res.text()).trim();
    // Renewed well before AWS would expire it.
    this.token = { value, expires: Date.now() + (TOKEN_TTL_SECONDS / 2) * 1000 };
    return value;
  }

  private request(method: "GET" | "PUT", path: string, headers: Record<string, string>): Promise<Response> {
    const url = this.opts.endpoint.replace(/\/+$/, "") + path;
    return fetch(url, { method, headers, signal: AbortSignal.timeout(this.opts.requestTimeoutMs ?? 1_000) });
  }
}
