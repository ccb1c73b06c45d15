/**
 * A `HOST:PORT` to listen on (SPACELIFT_LAUNCHER_METRICS_ADDR): an IPv4 address, `[IPv6]` or a host
 * name, and a port from 1 to 65535. The host is required: an empty one would mean every interface,
 * and metrics that say what runs where should be exposed on purpose (`0.0.0.0:9100`), not by accident.
 */
import { isIP } from "node:net";
import { fail, ok, quote, type ParseResult } from "./parse-result.ts";

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

const GOOD = "e.g. 127.0.0.1:9100, [::1]:9100, or 0.0.0.0:9100 for every interface";
const HOST_NAME = /^(?=.{1,253}$)[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;

export function parseListenAddress(text: string): ParseResult<ListenAddress> {
  const at = text.lastIndexOf(":");
  if (at < 0) return fail(`${quote(text)} has no port`, GOOD);
  let host = text.slice(0, at);
  const portText = text.slice(at + 1);
  if (host.startsWith("[") && host.endsWith("]")) {
    host = host.slice(1, -1);
    if (isIP(host) !== 6) return fail(`${quote(text)}: ${quote(host)} is not an IPv6 address`, GOOD);
  } else if (host.includes(":")) {
    return fail(`${quote(text)}: an IPv6 address goes in brackets`, GOOD);
  } else if (host === "") {
    return fail(`${quote(text)} has no host`, GOOD);
  } else if (isIP(host) === 0 && !HOST_NAME.test(host)) {
    return fail(`${quote(text)}: ${quote(host)} is not an IP address or a host name`, GOOD);
  }
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!(port >= 1 && port <= 65535)) return fail(`${quote(text)}: the port must be a number from 1 to 65535`, GOOD);
  return ok({ host, port });
}
