/**
 * The admin API's routing: a table of routes (method, path pattern like `/pools/:id/reset`, valibot
 * schemas for the body and the query, a handler), matched here, with every input checked before a
 * handler sees it and one mapping from errors to `{error: {code, message}}` and a status.
 *
 * A path no route has is a 404; a known path with another method is a 405 naming the methods it
 * takes. Bodies are bounded before they are parsed: the declared Content-Length first, then the
 * bytes actually read. Unexpected errors answer 500 `internal` with no details; those go to the log.
 */
import * as v from "valibot";
import { SpaceliftError } from "../../errors.ts";
import type { Logger } from "../../log/logger.ts";

export type Method = "GET" | "POST" | "DELETE";

/** `/runs/:id/logs` -> "id" */
type ParamNames<P extends string> = P extends `${string}:${infer N}/${infer Rest}` ? N | ParamNames<`/${Rest}`> : P extends `${string}:${infer N}` ? N : never;
type Out<S> = S extends v.GenericSchema ? v.InferOutput<S> : undefined;

export interface RouteSpec<P extends string, B extends v.GenericSchema | undefined, Q extends v.GenericSchema | undefined> {
  method: Method;
  path: P;
  body?: B;
  query?: Q;
  /** The status of a success; 200 unless given. */
  status?: number;
  /** The JSON body of the answer, or a Response of its own (a file download). */
  handle(input: { params: Record<ParamNames<P>, string>; body: Out<B>; query: Out<Q> }): unknown;
}

export interface Route {
  method: Method;
  path: string;
  body?: v.GenericSchema;
  query?: v.GenericSchema;
  status?: number;
  handle(input: { params: Record<string, string>; body: unknown; query: unknown }): unknown;
}

/** Declares one route; the handler's params, body and query are typed from the pattern and schemas. */
export function route<P extends string, B extends v.GenericSchema | undefined = undefined, Q extends v.GenericSchema | undefined = undefined>(spec: RouteSpec<P, B, Q>): Route {
  return spec as unknown as Route;
}

/** Admin request bodies are small JSON documents (a CSR, a stack); 1 MiB leaves room to spare. @testSeam */
export const MAX_BODY_BYTES = 1024 * 1024;

const STATUS: Record<string, number> = {
  "not-found": 404,
  unauthorized: 401,
  "invalid-request": 400,
  "csr-malformed": 400,
  "csr-signature-invalid": 400,
  "csr-key-unsupported": 400,
  "run-spec-invalid": 400,
  "method-not-allowed": 405,
  conflict: 409,
  "body-too-large": 413,
  "csrf-token-invalid": 403,
};

export const json = (body: unknown, status = 200, headers?: Record<string, string>): Response => Response.json(body, { status, headers });
const invalid = (message: string) => new SpaceliftError("invalid-request", message);

/** The answer to any error: its code and message when it is one we meant to give, else `internal`. */
export function errorResponse(err: unknown, log: Logger, req: Request, path: string): Response {
  const status = err instanceof SpaceliftError ? (STATUS[err.code] ?? 500) : 500;
  if (status === 500) {
    log.error("request failed", { method: req.method, path, error: err });
    return json({ error: { code: "internal", message: "internal error" } }, 500);
  }
  const e = err as SpaceliftError;
  return json({ error: { code: e.code, message: e.message } }, status, e instanceof MethodNotAllowed ? { allow: e.allow } : undefined);
}

/** A known path asked with a method it does not take; `allow` is the Allow header. */
class MethodNotAllowed extends SpaceliftError {
  constructor(
    message: string,
    readonly allow: string,
  ) {
    super("method-not-allowed", message);
  }
}

const tooLarge = (max: number) => new SpaceliftError("body-too-large", `request body is larger than ${max} bytes (${max / 1024} KiB); send less`);

/** Reads at most `max` bytes of the body, refusing a larger one before it is buffered whole. */
async function readBody(req: Request, max = MAX_BODY_BYTES): Promise<Uint8Array> {
  const declared = req.headers.get("content-length");
  if (declared !== null && Number(declared) > max) throw tooLarge(max);
  if (!req.body) return new Uint8Array();
  const parts: Uint8Array[] = [];
  let total = 0;
  const reader = req.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel().catch(() => {});
      throw tooLarge(max);
    }
    parts.push(value);
  }
  return Buffer.concat(parts);
}

function parse<S extends v.GenericSchema>(schema: S, data: unknown, where: string): v.InferOutput<S> {
  const r = v.safeParse(schema, data);
  if (r.success) return r.output;
  const issue = r.issues[0];
  const at = v.getDotPath(issue);
  throw invalid(at ? `${where}${at}: ${issue.message}` : `${where.replace(/[ .]$/, "") || "body"}: ${issue.message}`);
}

interface Compiled {
  route: Route;
  segments: string[];
}

/** Matches requests (paths below the API prefix) against the table and runs the handler. */
export function createRouter(routes: readonly Route[]): (req: Request, path: string, url: URL) => Promise<Response> {
  const table: Compiled[] = routes.map((r) => ({ route: r, segments: r.path.split("/").filter(Boolean) }));

  function match(segments: string[], pattern: string[]): Record<string, string> | null {
    if (segments.length !== pattern.length) return null;
    const params: Record<string, string> = {};
    for (let i = 0; i < pattern.length; i++) {
      const p = pattern[i]!;
      const s = segments[i]!;
      if (p.startsWith(":")) params[p.slice(1)] = s;
      else if (p !== s) return null;
    }
    return params;
  }

  return async (req, path, url) => {
    let segments: string[];
    try {
      segments = path.split("/").filter(Boolean).map(decodeURIComponent);
    } catch {
      throw invalid(`the path ${path} is not valid percent-encoding`);
    }
    const allowed: string[] = [];
    for (const c of table) {
      const params = match(segments, c.segments);
      if (!params) continue;
      if (c.route.method !== req.method) {
        allowed.push(c.route.method);
        continue;
      }
      const r = c.route;
      const query = r.query ? parse(r.query, Object.fromEntries(url.searchParams), "query parameter ") : undefined;
      let body: unknown;
      if (r.body) {
        const bytes = await readBody(req);
        let data: unknown;
        try {
          data = JSON.parse(Buffer.from(bytes).toString("utf8"));
        } catch {
          throw invalid("request body is not JSON");
        }
        body = parse(r.body, data, "");
      }
      const out = await r.handle({ params, body, query });
      // A handler that answers with bytes of its own (/downloads) returns its Response as is.
      return out instanceof Response ? out : json(out, r.status ?? 200);
    }
    if (allowed.length > 0) {
      throw new MethodNotAllowed(`${req.method} is not allowed on ${url.pathname}; it takes ${allowed.join(", ")}`, allowed.join(", "));
    }
    throw new SpaceliftError("not-found", `no route ${req.method} ${url.pathname}`);
  };
}
