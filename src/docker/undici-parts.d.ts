/**
 * Types for the two parts of undici the Docker client loads (src/docker/http.ts): the connection pool and
 * the promise API `request`, which undici's entry point mixes into every dispatcher. Their shapes are
 * undici's own, from its published types.
 */
declare module "undici/lib/dispatcher/pool.js" {
  import type { Pool } from "undici/index.js";
  const PoolClass: typeof Pool;
  export default PoolClass;
}

declare module "undici/lib/api/api-request.js" {
  import type { Dispatcher } from "undici/index.js";
  function request(this: Dispatcher, options: Dispatcher.RequestOptions): Promise<Dispatcher.ResponseData>;
  export default request;
}
