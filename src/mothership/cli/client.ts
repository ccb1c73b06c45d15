/**
 * The CLI's HTTP client. Where to connect and with which token comes from flags, then the
 * environment (MOTHERSHIP_URL, MOTHERSHIP_TOKEN, MOTHERSHIP_CA), then the local data dir, where
 * `serve` leaves its admin token, CA and the URL it listens on.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { SpaceliftError } from "../../errors.ts";
import { adminTokenPath } from "../admin-token.ts";

export interface ClientSettings {
  url?: string;
  token?: string;
  ca?: string;
  dataDir?: string;
}

export interface ApiClient {
  request<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
}

export const ENDPOINT_FILE = "endpoint.json";

async function readIf(path: string): Promise<string | undefined> {
  return (await Bun.file(path).exists()) ? (await readFile(path, "utf8")).trim() : undefined;
}

export async function connect(s: ClientSettings): Promise<ApiClient> {
  const dataDir = s.dataDir ?? "./mothership-data";
  const fromData = s.dataDir !== undefined || s.token === undefined;
  const token = s.token ?? (fromData ? await readIf(adminTokenPath(dataDir)) : undefined);
  if (!token) {
    throw new SpaceliftError("usage", "no admin token: give --token, set MOTHERSHIP_TOKEN, or --data DIR of a local mothership");
  }
  let url = s.url;
  if (!url && fromData) {
    const endpoint = await readIf(join(dataDir, ENDPOINT_FILE));
    if (endpoint) url = (JSON.parse(endpoint) as { http_url?: string }).http_url;
  }
  url ??= "https://127.0.0.1:8080";
  const caPem = s.ca ? await readFile(s.ca, "utf8") : fromData ? await readIf(join(dataDir, "ca", "ca.crt")) : undefined;
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
        throw new SpaceliftError("api-unreachable", `cannot reach the mothership at ${base}`, { cause: err });
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
