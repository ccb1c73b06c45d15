/**
 * The web UI's static files: `client/index.html`, `client/app.css` and `client/main.ts` bundled for
 * the browser by Bun.build (one minified ES module, nothing fetched from elsewhere). `build/build.ts`
 * writes them into one file that is embedded in the compiled mothership (assets.ts reads it there);
 * a mothership run from source builds them on the first request instead.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";

export interface Asset {
  /** The URL path it is served at. */
  path: string;
  type: string;
  body: string;
}

/** The embedded file's name starts and ends so (Bun adds a content hash in between). */
export const ASSET_BUNDLE_PREFIX = "web-ui-assets";
export const ASSET_BUNDLE_SUFFIX = ".bundle";

const CLIENT_DIR = join(import.meta.dir, "client");

export async function buildClientAssets(): Promise<Asset[]> {
  const r = await Bun.build({ entrypoints: [join(CLIENT_DIR, "main.ts")], target: "browser", format: "esm", minify: true, sourcemap: "none" });
  const js = r.outputs[0];
  if (!r.success || !js) throw new Error(`building the web UI failed: ${r.logs.map(String).join("\n")}`);
  return [
    { path: "/", type: "text/html; charset=utf-8", body: await readFile(join(CLIENT_DIR, "index.html"), "utf8") },
    { path: "/ui/app.css", type: "text/css; charset=utf-8", body: await readFile(join(CLIENT_DIR, "app.css"), "utf8") },
    { path: "/ui/app.js", type: "text/javascript; charset=utf-8", body: await js.text() },
  ];
}

/** The one file build/build.ts embeds: the assets as JSON. */
export function encodeAssets(assets: readonly Asset[]): string {
  return JSON.stringify({ assets });
}

export function decodeAssets(text: string): Asset[] {
  return (JSON.parse(text) as { assets: Asset[] }).assets;
}
