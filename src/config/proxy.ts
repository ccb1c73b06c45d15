/**
 * The proxy variables the launcher honours for its own connections to the mothership: `HTTPS_PROXY`,
 * `HTTP_PROXY` and `NO_PROXY`, each also in lower case. As Go's net/http reads them: the upper-case
 * form wins, an empty value counts as unset, a proxy URL without a scheme is `http://`. Which
 * connection uses which proxy is decided in src/transport/proxy.ts; here they are only parsed and
 * checked, at start, so a mistyped proxy stops the launcher with one line instead of failing every
 * connection later. Proxy URLs may hold credentials (`http://user:pass@proxy:3128`): they are never
 * shown, only the URL with `***` in their place.
 */
import { isIP } from "node:net";
import { fail, ok, quote, type ParseResult } from "./parse-result.ts";

type Env = Readonly<Record<string, string | undefined>>;

export interface ProxyServer {
  /** The URL to connect with, credentials included. */
  readonly url: string;
  /** The same with user and password replaced by `***`, for output. */
  readonly shown: string;
  /** The variable it came from (`HTTPS_PROXY` or `https_proxy`, ...). */
  readonly variable: string;
}

/** One `NO_PROXY` entry. `*` is `{ kind: "all" }`. */
export type NoProxyEntry =
  | { readonly kind: "all" }
  | { readonly kind: "ip"; readonly address: string; readonly port: number | undefined }
  | { readonly kind: "cidr"; readonly network: string; readonly bits: number }
  | { readonly kind: "domain"; readonly name: string; readonly subdomainsOnly: boolean; readonly port: number | undefined };

export interface NoProxy {
  readonly entries: readonly NoProxyEntry[];
  /** The variable it came from, undefined when neither form is set. */
  readonly variable: string | undefined;
}

export interface ProxySettings {
  /** For https:// comms URLs and the MQTT broker (TLS). */
  readonly https: ProxyServer | undefined;
  /** For plain http:// comms URLs. */
  readonly http: ProxyServer | undefined;
  readonly noProxy: NoProxy;
}

/** The variable of a pair in force: the first non-empty of upper and lower case. */
export function proxyVariable(env: Env, upper: "HTTPS_PROXY" | "HTTP_PROXY" | "NO_PROXY"): { name: string; value: string } | undefined {
  for (const name of [upper, upper.toLowerCase()]) {
    const value = env[name];
    if (value !== undefined && value.trim() !== "") return { name, value: value.trim() };
  }
  return undefined;
}

const PROXY_GOOD = "e.g. http://proxy.internal:3128 or http://user:password@proxy.internal:3128";

/** A proxy URL as Go reads it: `host:port` means `http://host:port`; only http and https proxies. */
export function parseProxyUrl(variable: string, text: string): ParseResult<ProxyServer> {
  const withScheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(text) ? text : `http://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    return fail(`${from(variable)}${quote(redactText(text))} is not a URL`, PROXY_GOOD);
  }
  const shown = redactUrl(url);
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return fail(`${from(variable)}${quote(shown)} is not an http:// or https:// proxy (SOCKS is not supported)`, PROXY_GOOD);
  }
  if (url.hostname === "") return fail(`${from(variable)}${quote(shown)} names no host`, PROXY_GOOD);
  if ((url.pathname !== "/" && url.pathname !== "") || url.search !== "" || url.hash !== "") {
    return fail(`${from(variable)}${quote(shown)} has a path or query; a proxy URL is only scheme://[user:password@]host[:port]`, PROXY_GOOD);
  }
  return ok({ url: url.href.replace(/\/$/, ""), shown, variable });
}

/**
 * `NO_PROXY`: a comma (or space) separated list of `*`, host names (`example.com` is that host and
 * its subdomains; `.example.com` and `*.example.com` only the subdomains), IP addresses, CIDR
 * ranges (`10.0.0.0/8`), each name or address optionally with `:port`.
 */
export function parseNoProxy(variable: string, text: string): ParseResult<NoProxy> {
  const entries: NoProxyEntry[] = [];
  const problems: string[] = [];
  for (const raw of text.split(/[,\s]+/).filter((s) => s !== "")) {
    const entry = parseNoProxyEntry(raw.toLowerCase());
    if (entry) entries.push(entry);
    else problems.push(`${from(variable)}entry ${quote(raw)} is not a host name, IP address, CIDR range or *; e.g. localhost,.internal.example.com,10.0.0.0/8,169.254.169.254`);
  }
  return problems.length > 0 ? { ok: false, problems } : ok({ entries, variable });
}

function parseNoProxyEntry(entry: string): NoProxyEntry | undefined {
  if (entry === "*") return { kind: "all" };
  const cidr = /^([0-9a-f.:]+)\/(\d{1,3})$/.exec(entry);
  if (cidr) {
    const family = isIP(cidr[1]!);
    const bits = Number(cidr[2]);
    if (family === 0 || bits > (family === 4 ? 32 : 128)) return undefined;
    return { kind: "cidr", network: cidr[1]!, bits };
  }
  const { host, port } = splitPort(entry);
  if (port === null) return undefined;
  if (isIP(host) !== 0) return { kind: "ip", address: host, port };
  const subdomainsOnly = host.startsWith(".") || host.startsWith("*.");
  const name = host.replace(/^\*?\./, "");
  if (!/^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$/.test(name)) return undefined;
  return { kind: "domain", name, subdomainsOnly, port };
}

/** `host`, `host:port`, `[v6]`, `[v6]:port`, or a bare IPv6 address. `port: null` when the port is malformed. */
function splitPort(entry: string): { host: string; port: number | undefined | null } {
  const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(entry);
  if (bracketed) return { host: bracketed[1]!, port: bracketed[2] === undefined ? undefined : toPort(bracketed[2]) };
  if (isIP(entry) === 6) return { host: entry, port: undefined };
  const at = entry.lastIndexOf(":");
  if (at < 0) return { host: entry, port: undefined };
  return { host: entry.slice(0, at), port: toPort(entry.slice(at + 1)) };
}

function toPort(text: string): number | null {
  if (!/^\d{1,5}$/.test(text)) return null;
  const port = Number(text);
  return port >= 1 && port <= 65535 ? port : null;
}

/** "(set as https_proxy) " when the lower-case form is the one in force, so the problem names what to fix. */
function from(variable: string): string {
  return variable === variable.toUpperCase() ? "" : `(set as ${variable}) `;
}

function redactUrl(url: URL): string {
  if (url.username === "" && url.password === "") return url.href.replace(/\/$/, "");
  const copy = new URL(url.href);
  copy.username = "***";
  copy.password = "";
  return copy.href.replace(/\/$/, "");
}

/** Best effort for text that is not even a URL: anything before an `@` may be credentials. */
function redactText(text: string): string {
  const at = text.lastIndexOf("@");
  if (at < 0) return text;
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(text)?.[0] ?? "";
  return `${scheme}***${text.slice(at)}`;
}
