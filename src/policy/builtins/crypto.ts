/** Hashes and HMACs (node:crypto): crypto.md5/sha1/sha256/sha512, crypto.hmac.*, crypto.hmac.equal. */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { register, str } from "./registry.ts";

for (const alg of ["md5", "sha1", "sha256", "sha512"]) {
  register(`crypto.${alg}`, 1, (a) => createHash(alg).update(str(`crypto.${alg}`, a, 0), "utf8").digest("hex"));
  register(`crypto.hmac.${alg}`, 2, (a) => createHmac(alg, str(`crypto.hmac.${alg}`, a, 1)).update(str(`crypto.hmac.${alg}`, a, 0)).digest("hex"));
}
register("crypto.hmac.equal", 2, (a) => {
  const x = Buffer.from(str("crypto.hmac.equal", a, 0));
  const y = Buffer.from(str("crypto.hmac.equal", a, 1));
  return x.length === y.length && timingSafeEqual(x, y);
});
