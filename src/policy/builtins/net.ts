/** net.cidr_contains, net.cidr_intersects, net.cidr_is_valid (IPv4 and IPv6). */
import { builtinErr, register, str } from "./registry.ts";

interface Net {
  addr: bigint;
  bits: number;
  prefix: number;
}

function parseIp(s: string): { addr: bigint; bits: number } | undefined {
  if (/^\d+\.\d+\.\d+\.\d+$/.test(s)) {
    const parts = s.split(".").map(Number);
    if (parts.some((p) => p > 255)) return undefined;
    return { addr: parts.reduce((acc, p) => (acc << 8n) | BigInt(p), 0n), bits: 32 };
  }
  if (!s.includes(":")) return undefined;
  let v4tail: bigint | undefined;
  let text = s;
  const m = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (m) {
    const t = parseIp(m[2] as string);
    if (!t) return undefined;
    v4tail = t.addr;
    text = (m[1] as string) + "0:0";
  }
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const head = halves[0] ? (halves[0] as string).split(":") : [];
  const tail = halves.length === 2 && halves[1] ? (halves[1] as string).split(":") : [];
  const missing = 8 - head.length - tail.length;
  if ((halves.length === 1 && missing !== 0) || missing < 0) return undefined;
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill("0"), ...tail];
  let addr = 0n;
  for (const g of groups) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
    addr = (addr << 16n) | BigInt(parseInt(g, 16));
  }
  if (v4tail !== undefined) addr = (addr & ~0xffffffffn) | v4tail;
  return { addr, bits: 128 };
}

function parseCidr(name: string, s: string, allowIp: boolean): Net {
  const [ip, prefix] = s.split("/");
  const p = parseIp(ip ?? "");
  if (!p) throw builtinErr(name, `invalid CIDR address: ${s}`);
  if (prefix === undefined) {
    if (!allowIp) throw builtinErr(name, `invalid CIDR address: ${s}`);
    return { ...p, prefix: p.bits };
  }
  const n = Number(prefix);
  if (!/^\d+$/.test(prefix) || n > p.bits) throw builtinErr(name, `invalid CIDR address: ${s}`);
  return { ...p, prefix: n };
}

function mask(n: Net): bigint {
  return ((1n << BigInt(n.bits)) - 1n) ^ ((1n << BigInt(n.bits - n.prefix)) - 1n);
}

function contains(outer: Net, inner: Net): boolean {
  if (outer.bits !== inner.bits || inner.prefix < outer.prefix) return false;
  const m = mask(outer);
  return (outer.addr & m) === (inner.addr & m);
}

register("net.cidr_contains", 2, (a) => contains(parseCidr("net.cidr_contains", str("net.cidr_contains", a, 0), false), parseCidr("net.cidr_contains", str("net.cidr_contains", a, 1), true)));
register("net.cidr_intersects", 2, (a) => {
  const x = parseCidr("net.cidr_intersects", str("net.cidr_intersects", a, 0), false);
  const y = parseCidr("net.cidr_intersects", str("net.cidr_intersects", a, 1), false);
  return contains(x, y) || contains(y, x);
});
register("net.cidr_is_valid", 1, (a) => {
  try {
    parseCidr("net.cidr_is_valid", typeof a[0] === "string" ? a[0] : "", false);
    return true;
  } catch {
    return false;
  }
});
