/**
 * The HTTP API (JSON over Bun.serve), everything under /api/v1 and behind the admin bearer token
 * except /api/v1/health, the launchers' comms endpoints (signed by pool keys instead) and the release
 * files under /downloads (downloads.ts); the web UI (../web/) at / and /ui/, whose pages may call the
 * API with their session cookie instead of the token. The
 * routes are a table (routes.ts); the handler is a plain function so tests can call it in-process.
 */
import { timingSafeEqual } from "node:crypto";
import { SpaceliftError } from "../../errors.ts";
import type { Logger } from "../../log/logger.ts";
import { isCommsRequest } from "../comms-poll.ts";
import type { ControlPlane } from "../control.ts";
import type { PoolService } from "../pool-service.ts";
import { RunLogReader } from "../run-log-reader.ts";
import { StackService } from "../stack-service.ts";
import type { Store } from "../store/index.ts";
import { downloadRoutes } from "./downloads.ts";
import { createRouter, errorResponse, json } from "./router.ts";
import { apiRoutes } from "./routes.ts";
import type { WebUi } from "../web/handler.ts";

const API_PREFIX = "/api/v1/";
const DOWNLOADS_PREFIX = "/downloads/";

export interface ApiDeps {
  store: Store;
  control: ControlPlane;
  pools: PoolService;
  adminToken: string;
  /** Drop a pool's broker connections (after reset or delete). */
  disconnectPool(pool: string): void | Promise<void>;
  /** The launcher comms endpoints (`/api/v1/comms/...`, HTTP long-poll), signed by pool keys instead of the admin token. */
  comms?: (req: Request, url: URL) => Promise<Response>;
  /** The release directory `/downloads/*` serves (no admin token); none: those answer 404 saying why. */
  downloadsDir?: string;
  /** The web UI (`/`, `/ui/`); its signed-in pages use the API with a session cookie and CSRF token. */
  web?: WebUi;
  logger: Logger;
}

function authorized(req: Request, token: string): boolean {
  const header = req.headers.get("authorization") ?? "";
  const given = Buffer.from(header.startsWith("Bearer ") ? header.slice(7) : "");
  const want = Buffer.from(token);
  return given.length === want.length && timingSafeEqual(given, want);
}

export function createApi(deps: ApiDeps): (req: Request) => Promise<Response> {
  const log = deps.logger.child({ component: "api" });
  const router = createRouter(
    apiRoutes({
      store: deps.store,
      control: deps.control,
      pools: deps.pools,
      stacks: new StackService(deps.store),
      logs: new RunLogReader(deps.store),
      disconnectPool: deps.disconnectPool,
      log,
    }),
  );

  const downloads = createRouter(downloadRoutes(deps.downloadsDir));

  return async (req) => {
    const url = new URL(req.url);
    try {
      if (url.pathname === "/api/v1/health") return json({ ok: true });
      if (deps.comms && isCommsRequest(url.pathname)) return await deps.comms(req, url);
      if (url.pathname.startsWith(DOWNLOADS_PREFIX)) return await downloads(req, url.pathname.slice(DOWNLOADS_PREFIX.length - 1), url);
      if (deps.web?.handles(url.pathname)) return await deps.web.handle(req, url);
      if (!url.pathname.startsWith(API_PREFIX)) throw new SpaceliftError("not-found", `no route ${req.method} ${url.pathname}`);
      if (!authorized(req, deps.adminToken) && !deps.web?.authorizes(req)) throw new SpaceliftError("unauthorized", "missing or wrong admin token (Authorization: Bearer ...)");
      return await router(req, url.pathname.slice(API_PREFIX.length - 1), url);
    } catch (err) {
      return errorResponse(err, log, req, url.pathname);
    }
  };
}
