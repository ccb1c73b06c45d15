/** semver.is_valid and semver.compare (Semantic Versioning 2.0.0 precedence). */
import { builtinErr, register, str } from "./registry.ts";

const re = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/;

function parse(name: string, s: string, pos: number): RegExpExecArray {
  const m = re.exec(s);
  if (!m) throw builtinErr(name, `operand ${pos}: string ${JSON.stringify(s)} is not a valid SemVer`);
  return m;
}
const cmp = (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0);

register("semver.is_valid", 1, (a) => typeof a[0] === "string" && re.test(a[0]));
register("semver.compare", 2, (a) => {
  const x = parse("semver.compare", str("semver.compare", a, 0), 1);
  const y = parse("semver.compare", str("semver.compare", a, 1), 2);
  for (let i = 1; i <= 3; i++) {
    const c = cmp(BigInt(x[i] as string), BigInt(y[i] as string));
    if (c !== 0) return c;
  }
  const px = x[4];
  const py = y[4];
  if (px === undefined || py === undefined) return px === py ? 0 : px === undefined ? 1 : -1;
  const ax = px.split(".");
  const ay = py.split(".");
  for (let i = 0; i < Math.min(ax.length, ay.length); i++) {
    const p = ax[i] as string;
    const q = ay[i] as string;
    const np = /^\d+$/.test(p);
    const nq = /^\d+$/.test(q);
    const c = np && nq ? cmp(BigInt(p), BigInt(q)) : np ? -1 : nq ? 1 : p < q ? -1 : p > q ? 1 : 0;
    if (c !== 0) return c;
  }
  return Math.sign(ax.length - ay.length);
});
