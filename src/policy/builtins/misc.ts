/** Built-ins without a better home: print, opa.runtime, http.send (disabled). */
import { RObject } from "../value.ts";
import { builtinErr, register } from "./registry.ts";

register("print", -1, () => true);
register("trace", 1, () => true);
register("opa.runtime", 0, () => new RObject());
register("http.send", 1, () => {
  throw builtinErr("http.send", "network access is disabled in this policy engine");
});
