/**
 * The HTTP long-poll transport (src/protocol/poll.ts and src/protocol/README.md): the same messages as MQTT, over
 * HTTPS with fetch, each request signed with the pool private key. Same contract as the MQTT
 * transport: a session starts with the greeting (hello) POSTed alone; its 2xx is "connected". Then
 * one loop POSTs what is queued, in order and in batches, one request at a time (`send` resolves on
 * the mothership's 2xx), and one loop long-polls the downlink. A failure of either ends the session:
 * both are aborted, and after a jittered backoff (./session.ts) a new session begins with a fresh greeting and then
 * everything not yet answered (at least once, as over MQTT). The downlink cursor is kept across
 * sessions, so a poll answer lost on the way is simply asked for again.
 *
 * There is no Last Will over HTTP: a launcher that disappears stops heartbeating, and the mothership
 * declares it lost after 3 intervals.
 */
import * as v from "valibot";
import { SpaceliftError, errorMessage } from "../errors.ts";
import type { Logger } from "../log/logger.ts";
import type { DownlinkVerifier } from "../protocol/downlink-signature.ts";
import { encodeMessage, type UplinkMessage } from "../protocol/messages.ts";
import {
  DownlinkAnswerSchema,
  MAX_BATCH,
  MAX_POLL_WAIT_SECONDS,
  POLL_DOWNLINK_PATH,
  POLL_UPLINK_PATH,
  signRequest,
  type SigningKey,
} from "../protocol/poll.ts";
import type { BackoffPolicy } from "./backoff.ts";
import { DownlinkReceiver } from "./downlink.ts";
import { closedError } from "./first-connect.ts";
import type { ProxyServer } from "../config/proxy.ts";
import { pollRefusal } from "./refusals.ts";
import { ReconnectingSession } from "./session.ts";
import type { Transport } from "./transport.ts";

export interface PollTransportOptions {
  /** Base http(s) URL of the mothership (the token's comms_url or SPACELIFT_WORKER_COMMS_URL). */
  url: string;
  /** PEM trust anchors for an https URL: the token's CA and the operator's extra CAs. */
  ca: string | readonly string[];
  /** The proxy for the comms URL (src/transport/proxy.ts), undefined for a direct connection. */
  proxy?: ProxyServer | undefined;
  pool: string;
  worker: string;
  signingKey: SigningKey;
  /** Made fresh and POSTed first in every session, before anything queued. */
  greeting: () => UplinkMessage;
  /** Checks that each downlink message is signed by the mothership for this worker (src/transport/downlink.ts). */
  verifier: DownlinkVerifier;
  logger: Logger;
  backoff?: BackoffPolicy;
  /** How long one downlink poll may wait on the mothership (at most 25 s). */
  pollWaitSeconds?: number;
  /** Limit of one uplink request. */
  requestTimeoutMs?: number;
}

interface Outgoing {
  payload: string;
  resolve: () => void;
  reject: (err: unknown) => void;
}

class RequestFailed extends SpaceliftError {
  /** Set when the mothership refused the pool's signature for good (./refusals.ts). */
  refusal?: string;
}

export class PollTransport extends ReconnectingSession implements Transport {
  private readonly base: URL;
  private queue: Outgoing[] = [];
  /** Aborts the current session's requests (the greeting, the uplink batches and the downlink poll). */
  private session: AbortController | null = null;
  private sending = false;
  private cursor = 0;
  private readonly downlink: DownlinkReceiver;

  constructor(private readonly opts: PollTransportOptions) {
    const log = opts.logger.child({ component: "poll" });
    super({
      log,
      fields: { url: opts.url },
      peer: "the mothership",
      says: { connected: "connected to the mothership", reconnected: "reconnected to the mothership", retrying: "mothership unreachable, retrying" },
      backoff: opts.backoff,
    });
    this.downlink = new DownlinkReceiver(opts.verifier, log, (m) => this.events.emit("message", m));
    this.base = new URL(opts.url.endsWith("/") ? opts.url : `${opts.url}/`);
  }

  send(message: UplinkMessage): Promise<void> {
    if (this.isClosed) return Promise.reject(closedError());
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ payload: encodeMessage(message), resolve, reject });
      this.flush();
    });
  }

  /** Stops both loops. There is nothing to say goodbye with over HTTP: a clean stop has sent `gone` already. */
  protected teardown(_clean: boolean): Promise<void> {
    this.session?.abort(closedError());
    this.session = null;
    for (const item of this.queue.splice(0)) item.reject(closedError());
    return Promise.resolve();
  }

  /** A session begins with the greeting POSTed alone; its 2xx is "connected". */
  protected open(generation: number): void {
    const session = (this.session = new AbortController());
    const greeting = encodeMessage(this.opts.greeting());
    this.post([greeting], session.signal).then(
      () => this.up(generation),
      (err: unknown) => this.dropped(generation, err),
    );
  }

  protected onUp(generation: number): void {
    this.pollLoop(generation).catch((err: unknown) => this.dropped(generation, err));
    this.flush();
  }

  protected onDown(): void {
    this.session?.abort();
    this.session = null;
  }

  private dropped(generation: number, err: unknown): void {
    this.down(generation, errorMessage(err), err instanceof RequestFailed ? err.refusal : undefined);
  }

  /** POSTs the queue in order, one batch at a time, while the session lasts. Never rejects. */
  private flush(): void {
    if (this.sending || !this.isConnected || this.queue.length === 0) return;
    this.sending = true;
    const generation = this.generation;
    const signal = this.session?.signal;
    void (async () => {
      try {
        while (signal && generation === this.generation && this.isConnected && this.queue.length > 0) {
          const batch = this.queue.slice(0, MAX_BATCH);
          await this.post(batch.map((b) => b.payload), signal);
          // Only now: close() may have rejected them meanwhile, and then they are gone from the queue.
          for (const item of batch) {
            const at = this.queue.indexOf(item);
            if (at < 0) continue;
            this.queue.splice(at, 1);
            item.resolve();
          }
        }
      } catch (err) {
        this.dropped(generation, err);
      } finally {
        this.sending = false;
      }
      // A new session may have begun while this one's last request was failing.
      if (this.isConnected && generation !== this.generation) this.flush();
    })();
  }

  private async pollLoop(generation: number): Promise<void> {
    const wait = Math.min(this.opts.pollWaitSeconds ?? MAX_POLL_WAIT_SECONDS, MAX_POLL_WAIT_SECONDS);
    const session = this.session;
    while (session && generation === this.generation && this.isConnected) {
      const pathWithQuery = `${POLL_DOWNLINK_PATH}?after=${this.cursor}&wait=${wait}`;
      const res = await this.request("GET", pathWithQuery, new Uint8Array(), AbortSignal.any([session.signal, AbortSignal.timeout(wait * 1000 + 15_000)]));
      const parsed = v.safeParse(DownlinkAnswerSchema, await res.json().catch(() => null));
      if (!parsed.success) throw new RequestFailed("poll-bad-answer", "the mothership's poll answer is not a downlink batch");
      if (generation !== this.generation) return;
      this.cursor = parsed.output.cursor;
      // In order, each checked before the next poll: a slow check holds the poll back, not memory.
      for (const item of parsed.output.messages) await this.downlink.receive(item.message);
    }
  }

  private async post(payloads: string[], signal: AbortSignal): Promise<void> {
    const body = new TextEncoder().encode(`{"messages":[${payloads.join(",")}]}`);
    const limit = AbortSignal.timeout(this.opts.requestTimeoutMs ?? 30_000);
    const res = await this.request("POST", POLL_UPLINK_PATH, body, AbortSignal.any([signal, limit]));
    await res.arrayBuffer().catch(() => undefined);
  }

  /** One signed request; resolves with a 2xx response, throws RequestFailed otherwise. */
  private async request(method: "GET" | "POST", pathWithQuery: string, body: Uint8Array<ArrayBuffer>, signal: AbortSignal): Promise<Response> {
    const o = this.opts;
    // The signature covers the mothership's own path, so a comms URL with a path prefix (a proxy) still verifies.
    const headers = await signRequest(o.signingKey, { method, pathWithQuery, pool: o.pool, worker: o.worker, body });
    const url = new URL(pathWithQuery.slice(1), this.base);
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: { ...headers, ...(method === "POST" ? { "content-type": "application/json" } : {}) },
        body: method === "POST" ? body : undefined,
        signal,
        ...(url.protocol === "https:" ? { tls: { ca: [...(typeof o.ca === "string" ? [o.ca] : o.ca)] } } : {}),
        // Our choice (HTTPS_PROXY and NO_PROXY as src/transport/proxy.ts reads them), not the runtime's own.
        proxy: o.proxy ? { url: o.proxy.url, respectNoProxy: false } : false,
      });
    } catch (err) {
      throw new RequestFailed("poll-request-failed", `${method} ${url.pathname} failed: ${errorMessage(err)}`, { cause: err });
    }
    if (res.ok) return res;
    const code = await errorCode(res);
    const failed = new RequestFailed("poll-request-refused", `${method} ${url.pathname}: HTTP ${res.status}${code ? ` (${code})` : ""}`);
    failed.refusal = pollRefusal(res.status, code);
    // A refusal is logged each time (there are at most MAX_REFUSALS); any other answer is in the session's one line per outage.
    if (failed.refusal !== undefined) this.log.error("the mothership refused the pool's signature", { status: res.status, code });
    throw failed;
  }
}

/** The stable code of a mothership error answer (`{error: {code}}`), "" for anything else (a proxy's page). */
async function errorCode(res: Response): Promise<string> {
  try {
    const body = (await res.json()) as { error?: { code?: unknown } } | null;
    return typeof body?.error?.code === "string" ? body.error.code : "";
  } catch {
    return "";
  }
}

