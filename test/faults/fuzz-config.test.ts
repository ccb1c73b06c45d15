// Fault suite: seeded fuzzing of what the launcher reads from its environment (test/faults/fuzz.ts) —
// pool tokens, pool keys, Go durations, mount lists, env-var lists and the metrics listen address. No
// crash, no hang; a token or key is rejected with its documented error class and a stable code, every
// other value with one-line problems that say what a good value looks like; never an echo of a secret.
import "reflect-metadata";
import { beforeAll, describe, expect, test } from "bun:test";
import { parseGoDuration, parseTimeout } from "../../src/config/duration.ts";
import { parseNameList } from "../../src/config/env-lists.ts";
import { parseListenAddress } from "../../src/config/listen-address.ts";
import { parseMounts } from "../../src/config/mounts.ts";
import type { ParseResult } from "../../src/config/parse-result.ts";
import { decodePrivateKey, PrivateKeyError } from "../../src/pki/keys.ts";
import { decodeToken, TokenError } from "../../src/pki/token.ts";
import { b64, DAY, makeCertificate, makeKey, tokenJson } from "../unit/config/pki-fixtures.ts";
import { expectClearProblems, expectClearRejection, fuzz, mutate, mutateJson, randomString, type Rand } from "./fuzz.ts";

/** Valid samples first, then mutations of them, then random text. */
function fromSamples(samples: readonly string[]): (rand: Rand, i: number) => string {
  return (rand, i) => (i < samples.length ? samples[i]! : rand() < 0.9 ? mutate(rand, samples[Math.floor(rand() * samples.length)]!, samples) : randomString(rand, Math.floor(rand() * 80)));
}

function checkParse<T>(parse: (text: string) => ParseResult<T>): (text: string) => boolean {
  return (text) => {
    const r = parse(text);
    return r.ok ? false : expectClearProblems(r.problems);
  };
}

describe("fuzz: launcher configuration values", () => {
  test("Go durations (SPACELIFT_LAUNCHER_LOGS_TIMEOUT, _RUN_TIMEOUT)", async () => {
    const samples = ["1000s", "120m", "1h30m", "1.5h", "300ms", "7m", "70m", "2h45m30.5s", "1us", "1µs", "-1h", "0", "+5s", ".5h", "1h0m0s"];
    const r = await fuzz("go-duration", fromSamples(samples), (text) => {
      const d = parseGoDuration(text);
      if (d.ok && !Number.isFinite(d.value)) throw new Error(`accepted as ${d.value} ms`);
      return checkParse(parseTimeout)(text);
    });
    expect(r.rejected).toBeGreaterThan(0);
    expect(r.rejected).toBeLessThan(r.inputs);
    // Found by this fuzzer: a unit named like an Object.prototype member crashed the parser.
    for (const unit of ["__proto__", "constructor", "toString", "hasOwnProperty"]) expect(checkParse(parseTimeout)(`1${unit}`)).toBe(true);
  });

  test("mount lists (SPACELIFT_WORKER_*EXTRA_MOUNTS)", async () => {
    const samples = ["/opt/cache:/mnt/cache:ro", "/a:/b,/c:/d:rw", "/x:/y", "/mnt//x/:/data/", "/srv/a b:/a b:ro"];
    const r = await fuzz("mounts", fromSamples(samples), checkParse(parseMounts));
    expect(r.rejected).toBeGreaterThan(0);
  });

  test("env-var name lists (SPACELIFT_MASK_ENVS, SPACELIFT_WHITELIST_ENVS)", async () => {
    const samples = ["AWS_REGION,ro_PLAN_TOKEN", "A,B,C", "wo_X", "DB_PASSWORD, API_TOKEN", "_UNDERSCORE"];
    const r = await fuzz("env-lists", fromSamples(samples), (text) => {
      const scoped = checkParse((t) => parseNameList(t, { scopes: true }))(text);
      const plain = checkParse((t) => parseNameList(t, { scopes: false }))(text);
      return scoped || plain;
    });
    expect(r.rejected).toBeGreaterThan(0);
  });

  test("listen addresses (SPACELIFT_LAUNCHER_METRICS_ADDR)", async () => {
    const samples = ["127.0.0.1:9100", "[::1]:9100", "0.0.0.0:1", "metrics.internal:65535", "localhost:9100"];
    const r = await fuzz("listen-address", fromSamples(samples), checkParse(parseListenAddress));
    expect(r.rejected).toBeGreaterThan(0);
  });
});

describe("fuzz: pool credentials", () => {
  let token = "";
  let tokenObject: Record<string, unknown> = {};
  let keys: string[] = [];

  beforeAll(async () => {
    const rsa = await makeKey("rsa");
    const ec = await makeKey("ec");
    const now = Date.now();
    const cert = await makeCertificate(rsa, new Date(now - DAY), new Date(now + 30 * DAY));
    tokenObject = tokenJson(cert, cert);
    token = b64(JSON.stringify(tokenObject));
    keys = [b64(rsa.pkcs8), b64(ec.traditional), ec.pkcs8, rsa.traditional, rsa.pkcs8.replace(/\n/g, "\\n")];
  });

  test("tokens (SPACELIFT_TOKEN): TokenError with a stable code, never a piece of the input", async () => {
    const r = await fuzz(
      "token",
      (rand, i) => {
        if (i === 0) return token;
        const roll = rand();
        if (roll < 0.4) return b64(JSON.stringify(mutateJson(rand, tokenObject)));
        if (roll < 0.5) return b64(mutate(rand, JSON.stringify(tokenObject)));
        return mutate(rand, token, [token]);
      },
      (text) => {
        try {
          decodeToken(text);
          return false;
        } catch (err) {
          expectClearRejection(err, TokenError);
          // Secrets never in error text: no 24-character run of the input's base64 comes back.
          const message = (err as Error).message;
          for (let at = 0; at + 24 <= Math.min(text.length, 2400); at += 24) {
            if (/^[A-Za-z0-9+/]{24}$/.test(text.slice(at, at + 24)) && message.includes(text.slice(at, at + 24))) throw new Error("the message echoes the token");
          }
          return true;
        }
      },
    );
    expect(r.rejected).toBeGreaterThan(r.inputs / 2);
  });

  test("pool keys (SPACELIFT_POOL_PRIVATE_KEY): PrivateKeyError with a stable code", async () => {
    const r = await fuzz("pool-key", fromSamples(keys), (text) => {
      try {
        decodePrivateKey(text);
        return false;
      } catch (err) {
        return expectClearRejection(err, PrivateKeyError);
      }
    });
    expect(r.rejected).toBeGreaterThan(r.inputs / 2);
  });
});
