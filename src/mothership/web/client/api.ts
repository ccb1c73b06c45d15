/**
 * The page's way to the mothership: the JSON API under /api/v1 with the session cookie (sent by the
 * browser, never readable here) and the session's CSRF token, which lives only in this module's
 * memory; and the live views as server-sent events (/ui/events).
 */

let csrf = "";
let onSignedOut: () => void = () => {};

export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export function setSignedOutHandler(f: () => void): void {
  onSignedOut = f;
}

async function send<T>(method: string, url: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (csrf) headers["x-csrf-token"] = csrf;
  const res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "same-origin", cache: "no-store" });
  const data = (await res.json().catch(() => null)) as { error?: { code?: string; message?: string } } | null;
  if (!res.ok) {
    const err = new ApiError(data?.error?.code ?? "http", data?.error?.message ?? `the server answered ${res.status}`, res.status);
    if (res.status === 401 && !url.startsWith("/ui/session")) {
      csrf = "";
      onSignedOut();
    }
    throw err;
  }
  return data as T;
}

/** A call of the JSON API, e.g. `api("POST", "/pools", {name, csr})`. */
export function api<T>(method: "GET" | "POST" | "DELETE", path: string, body?: unknown): Promise<T> {
  return send<T>(method, `/api/v1${path}`, body);
}

/** Whether a session is open (it then knows its CSRF token). */
export async function resumeSession(): Promise<boolean> {
  try {
    csrf = (await send<{ csrf: string }>("GET", "/ui/session")).csrf;
    return true;
  } catch {
    return false;
  }
}

export async function signIn(token: string): Promise<void> {
  csrf = (await send<{ csrf: string }>("POST", "/ui/session", { token })).csrf;
}

export async function signOut(): Promise<void> {
  await send("POST", "/ui/sign-out").catch(() => undefined);
  csrf = "";
}

export interface LiveHandlers<S> {
  snapshot(data: S): void;
  log?(seq: number, bytes: Uint8Array): void;
}

/** Follows a live view; the returned function stops it. The header shows whether it is connected. */
export function live<S>(topic: string, handlers: LiveHandlers<S>): () => void {
  const source = new EventSource(`/ui/events?topic=${encodeURIComponent(topic)}`);
  const state = document.getElementById("live");
  const show = (text: string) => {
    if (state) state.textContent = text;
  };
  show("Connecting…");
  source.addEventListener("open", () => show("Live"));
  source.addEventListener("snapshot", (e) => {
    show("Live");
    handlers.snapshot(JSON.parse((e as MessageEvent<string>).data) as S);
  });
  source.addEventListener("log", (e) => {
    const { seq, data } = JSON.parse((e as MessageEvent<string>).data) as { seq: number; data: string };
    handlers.log?.(seq, Uint8Array.from(atob(data), (c) => c.charCodeAt(0)));
  });
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED) {
      show("Offline");
      // Refused for good (signed out, too many views): find out which.
      void resumeSession().then((ok) => (ok ? show("Offline: reload the page") : onSignedOut()));
    } else show("Reconnecting…");
  });
  return () => {
    source.close();
    show("");
  };
}
