/**
 * Serves the web UI's static files: from the file embedded in the compiled binary when there is one,
 * else built from source once (client-build.ts). Each answer carries an ETag (a browser revalidates
 * and gets 304) and the UI's security headers: a Content-Security-Policy that allows only this
 * origin's script, style and connections, no framing, no referrer, no MIME sniffing.
 */
import { createHash } from "node:crypto";
import { ASSET_BUNDLE_PREFIX, ASSET_BUNDLE_SUFFIX, buildClientAssets, decodeAssets, type Asset } from "./client-build.ts";

export const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
};

interface Served {
  type: string;
  body: Uint8Array<ArrayBuffer>;
  etag: string;
}

async function loadAssets(): Promise<Map<string, Served>> {
  const embedded = Bun.embeddedFiles.find((f) => {
    const name = (f as Blob & { name?: string }).name ?? "";
    return name.startsWith(ASSET_BUNDLE_PREFIX) && name.endsWith(ASSET_BUNDLE_SUFFIX);
  });
  const assets: Asset[] = embedded ? decodeAssets(await embedded.text()) : await buildClientAssets();
  return new Map(
    assets.map((a) => {
      const body = new TextEncoder().encode(a.body);
      return [a.path, { type: a.type, body, etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"` }];
    }),
  );
}

export class WebAssets {
  private loading: Promise<Map<string, Served>> | null = null;

  /** The file at `path` as a Response, or null when there is none. */
  async respond(path: string, req: Request): Promise<Response | null> {
    this.loading ??= loadAssets().catch((err: unknown) => {
      this.loading = null;
      throw err;
    });
    const a = (await this.loading).get(path);
    if (!a) return null;
    const headers = { ...SECURITY_HEADERS, "content-type": a.type, "cache-control": "no-cache", etag: a.etag };
    if (req.headers.get("if-none-match") === a.etag) return new Response(null, { status: 304, headers });
    return new Response(req.method === "HEAD" ? null : a.body, { headers });
  }
}
