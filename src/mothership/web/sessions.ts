/**
 * Web UI sessions: signing in with the admin token gives the browser a random session id in an
 * HttpOnly, Secure, SameSite=Strict cookie (`__Host-` prefixed, so no subdomain or plain-HTTP page
 * can set or shadow it) and the page a per-session CSRF token it sends back in `X-CSRF-Token` on every
 * state-changing request. Neither is ever in local storage or a URL.
 *
 * Sessions live in memory only (a restart signs everybody out): at most `maxSessions` (signing in
 * past that ends the least recently used one), each ending after `idleMs` without a request or
 * `lifetimeMs` after sign-in, whichever comes first. The map is keyed by a hash of the id, and ids,
 * CSRF tokens and the admin token are compared in constant time.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

const SESSION_COOKIE = "__Host-mothership_session";
const CSRF_HEADER = "x-csrf-token";

export interface SessionLimits {
  maxSessions: number;
  idleMs: number;
  lifetimeMs: number;
  /** Server-sent event streams one session may hold open at once (tabs, reconnects). */
  maxStreamsPerSession: number;
}

export const DEFAULT_SESSION_LIMITS: SessionLimits = {
  maxSessions: 32,
  idleMs: 30 * 60_000,
  lifetimeMs: 12 * 3600_000,
  maxStreamsPerSession: 4,
};

export interface Session {
  readonly key: string;
  readonly csrf: string;
  readonly createdAt: number;
  lastSeen: number;
  /** Closes each open event stream of this session (sign-out, expiry). */
  readonly streams: Set<() => void>;
}

const digest = (text: string) => createHash("sha256").update(text).digest();
const sameSecret = (a: string, b: string) => timingSafeEqual(digest(a), digest(b));

export class WebSessions {
  private readonly sessions = new Map<string, Session>();

  constructor(
    private readonly adminToken: string,
    readonly limits: SessionLimits = DEFAULT_SESSION_LIMITS,
    private readonly now: () => number = Date.now,
  ) {}

  /** A new session for the right admin token (its cookie value and CSRF token); null for a wrong one. */
  signIn(token: string): { id: string; session: Session } | null {
    if (!sameSecret(token, this.adminToken)) return null;
    this.sweep();
    while (this.sessions.size >= this.limits.maxSessions) {
      const oldest = [...this.sessions.values()].reduce((a, b) => (b.lastSeen < a.lastSeen ? b : a));
      this.end(oldest);
    }
    const id = randomBytes(32).toString("base64url");
    const t = this.now();
    const session: Session = { key: digest(id).toString("hex"), csrf: randomBytes(32).toString("base64url"), createdAt: t, lastSeen: t, streams: new Set() };
    this.sessions.set(session.key, session);
    return { id, session };
  }

  /** The live session the request's cookie names (touched: it counts as activity), else null. */
  fromRequest(req: Request): Session | null {
    const id = cookieValue(req.headers.get("cookie"), SESSION_COOKIE);
    if (!id || id.length > 128) return null;
    const s = this.sessions.get(digest(id).toString("hex"));
    if (!s) return null;
    if (this.expired(s)) {
      this.end(s);
      return null;
    }
    s.lastSeen = this.now();
    return s;
  }

  /** Whether the request carries the session's CSRF token in X-CSRF-Token. */
  csrfMatches(s: Session, req: Request): boolean {
    const given = req.headers.get(CSRF_HEADER);
    return given !== null && given.length <= 128 && sameSecret(given, s.csrf);
  }

  /** Whether the session is still signed in (event streams check this as they go). */
  alive(s: Session): boolean {
    if (this.sessions.get(s.key) !== s) return false;
    if (!this.expired(s)) return true;
    this.end(s);
    return false;
  }

  end(s: Session): void {
    this.sessions.delete(s.key);
    for (const close of [...s.streams]) close();
    s.streams.clear();
  }

  /** Ends every expired session. */
  sweep(): void {
    for (const s of [...this.sessions.values()]) if (this.expired(s)) this.end(s);
  }

  get size(): number {
    return this.sessions.size;
  }

  private expired(s: Session): boolean {
    const t = this.now();
    return t - s.lastSeen >= this.limits.idleMs || t - s.createdAt >= this.limits.lifetimeMs;
  }
}

/** Set-Cookie for a new session; Max-Age is the session's lifetime. */
export function sessionCookie(id: string, limits: SessionLimits): string {
  return `${SESSION_COOKIE}=${id}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=${Math.floor(limits.lifetimeMs / 1000)}`;
}

export const clearedSessionCookie = `${SESSION_COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0`;

function cookieValue(header: string | null, name: string): string | null {
  if (!header || header.length > 8192) return null;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}
