/**
 * The web UI's HTTP side, served by `mothership serve` next to the API: the page at `/`, its files
 * under `/ui/`, sign-in and sign-out, the live event streams, and the second way into the JSON API
 * (http/api.ts asks `authorizes`): a session cookie, with the session's CSRF token in X-CSRF-Token on
 * every request that is not a GET or HEAD.
 *
 *   GET  /                      the page (also /ui/app.js, /ui/app.css)
 *   POST /ui/session {token}    sign in with the admin token -> {csrf} + the session cookie
 *   GET  /ui/session            {csrf} of the current session, else 401
 *   POST /ui/sign-out           ends the session (needs X-CSRF-Token), clears the cookie
 *   GET  /ui/events?topic=T     server-sent events of a view (events.ts), T as in snapshots.ts
 */
import * as v from "valibot";
import { SpaceliftError } from "../../errors.ts";
import type { Logger } from "../../log/logger.ts";
import { errorResponse, json } from "../http/router.ts";
import type { Store } from "../store/index.ts";
import { SECURITY_HEADERS, WebAssets } from "./assets.ts";
import { DEFAULT_EVENT_LIMITS, EventHub, type EventLimits } from "./events.ts";
import { clearedSessionCookie, DEFAULT_SESSION_LIMITS, sessionCookie, WebSessions, type SessionLimits } from "./sessions.ts";
import { isTopic } from "./snapshots.ts";

export interface WebUiOptions {
  store: Store;
  adminToken: string;
  logger: Logger;
  sessionLimits?: SessionLimits;
  eventLimits?: EventLimits;
}

export interface WebUi {
  /** Whether the path is the UI's (the page or below /ui/). */
  handles(pathname: string): boolean;
  handle(req: Request, url: URL): Promise<Response>;
  /** For the JSON API: true when the request comes from a signed-in page; throws when its CSRF token is wrong. */
  authorizes(req: Request): boolean;
  close(): void;
}

const SignIn = v.object({ token: v.pipe(v.string(), v.minLength(1, "give the admin token"), v.maxLength(1024, "the admin token is shorter than that")) });
const MAX_SIGN_IN_BYTES = 4096;
const SAFE_METHODS = new Set(["GET", "HEAD"]);

const fail = (code: string, message: string, status: number, headers: Record<string, string> = {}) =>
  json({ error: { code, message } }, status, { ...SECURITY_HEADERS, "cache-control": "no-store", ...headers });
const ok = (body: unknown, headers: Record<string, string> = {}) => json(body, 200, { ...SECURITY_HEADERS, "cache-control": "no-store", ...headers });

/**
 * A request whose Origin (when the browser sends one) names another host than the one it was sent to
 * (Host, or X-Forwarded-Host behind a TLS-terminating proxy in front of --http-plain): refused before
 * it can sign in. Only the host is compared, since such a proxy turns https into http.
 */
function foreignOrigin(req: Request): boolean {
  const origin = req.headers.get("origin");
  if (origin === null) return false;
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    return true;
  }
  return host !== req.headers.get("host") && host !== req.headers.get("x-forwarded-host");
}

export function createWebUi(opts: WebUiOptions): WebUi {
  const log = opts.logger.child({ component: "web" });
  const sessions = new WebSessions(opts.adminToken, opts.sessionLimits ?? DEFAULT_SESSION_LIMITS);
  const hub = new EventHub(opts.store, sessions, opts.logger, opts.eventLimits ?? DEFAULT_EVENT_LIMITS);
  const assets = new WebAssets();
  const sweeper = setInterval(() => sessions.sweep(), 60_000);

  async function signIn(req: Request): Promise<Response> {
    if (foreignOrigin(req)) return fail("forbidden", "sign-in is only taken from this server's own page", 403);
    if (!(req.headers.get("content-type") ?? "").startsWith("application/json")) return fail("invalid-request", "send the token as JSON: {\"token\": \"...\"}", 400);
    if (Number(req.headers.get("content-length") ?? 0) > MAX_SIGN_IN_BYTES) return fail("body-too-large", `a sign-in is at most ${MAX_SIGN_IN_BYTES} bytes`, 413);
    const text = await req.text();
    if (text.length > MAX_SIGN_IN_BYTES) return fail("body-too-large", `a sign-in is at most ${MAX_SIGN_IN_BYTES} bytes`, 413);
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch {
      return fail("invalid-request", "the sign-in body is not JSON; send {\"token\": \"...\"}", 400);
    }
    const parsed = v.safeParse(SignIn, data);
    if (!parsed.success) return fail("invalid-request", `token: ${parsed.issues[0].message}`, 400);
    const made = sessions.signIn(parsed.output.token);
    if (!made) {
      log.warn("web sign-in with a wrong admin token");
      return fail("unauthorized", "wrong admin token; it is in the data dir's admin-token file", 401);
    }
    log.info("web session started", { sessions: sessions.size });
    return ok({ csrf: made.session.csrf }, { "set-cookie": sessionCookie(made.id, sessions.limits) });
  }

  async function route(req: Request, url: URL): Promise<Response> {
    const path = url.pathname;
    if (path === "/ui/session") {
      if (req.method === "POST") return signIn(req);
      if (req.method !== "GET") return fail("method-not-allowed", `${req.method} is not allowed on ${path}; it takes GET, POST`, 405, { allow: "GET, POST" });
      const s = sessions.fromRequest(req);
      return s ? ok({ csrf: s.csrf }) : fail("unauthorized", "not signed in", 401);
    }
    if (path === "/ui/sign-out") {
      if (req.method !== "POST") return fail("method-not-allowed", `${req.method} is not allowed on ${path}; it takes POST`, 405, { allow: "POST" });
      const s = sessions.fromRequest(req);
      if (s && !sessions.csrfMatches(s, req)) return fail("csrf-token-invalid", "sign-out needs the page's X-CSRF-Token; reload the page", 403);
      if (s) sessions.end(s);
      return ok({ signed_out: true }, { "set-cookie": clearedSessionCookie });
    }
    if (path === "/ui/events") {
      if (req.method !== "GET") return fail("method-not-allowed", `${req.method} is not allowed on ${path}; it takes GET`, 405, { allow: "GET" });
      const s = sessions.fromRequest(req);
      if (!s) return fail("unauthorized", "not signed in", 401);
      const topic = url.searchParams.get("topic") ?? "";
      if (!isTopic(topic)) return fail("invalid-request", `query parameter topic must be pools, stacks, pool:ID, stack:ID or run:ID, not ${JSON.stringify(topic.slice(0, 200))}`, 400);
      const stream = hub.open(s, topic, req.headers.get("last-event-id"), req.signal);
      return stream ?? fail("too-many-streams", `a session has at most ${sessions.limits.maxStreamsPerSession} live views open; close other tabs`, 429);
    }
    if (req.method !== "GET" && req.method !== "HEAD") return fail("method-not-allowed", `${req.method} is not allowed on ${path}; it takes GET`, 405, { allow: "GET, HEAD" });
    return (await assets.respond(path, req)) ?? fail("not-found", `no page ${path}`, 404);
  }

  return {
    handles: (pathname) => pathname === "/" || pathname.startsWith("/ui/"),
    async handle(req, url) {
      try {
        return await route(req, url);
      } catch (err) {
        return errorResponse(err, log, req, url.pathname);
      }
    },
    authorizes(req) {
      const s = sessions.fromRequest(req);
      if (!s) return false;
      if (!SAFE_METHODS.has(req.method) && !sessions.csrfMatches(s, req)) {
        throw new SpaceliftError("csrf-token-invalid", "a change made from the web UI needs the page's X-CSRF-Token header; reload the page");
      }
      return true;
    },
    close() {
      clearInterval(sweeper);
      hub.closeAll();
    },
  };
}
