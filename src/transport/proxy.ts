/**
 * Which proxy a connection to the mothership goes through, and the HTTP CONNECT tunnel the MQTT
 * transport opens through it (the long-poll transport hands the proxy to fetch, which tunnels https
 * the same way). TLS to the mothership or broker always runs end to end inside the tunnel, checked
 * against the token's CA (and the operator's extra CAs), so the proxy sees only a host and a port.
 *
 * Choice, as curl and Go's net/http make it: `https:` and `mqtts:` targets use HTTPS_PROXY, `http:`
 * and `mqtt:` ones HTTP_PROXY; NO_PROXY exempts a target by host name (itself and its subdomains, or
 * only subdomains with a leading dot), IP, CIDR range or `*`, optionally only on one port. Loopback
 * addresses are not exempt by themselves (curl's rule, not Go's): list them in NO_PROXY.
 */
import { BlockList, connect as netConnect, isIP, type Socket } from "node:net";
import { Duplex } from "node:stream";
import { connect as tlsConnect, rootCertificates } from "node:tls";
import type { NoProxyEntry, ProxyServer, ProxySettings } from "../config/proxy.ts";
import { errorMessage, SpaceliftError } from "../errors.ts";

/** The proxy for a connection to `target` (a URL: https, http, mqtts or mqtt), undefined for a direct one. */
export function proxyFor(settings: ProxySettings, target: URL): ProxyServer | undefined {
  const secure = target.protocol === "https:" || target.protocol === "mqtts:";
  const proxy = secure ? settings.https : settings.http;
  if (proxy === undefined) return undefined;
  const host = target.hostname.replace(/^\[|\]$/g, "").toLowerCase();
  const port = Number(target.port || defaultPort(target.protocol));
  return settings.noProxy.entries.some((entry) => bypasses(entry, host, port)) ? undefined : proxy;
}

function defaultPort(protocol: string): number {
  return protocol === "https:" ? 443 : protocol === "mqtts:" ? 8883 : protocol === "mqtt:" ? 1883 : 80;
}

function bypasses(entry: NoProxyEntry, host: string, port: number): boolean {
  switch (entry.kind) {
    case "all":
      return true;
    case "ip":
      return isIP(host) !== 0 && sameAddress(entry.address, host) && (entry.port === undefined || entry.port === port);
    case "cidr": {
      const family = isIP(host);
      if (family === 0 || family !== isIP(entry.network)) return false;
      const list = new BlockList();
      const type = family === 4 ? "ipv4" : "ipv6";
      list.addSubnet(entry.network, entry.bits, type);
      return list.check(host, type);
    }
    case "domain": {
      if (entry.port !== undefined && entry.port !== port) return false;
      if (host.endsWith(`.${entry.name}`)) return true;
      return !entry.subdomainsOnly && host === entry.name;
    }
  }
}

function sameAddress(a: string, b: string): boolean {
  if (a === b) return true;
  const family = isIP(a);
  if (family !== isIP(b)) return false;
  const list = new BlockList();
  list.addAddress(a, family === 4 ? "ipv4" : "ipv6");
  return list.check(b, family === 4 ? "ipv4" : "ipv6");
}

/** The longest CONNECT answer head we read before giving up on a proxy. */
const MAX_PROXY_HEAD = 16 * 1024;

export interface TunnelOptions {
  /** CA certificates for an https:// proxy itself (the system's are used besides). */
  proxyCa?: readonly string[];
  timeoutMs: number;
}

/**
 * A TCP stream to `host:port` through the proxy's CONNECT, ready for TLS on top. Rejects with a
 * SpaceliftError naming the proxy (never its credentials) when the proxy is unreachable, answers
 * something other than 2xx, or takes longer than `timeoutMs`.
 */
function openTunnel(proxy: ProxyServer, host: string, port: number, opts: TunnelOptions): Promise<Socket> {
  const url = new URL(proxy.url);
  const proxyPort = Number(url.port || (url.protocol === "https:" ? 443 : 80));
  const proxyHost = url.hostname.replace(/^\[|\]$/g, "");
  return new Promise<Socket>((resolve, reject) => {
    const socket: Socket =
      url.protocol === "https:"
        ? tlsConnect({ host: proxyHost, port: proxyPort, servername: isIP(proxyHost) ? undefined : proxyHost, ...(opts.proxyCa?.length ? { ca: [...systemCas(), ...opts.proxyCa] } : {}) })
        : netConnect({ host: proxyHost, port: proxyPort });
    const fail = (why: string) => {
      cleanup();
      socket.destroy();
      reject(new SpaceliftError("proxy-tunnel-failed", `proxy ${proxy.shown} (${proxy.variable}): ${why}`));
    };
    const timer = setTimeout(() => fail(`no tunnel to ${host}:${port} within ${opts.timeoutMs} ms`), opts.timeoutMs);
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) {
        if (head.length > MAX_PROXY_HEAD) fail(`the answer to CONNECT is longer than ${MAX_PROXY_HEAD} bytes`);
        return;
      }
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(head.subarray(0, Math.min(end, 200)).toString("latin1"));
      if (!status) return fail("the answer to CONNECT is not HTTP");
      const code = Number(status[1]);
      if (code < 200 || code > 299) {
        const line = head.subarray(0, head.indexOf("\r\n")).toString("latin1").slice(0, 120);
        return fail(`CONNECT ${host}:${port} refused: ${line}${code === 407 ? " (give user:password in the proxy URL)" : ""}`);
      }
      cleanup();
      const rest = head.subarray(end + 4);
      if (rest.length > 0) socket.unshift(rest);
      resolve(socket);
    };
    const onError = (err: Error) => fail(errorMessage(err));
    const onClose = () => fail("closed the connection before answering CONNECT");
    const cleanup = () => {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("error", onError);
      socket.off("close", onClose);
    };
    socket.on("data", onData);
    socket.on("error", onError);
    socket.on("close", onClose);
    const authority = isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
    const auth = url.username !== "" ? `Proxy-Authorization: Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString("base64")}\r\n` : "";
    socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${auth}\r\n`);
  });
}

/** The runtime's built-in roots: giving `ca` replaces them, so an https proxy's own CA is added to them. */
function systemCas(): string[] {
  return [...rootCertificates];
}

/**
 * The tunnel as a stream that exists at once: writes wait until the proxy has answered CONNECT.
 * MQTT.js asks for its connection synchronously, and TLS (with the pool certificate) runs on top of
 * this stream, so the handshake starts as soon as the tunnel stands.
 */
export function tunnelStream(proxy: ProxyServer, host: string, port: number, opts: TunnelOptions): Duplex {
  return new PendingTunnel(openTunnel(proxy, host, port, opts));
}

class PendingTunnel extends Duplex {
  private inner: Socket | null = null;
  private readonly waiting: Array<{ chunk: Buffer; done: (err?: Error | null) => void }> = [];

  constructor(tunnel: Promise<Socket>) {
    super();
    tunnel.then(
      (socket) => {
        if (this.destroyed) return socket.destroy();
        this.inner = socket;
        socket.on("data", (data: Buffer) => {
          if (!this.push(data)) socket.pause();
        });
        socket.on("end", () => this.push(null));
        socket.on("error", (err) => this.destroy(err));
        socket.on("close", () => this.destroy());
        for (const { chunk, done } of this.waiting.splice(0)) socket.write(chunk, done);
      },
      (err: unknown) => this.destroy(err instanceof Error ? err : new Error(String(err))),
    );
  }

  override _read(): void {
    this.inner?.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    if (this.inner) this.inner.write(chunk, done);
    else this.waiting.push({ chunk, done });
  }

  override _final(done: () => void): void {
    this.inner?.end();
    done();
  }

  override _destroy(err: Error | null, done: (err: Error | null) => void): void {
    this.inner?.destroy();
    done(err);
  }
}
