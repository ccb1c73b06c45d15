/**
 * The mothership's side of the HTTP long-poll transport (src/protocol/poll.ts): the two comms
 * endpoints. A request is checked in the order that costs an attacker the most and us the least:
 *
 *   1. headers (pool, worker, timestamp, nonce, signature) present and well formed, the timestamp
 *      within the clock window, the pool existing with a certificate whose key imports, and a declared
 *      `Content-Length` within MAX_BODY_BYTES: all before one byte of the body is read;
 *   2. the body, read as a stream and cut at MAX_BODY_BYTES (a chunked body has no length to check);
 *   3. the signature over all of it, against the pool's CURRENT certificate;
 *   4. the nonce, unseen within the window (poll-replay.ts; on PostgreSQL by any replica, store/nonces.ts);
 *   5. the worker id: one that belongs to another pool is refused (403 worker-pool-mismatch).
 *
 * A failure is an answer with a code and nothing is applied. Uplink batches go through
 * `ControlPlane.handleUplinkValue`, the path MQTT messages take, in order. Downlink messages wait in
 * the worker's mailbox (poll-mailbox.ts; on PostgreSQL shared by the replicas, poll-mailbox-shared.ts)
 * until a poll acknowledges them. Liveness is the control plane's: a poll worker has no Last Will, so
 * silence (no heartbeat for 3 intervals) declares it lost.
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
  readSignedHeaders,
  UplinkBatchSchema,
  verifySignature,
  type SignedHeaders,
  type SigningKey,
} from "../protocol/poll.ts";
import { isCarrierId, type Carriers } from "./carriers.ts";
import type { ControlPlane } from "./control.ts";
import type { PollMailboxes } from "./poll-mailbox.ts";
import { ReplayCache, type ReplayGuard } from "./poll-replay.ts";
import type { Store } from "./store/index.ts";

export interface CommsPollOptions {
  store: Store;
  control: ControlPlane;
  mailboxes: PollMailboxes;
  /** Told that each worker that sends a batch speaks through `carrier`, so its answers go to its mailbox. */
  carriers: Pick<Carriers, "spoke">;
  /** This carrier's name in `carriers` (serve.ts). */
  carrier: string;
  logger: Logger;
  /** Nonces of signed requests seen within the clock window (a ReplayCache made here when not given). */
  replays?: ReplayGuard;
  now?: () => Date;
}

/** 100 log chunks of 64 KiB in base64 fit; anything larger is not one of our launchers. */
const MAX_BODY_BYTES = 16 * 1024 * 1024;

/** A refusal with its HTTP status and code, thrown on the way and answered as `{error: {code, message}}`. */
class Refusal extends SpaceliftError {
  constructor(
    readonly status: number,
    code: string,
    message: string,
  ) {
    super(code, message);
  }
}

const tooLarge = () => new Refusal(413, "poll-body-too-large", `a comms request body holds at most ${MAX_BODY_BYTES} bytes (${MAX_BATCH} messages)`);

/** Reads a body as a stream, refusing it as soon as it passes `max` bytes (the rest is never read). */
async function readCapped(req: Request, max: number): Promise<Uint8Array> {
  const declared = req.headers.get("content-length");
  if (declared !== null && !/^\d{1,15}$/.test(declared)) throw new Refusal(400, "invalid-request", "Content-Length must be a number of bytes");
  if (declared !== null && Number(declared) > max) throw tooLarge();
  if (!req.body) return new Uint8Array(0);
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(value);
  }
  return chunks.length === 1 ? chunks[0]! : new Uint8Array(Buffer.concat(chunks));
}

const json = (body: unknown, status = 200): Response => Response.json(body, { status });
const failure = (status: number, code: string, message: string): Response => json({ error: { code, message } }, status);

export function isCommsRequest(pathname: string): boolean {
  return pathname.startsWith(POLL_PREFIX);
}

export function createCommsPoll(o: CommsPollOptions): (req: Request, url: URL) => Promise<Response> {
  const log = o.logger.child({ component: "comms-poll" });
  const now = o.now ?? (() => new Date());
  const replays = o.replays ?? new ReplayCache({ now: () => now().getTime() });
  // One import per certificate: pools are few, and a reset changes the serial (the cache key).
  const keys = new Map<string, { serial: string; key: SigningKey }>();

  async function verifyKey(pool: string): Promise<SigningKey> {
    const p = await o.store.pools.get(pool);
    if (!p || !(await o.store.pools.isCurrentSerial(p.id, p.certificate_serial))) {
      throw new PollSignatureError("poll-signature-invalid", `pool ${pool} does not exist or its certificate was revoked; use the token of its last reset`);
    }
    const cached = keys.get(p.id);
    if (cached?.serial === p.certificate_serial) return cached.key;
    const key = await importVerifyKey(p.certificate);
    keys.set(p.id, { serial: p.certificate_serial, key });
    return key;
  }

  /** Everything that needs no body (step 1); throws a PollSignatureError or a Refusal. */
  async function checkHead(req: Request): Promise<{ signed: SignedHeaders; key: SigningKey }> {
    const signed = readSignedHeaders(req.headers, now());
    if (!isCarrierId(signed.pool) || !isCarrierId(signed.worker)) throw new PollSignatureError("poll-signature-invalid", "pool and worker must be ids (letters, digits, _ . -)");
    return { signed, key: await verifyKey(signed.pool) };
  }

  /** Steps 2 to 5: the body, the signature over it, the nonce, the worker's pool. */
  async function authenticate(req: Request, url: URL, head: { signed: SignedHeaders; key: SigningKey }): Promise<Uint8Array> {
    const { signed, key } = head;
    // A downlink poll has no body; whatever a GET carries is neither read nor signed.
    const body = req.method === "POST" ? await readCapped(req, MAX_BODY_BYTES) : new Uint8Array(0);
    await verifySignature(key, { method: req.method, pathWithQuery: url.pathname + url.search, pool: signed.pool, worker: signed.worker, body }, signed);
    const verdict = await replays.check(signed.pool, signed.nonce, signed.seconds);
    if (verdict === "replayed") throw new PollSignatureError("poll-replayed", "this signed request was already received; every request needs a fresh X-Spacelift-Nonce");
    if (verdict === "full") throw new Refusal(429, "poll-too-many-requests", "too many requests of this pool within the clock window; retry later");
    const owner = await o.store.workers.get(signed.worker);
    if (owner && owner.pool !== signed.pool) {
      log.warn("comms request for a worker of another pool refused", { pool: signed.pool, worker: signed.worker, worker_pool: owner.pool });
      throw new Refusal(403, "worker-pool-mismatch", `worker ${signed.worker} belongs to another pool; a launcher makes a fresh worker id at each start`);
    }
    return body;
  }

  /** Applies the batch's messages in order, each after the one before, and answers once all are applied. */
  async function uplink(pool: string, worker: string, body: Uint8Array): Promise<Response> {
    let data: unknown;
    try {
      data = JSON.parse(Buffer.from(body).toString("utf8"));
    } catch {
      return failure(400, "invalid-request", "request body is not JSON");
    }
    const batch = v.safeParse(UplinkBatchSchema, data);
    if (!batch.success) return failure(400, "invalid-request", `messages: ${batch.issues[0].message} (at most ${MAX_BATCH} per request)`);
    // Before the first message is applied, so that the answer to it (registered) lands in the mailbox.
    await o.mailboxes.open(pool, worker);
    await o.carriers.spoke(pool, worker, o.carrier);
    for (const message of batch.output.messages) {
      try {
        await o.control.handleUplinkValue(pool, worker, message);
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
      const head = await checkHead(req);
      const body = await authenticate(req, url, head);
      const { pool, worker } = head.signed;
      return route === "uplink" ? await uplink(pool, worker, body) : await downlink(pool, worker, url, req.signal);
    } catch (err) {
      if (err instanceof PollSignatureError) {
        log.warn("comms request refused", { code: err.code, path: url.pathname, pool: req.headers.get("x-spacelift-pool"), error: err.message });
        return failure(401, err.code, err.message);
      }
      if (err instanceof Refusal) {
        log.warn("comms request refused", { code: err.code, path: url.pathname, pool: req.headers.get("x-spacelift-pool"), status: err.status });
        return failure(err.status, err.code, err.message);
      }
      const code = err instanceof SpaceliftError ? err.code : "internal";
      log.error("comms request failed", { path: url.pathname, error: err });
      return failure(500, code, "the mothership could not handle this request; it is logged");
    }
  };
}
