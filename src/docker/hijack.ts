/**
 * Docker's hijacked attach: `POST /containers/{id}/attach` with `Upgrade: tcp`, answered `101 UPGRADED`,
 * after which the connection is a raw byte stream.
 *
 * We dispatch with our own handler instead of undici's `upgrade()`: that one turns every non-101 answer
 * into a status-less `SocketError('bad upgrade')`, so "no such container" (404) would be indistinguishable
 * from a broken daemon. Here a refused upgrade is classified from its HTTP status and carries the daemon's
 * own message. The caller's AbortSignal keeps applying after the upgrade: it destroys the socket with a
 * typed error (aborted, or timeout for a TimeoutError reason), which ends the reader's iteration.
 */
import type { Duplex } from "node:stream";
import type { Dispatcher } from "undici/index.js";
import { DockerError, daemonMessage, errorFromStatus, errorFromTransport } from "./errors.ts";

/** An error answer is read for its message only; a daemon sending more than this is cut off. */
const MAX_ERROR_BODY = 64 * 1024;

export interface HijackOptions {
  path: string;
  what: string;
  /** DOCKER_HOST, for messages. */
  endpoint: string;
  /** Time allowed for the daemon to answer the upgrade (0: none). */
  headersTimeoutMs: number;
  signal?: AbortSignal | undefined;
}

export function hijack(dispatcher: Dispatcher, opts: HijackOptions): Promise<Duplex> {
  const { what, endpoint, signal } = opts;
  return new Promise<Duplex>((resolve, reject) => {
    if (signal?.aborted) {
      reject(errorFromTransport(signal.reason, what, endpoint, signal));
      return;
    }
    let controller: Dispatcher.DispatchController | undefined;
    let settled = false;
    let status = 0;
    const body: Buffer[] = [];
    let bodyBytes = 0;

    const abortError = () => errorFromTransport(signal?.reason, what, endpoint, signal);
    // Still queued for a pool connection (no controller yet): reject now; onRequestStart then cancels it.
    const onAbort = () => (controller ? controller.abort(abortError()) : fail(abortError()));
    signal?.addEventListener("abort", onAbort, { once: true });

    const fail = (err: DockerError) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener("abort", onAbort);
      reject(err);
    };
    const succeed = (socket: Duplex) => {
      if (settled) {
        socket.destroy();
        return;
      }
      settled = true;
      signal?.removeEventListener("abort", onAbort);
      if (signal) abortDestroys(socket, what, endpoint, signal);
      resolve(socket);
    };

    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(c) {
        controller = c;
        if (settled || signal?.aborted) c.abort(abortError());
      },
      onRequestUpgrade(_c, statusCode, _headers, socket) {
        if (statusCode === 101) return succeed(socket);
        socket.destroy();
        fail(new DockerError("daemon-error", `${what}: the daemon answered ${statusCode} instead of 101 to the upgrade`, { status: statusCode }));
      },
      onResponseStart(_c, statusCode) {
        status = statusCode;
      },
      onResponseData(_c, chunk) {
        if (bodyBytes >= MAX_ERROR_BODY) return;
        body.push(chunk);
        bodyBytes += chunk.length;
      },
      onResponseEnd() {
        // A complete answer that is not an upgrade: 404 no such container, 409, 500, ... (or a 2xx that did
        // not hijack, which errorFromStatus reports as a daemon error).
        fail(errorFromStatus(status, daemonMessage(Buffer.concat(body).toString("utf8")), what));
      },
      onResponseError(_c, err) {
        fail(errorFromTransport(err, what, endpoint, signal));
      },
    };
    try {
      dispatcher.dispatch(
        { path: opts.path, method: "POST", upgrade: "tcp", headersTimeout: opts.headersTimeoutMs, bodyTimeout: opts.headersTimeoutMs },
        handler,
      );
    } catch (err) {
      fail(errorFromTransport(err, what, endpoint, signal));
    }
  });
}

/** After the upgrade, an abort destroys the raw socket with a typed error; the listener goes with the socket. */
function abortDestroys(socket: Duplex, what: string, endpoint: string, signal: AbortSignal): void {
  const onAbort = () => void socket.destroy(errorFromTransport(signal.reason, what, endpoint, signal));
  if (signal.aborted) return onAbort();
  signal.addEventListener("abort", onAbort, { once: true });
  socket.once("close", () => signal.removeEventListener("abort", onAbort));
}
