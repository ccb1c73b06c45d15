/**
 * The CLI's HTTP client. Where to connect and with which token comes from flags (the token from
 * --token-file: a token on the command line is visible to every user of the machine), then the
 * environment (MOTHERSHIP_URL, MOTHERSHIP_TOKEN, MOTHERSHIP_CA), then the local data dir, where
 * `serve` leaves its admin token, CA and the URL it listens on. The API speaks HTTPS with a
 * certificate from the mothership's own CA, so the CLI must be given that CA: --ca, MOTHERSHIP_CA,
 * --data DIR, or else the default data dir's ca/ca.crt when it exists.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { errorMessage, SpaceliftError } from "../../errors.ts";
import { adminTokenPath } from "../admin-token.ts";
import { readSecretFile } from "./secret-input.ts";

export interface ClientSettings {
  url?: string;
  token?: string;
  /** A file holding the admin token (trailing newline trimmed); used when `token` is not given. */
  tokenFile?: string;
  ca?: string;
  dataDir?: string;
}

export interface ApiClient {
  request<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
}

export const ENDPOINT_FILE = "endpoint.json";
/** Where `serve` keeps everything when no --data is given, relative to its working directory. */
export const DEFAULT_DATA_DIR = "./mothership-data";

/** Written as given (not normalized), so messages show `./mothership-data/...` as the operator would type it. */
export const caPathOf = (dataDir: string): string => `${dataDir.replace(/\/+$/, "")}/ca/ca.crt`;

/** OpenSSL's verification failures, as Bun's fetch reports them in `code`: the server's certificate is not trusted. */
const UNTRUSTED_CERTIFICATE = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_SIGNATURE_FAILURE",
  "CERT_UNTRUSTED",
]);

async function readIf(path: string): Promise<string | undefined> {
  return (await Bun.file(path).exists()) ? (await readFile(path, "utf8")).trim() : undefined;
}

/** The CA to trust and where it came from (for error messages). */
async function trustAnchor(s: ClientSettings, fromData: boolean, dataDir: string): Promise<{ pem?: string; source: string }> {
  if (s.ca) {
    try {
      return { pem: await readFile(s.ca, "utf8"), source: s.ca };
    } catch (err) {
      throw new SpaceliftError("usage", `cannot read the CA file ${s.ca} (--ca or MOTHERSHIP_CA): ${errorMessage(err)}`, { cause: err });
    }
  }
  // With --data, or when nothing else was given, the data dir; otherwise the default one if it is here.
  const path = caPathOf(fromData ? dataDir : DEFAULT_DATA_DIR);
  return { pem: await readIf(path), source: path };
}

function untrusted(base: string, err: unknown, ca: { pem?: string; source: string }): SpaceliftError {
  const tried = ca.pem ? `it is not signed by the CA in ${ca.source}` : `no CA was given and ${ca.source} does not exist`;
  return new SpaceliftError(
    "api-certificate-untrusted",
    `cannot verify the TLS certificate of the mothership at ${base} (${errorMessage(err)}): ${tried}. ` +
      "Give the mothership's CA certificate (DATA_DIR/ca/ca.crt; `mothership serve` prints its path at start) " +
      "with --ca FILE or MOTHERSHIP_CA=FILE, or pass --data DIR of a local mothership",
    { cause: err },
  );
}

export async function connect(s: ClientSettings): Promise<ApiClient> {
  const dataDir = s.dataDir ?? DEFAULT_DATA_DIR;
  const given = s.token ?? (s.tokenFile !== undefined ? await readSecretFile(s.tokenFile, "--token-file") : undefined);
  const fromData = s.dataDir !== undefined || given === undefined;
  const token = given ?? (fromData ? await readIf(adminTokenPath(dataDir)) : undefined);
  if (!token) {
    throw new SpaceliftError(
      "usage",
      `no admin token: give --token-file PATH, set MOTHERSHIP_TOKEN, or --data DIR of a local mothership (${adminTokenPath(dataDir)} does not exist)`,
    );
  }
  let url = s.url;
  if (!url && fromData) {
    const endpoint = await readIf(join(dataDir, ENDPOINT_FILE));
    if (endpoint) url = (JSON.parse(endpoint) as { http_url?: string }).http_url;
  }
  url ??= "https://127.0.0.1:8080";
  const ca = await trustAnchor(s, fromData, dataDir);
  const caPem = ca.pem;
  const base = url.replace(/\/+$/, "");
  return {
    async request<T>(method: string, path: string, body?: unknown): Promise<T> {
      let res: Response;
      try {
        res = await fetch(`${base}/api/v1${path}`, {
          method,
          headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
          ...(caPem ? { tls: { ca: caPem } } : {}),
        });
      } catch (err) {
        const code = (err as { code?: unknown } | null)?.code;
        if (typeof code === "string" && UNTRUSTED_CERTIFICATE.has(code)) throw untrusted(base, err, ca);
        throw new SpaceliftError("api-unreachable", `cannot reach the mothership at ${base}: ${errorMessage(err)}`, { cause: err });
      }
      const text = await res.text();
      let data: unknown = null;
      try {
        data = text ? JSON.parse(text) : null;
      } catch {
        throw new SpaceliftError("api-error", `mothership answered ${res.status} with a non-JSON body`);
      }
      if (!res.ok) {
        const e = (data as { error?: { code?: string; message?: string } } | null)?.error;
        throw new SpaceliftError(e?.code ?? "api-error", e?.message ?? `mothership answered ${res.status}`);
      }
      return data as T;
    },
  };
}
