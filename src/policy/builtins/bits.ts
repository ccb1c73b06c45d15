/** bits.* on exact integers (bigint), with OPA's operand checks. */
import { BuiltinError } from "../errors.ts";
import { fromBigInt } from "../number.ts";
import { int, register } from "./registry.ts";

register("bits.and", 2, (a) => fromBigInt(int("bits.and", a, 0) & int("bits.and", a, 1)));
register("bits.or", 2, (a) => fromBigInt(int("bits.or", a, 0) | int("bits.or", a, 1)));
register("bits.xor", 2, (a) => fromBigInt(int("bits.xor", a, 0) ^ int("bits.xor", a, 1)));
register("bits.negate", 1, (a) => fromBigInt(~int("bits.negate", a, 0)));
function shift(name: string, left: boolean): void {
  register(name, 2, (a) => {
    const x = int(name, a, 0);
    const n = int(name, a, 1);
    if (n < 0n) throw new BuiltinError("eval_type_error", `${name}: operand 2 must be an unsigned integer number but got a negative integer`);
    return fromBigInt(left ? x << n : x >> n);
  });
}
shift("bits.lsh", true);
shift("bits.rsh", false);
