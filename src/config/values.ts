/**
 * Parsers for the single-value launcher variables: booleans, names, URLs, paths and the Docker
 * endpoint. Each returns a ParseResult whose problems say what is wrong and show a good value.
 * The file checks (`existingFile`, `dockerConfigDir`) do I/O: they run at load, never at import.
 */
import { accessSync, constants, statSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { fail, ok, quote, type ParseResult } from "./parse-result.ts";

const TRUE = ["true", "1", "yes"];
const FALSE = ["false", "0", "no"];

export function parseBoolean(text: string): ParseResult<boolean> {
  const lower = text.trim().toLowerCase();
  if (TRUE.includes(lower)) return ok(true);
  if (FALSE.includes(lower)) return ok(false);
  return fail(`${quote(text)} is not a boolean`, "use true or false (also 1/0, yes/no)");
}

export type CommsProtocol = "mqtt" | "poll";

export function parseProtocol(text: string): ParseResult<CommsProtocol> {
  const lower = text.trim().toLowerCase();
  if (lower === "mqtt" || lower === "poll") return ok(lower);
  return fail(`${quote(text)} is not a protocol`, "use mqtt (the broker in the token) or poll (HTTP long-poll)");
}

export function parseHttpUrl(text: string): ParseResult<string> {
  const good = "e.g. https://mothership.example.com:8443";
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return fail(`${quote(text)} is not a URL`, good);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return fail(`${quote(text)} is not an http(s) URL`, good);
  }
  return ok(text.replace(/\/+$/, ""));
}

/** Docker network names (and ids): what `docker network create` accepts. */
export function parseNetworkName(text: string): ParseResult<string> {
  if (/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(text)) return ok(text);
  return fail(`${quote(text)} is not a Docker network name`, "e.g. bridge, host or a network made with docker network create");
}

/** OCI runtime names as registered with dockerd (`runc`, `runsc`, `io.containerd.runc.v2`, `sysbox-runc`). */
export function parseRuntimeName(text: string): ParseResult<string> {
  if (/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(text)) return ok(text);
  return fail(`${quote(text)} is not a Docker runtime name`, "e.g. runsc or sysbox-runc (as listed by docker info)");
}

// The distribution/reference grammar, as regular expressions.
const COMPONENT = "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
const DOMAIN_PART = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const DOMAIN = `(?:${DOMAIN_PART}(?:\\.${DOMAIN_PART})*|\\[[0-9a-fA-F:]+\\])(?::[0-9]+)?`;
const IMAGE_REFERENCE = new RegExp(
  `^(?:${DOMAIN}/)?${COMPONENT}(?:/${COMPONENT})*(?::[\\w][\\w.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$`,
);

export function parseImageReference(text: string): ParseResult<string> {
  if (text.length <= 255 && IMAGE_REFERENCE.test(text)) return ok(text);
  return fail(`${quote(text)} is not a Docker image reference`, "e.g. public.ecr.aws/spacelift/runner-terraform:latest or registry.internal:5000/runner:1.2");
}

export function parseAbsolutePath(text: string, good: string): ParseResult<string> {
  if (!isAbsolute(text)) return fail(`${quote(text)} is not an absolute path`, good);
  return ok(resolve(text));
}

/** A readable regular file; relative paths are resolved against the launcher's working directory now. */
export function parseReadableFile(text: string, good: string): ParseResult<string> {
  const path = resolve(text);
  let isFile: boolean;
  try {
    isFile = statSync(path).isFile();
  } catch {
    return fail(`${quote(text)} does not exist`, good);
  }
  if (!isFile) return fail(`${quote(text)} is not a regular file`, good);
  try {
    accessSync(path, constants.R_OK);
  } catch {
    return fail(`${quote(text)} is not readable by this user`, good);
  }
  return ok(path);
}

/** A directory holding Docker's `config.json` (what `docker login` writes, e.g. /root/.docker). */
export function parseDockerConfigDir(text: string): ParseResult<string> {
  const good = "e.g. /root/.docker (the directory where docker login writes config.json)";
  const abs = parseAbsolutePath(text, good);
  if (!abs.ok) return abs;
  let isDir: boolean;
  try {
    isDir = statSync(abs.value).isDirectory();
  } catch {
    return fail(`${quote(text)} does not exist`, good);
  }
  if (!isDir) return fail(`${quote(text)} is not a directory`, good);
  const file = parseReadableFile(join(abs.value, "config.json"), good);
  if (!file.ok) return fail(`${quote(text)} has no readable config.json`, good);
  return abs;
}

export type DockerHost =
  | { readonly kind: "unix"; readonly socketPath: string; readonly url: string }
  | { readonly kind: "tcp"; readonly host: string; readonly port: number; readonly url: string };

/** DOCKER_HOST as the Docker CLI reads it, limited to what the launcher's client speaks. */
export function parseDockerHost(text: string): ParseResult<DockerHost> {
  const good = "e.g. unix:///var/run/docker.sock or tcp://127.0.0.1:2375";
  if (text.startsWith("unix://")) {
    const socketPath = text.slice("unix://".length);
    if (!isAbsolute(socketPath)) return fail(`${quote(text)}: the socket path is not absolute`, good);
    return ok({ kind: "unix", socketPath, url: text });
  }
  if (text.startsWith("tcp://")) {
    let url: URL;
    try {
      url = new URL(text.replace(/^tcp:/, "http:"));
    } catch {
      return fail(`${quote(text)} is not a tcp://host:port address`, good);
    }
    const port = Number(url.port);
    if (url.hostname === "" || url.port === "" || !Number.isInteger(port) || port < 1 || port > 65535) {
      return fail(`${quote(text)} needs a host and a port`, good);
    }
    if (url.pathname !== "/" || url.search !== "" || url.username !== "") {
      return fail(`${quote(text)} must be only tcp://host:port`, good);
    }
    const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
    return ok({ kind: "tcp", host, port, url: text });
  }
  return fail(`${quote(text)} uses an unsupported scheme (only unix:// and tcp://)`, good);
}
