/**
 * The mothership's side of the HTTP long-poll transport (DESIGN §6, src/protocol/poll.ts): the two
 * comms endpoints. Every request is verified against the CURRENT certificate of the pool it names
 * before anything is read from its body: a pool that was reset or deleted, a bad signature, a
 * request for another pool's key or a stale timestamp is a 401 and nothing is applied.
 *
 * Uplink batches go through `ControlPlane.handleUplink`, the path MQTT messages take, in order.
 * Downlink messages wait in the worker's mailbox (poll-mailbox.ts) until a poll acknowledges them.
 * Liveness is the control plane's: a poll worker has no Last Will, so silence (no heartbeat for 3
 * intervals) is what declares it lost.
 */
import * as v from "valibot";
import { errorMessage, SpaceliftError } from "../errors.ts";
import type { Logger } from "../log/logger.ts";
import {
  type DownlinkAnswer,
  importVerifyKey,
  MAX_BATCH,
  MAX_POLL_WAIT_SECONDS,
  POLL_DOWNLINK_PATH,
  POLL_PREFIX,
  POLL_UPLINK_PATH,
  PollSignatureError,
  requestIdentity,
  UplinkBatchSchema,
  verifyRequest,
  type SigningKey,
} from "../protocol/poll.ts";
import { isTopicLevel } from "../protocol/topics.ts";
import type { ControlPlane } from "./control.ts";
import type { PollMailboxes } from "./poll-mailbox.ts";
import type { Store } from "./store/index.ts";

export interface CommsPollOptions {
  store: Store;
  control: ControlPlane;
  mailboxes: PollMailboxes;
  namespace: string;
  logger: Logger;
  now?: () => Date;
}

/** 100 log chunks of 64 KiB in base64 fit; anything larger is not one of our launchers. */
const MAX_BODY_BYTES = 16 * 1024 * 1024;

const json = (body: unknown, status = 200): Response => Response.json(body, { status });
const failure = (status: number, code: string, message: string): Response => json({ error: { code, message } }, status);

export function isCommsRequest(pathname: string): boolean {
  return pathname.startsWith(POLL_PREFIX);
}

export function createCommsPoll(o: CommsPollOptions): (req: Request, url: URL) => Promise<Response> {
  const log = o.logger.child({ component: "comms-poll" });
  const now = o.now ?? (() => new Date());
  // One import per certificate: pools are few, and a reset changes the serial (the cache key).
  const keys = new Map<string, { serial: string; key: SigningKey }>();

  async function verifyKey(pool: string): Promise<SigningKey> {
    const p = o.store.pools.get(pool);
    if (!p || !o.store.pools.isCurrentSerial(p.id, p.certificate_serial)) {
      throw new PollSignatureError("poll-signature-invalid", `pool ${pool} does not exist or its certificate was revoked; use the token of its last reset`);
    }
    const cached = keys.get(p.id);
    if (cached?.serial === p.certificate_serial) return cached.key;
    const key = await importVerifyKey(p.certificate);
    keys.set(p.id, { serial: p.certificate_serial, key });
    return key;
  }

  /** Who is asking, verified; throws a PollSignatureError otherwise. */
  async function authenticate(req: Request, url: URL, body: Uint8Array): Promise<{ pool: string; worker: string }> {
    const { pool, worker } = requestIdentity(req.headers);
    if (!isTopicLevel(pool) || !isTopicLevel(worker)) throw new PollSignatureError("poll-signature-invalid", "pool and worker must be ids (letters, digits, _ . -)");
    const key = await verifyKey(pool);
    await verifyRequest(key, { method: req.method, pathWithQuery: url.pathname + url.search, pool, worker, body }, req.headers, now());
    return { pool, worker };
  }

  function uplink(pool: string, worker: string, body: Uint8Array): Response {
    let data: unknown;
    try {
      data = JSON.parse(Buffer.from(body).toString("utf8"));
    } catch {
      return failure(400, "invalid-request", "request body is not JSON");
    }
    const batch = v.safeParse(UplinkBatchSchema, data);
    if (!batch.success) return failure(400, "invalid-request", `messages: ${batch.issues[0].message} (at most ${MAX_BATCH} per request)`);
    // Before the first message is applied, so that the answer to it (registered) lands in the mailbox.
    o.mailboxes.open(pool, worker);
    const addr = { namespace: o.namespace, direction: "writeonly" as const, pool, worker };
    for (const message of batch.output.messages) {
      try {
        o.control.handleUplinkValue(addr, message);
      } catch (err) {
        log.error("uplink handler failed", { pool, worker, error: errorMessage(err) });
      }
    }
    return json({ accepted: batch.output.messages.length });
  }

  async function downlink(pool: string, worker: string, url: URL, signal: AbortSignal): Promise<Response> {
    const after = Number(url.searchParams.get("after") ?? "0");
    const wait = Number(url.searchParams.get("wait") ?? String(MAX_POLL_WAIT_SECONDS));
    if (!Number.isSafeInteger(after) || after < 0) return failure(400, "invalid-request", "after must be a cursor (a non-negative integer)");
    if (!Number.isFinite(wait) || wait < 0) return failure(400, "invalid-request", "wait must be a number of seconds");
    const waitMs = Math.min(wait, MAX_POLL_WAIT_SECONDS) * 1000;
    const taken = await o.mailboxes.take(pool, worker, after, MAX_BATCH, waitMs, signal);
    const answer: DownlinkAnswer = { messages: taken.entries.map((e) => ({ cursor: e.cursor, message: JSON.parse(e.payload) as unknown })), cursor: taken.cursor };
    return json(answer);
  }

  return async (req, url) => {
    const route = req.method === "POST" && url.pathname === POLL_UPLINK_PATH ? "uplink" : req.method === "GET" && url.pathname === POLL_DOWNLINK_PATH ? "downlink" : null;
    if (!route) return failure(404, "not-found", `no route ${req.method} ${url.pathname}`);
    try {
      const length = Number(req.headers.get("content-length") ?? "0");
      if (length > MAX_BODY_BYTES) return failure(413, "invalid-request", `request body larger than ${MAX_BODY_BYTES} bytes`);
      const body = new Uint8Array(await req.arrayBuffer());
      if (body.length > MAX_BODY_BYTES) return failure(413, "invalid-request", `request body larger than ${MAX_BODY_BYTES} bytes`);
      const { pool, worker } = await authenticate(req, url, body);
      return route === "uplink" ? uplink(pool, worker, body) : await downlink(pool, worker, url, req.signal);
    } catch (err) {
      if (err instanceof PollSignatureError) {
        log.warn("comms request refused", { code: err.code, path: url.pathname, pool: req.headers.get("x-spacelift-pool"), error: err.message });
        return failure(401, err.code, err.message);
      }
      const code = err instanceof SpaceliftError ? err.code : "internal";
      log.error("comms request failed", { path: url.pathname, error: err });
      return failure(500, code, errorMessage(err));
    }
  };
}
