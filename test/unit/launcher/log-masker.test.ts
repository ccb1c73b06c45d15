import { describe, expect, test } from "bun:test";
import { LogMasker, MASK, maskingStream } from "../../../src/launcher/log-masker.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * The non-streaming reference: every occurrence of every secret at every start position,
 * overlapping occurrences merged into one group, each group replaced by one mask.
 */
function reference(input: Uint8Array, secrets: string[]): Uint8Array {
  const needles = secrets.filter((s) => s.length > 0).map((s) => enc.encode(s));
  const spans: Array<[number, number]> = [];
  for (const needle of needles) {
    for (let i = 0; i + needle.length <= input.length; i++) {
      let match = true;
      for (let j = 0; j < needle.length; j++) {
        if (input[i + j] !== needle[j]) {
          match = false;
          break;
        }
      }
      if (match) spans.push([i, i + needle.length]);
    }
  }
  spans.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const out: number[] = [];
  let pos = 0;
  let groupEnd = 0;
  for (const [start, end] of spans) {
    if (start < groupEnd) {
      groupEnd = Math.max(groupEnd, end);
      continue;
    }
    for (let i = Math.max(pos, groupEnd); i < start; i++) out.push(input[i]!);
    out.push(...enc.encode(MASK));
    groupEnd = end;
    pos = end;
  }
  for (let i = Math.max(pos, groupEnd); i < input.length; i++) out.push(input[i]!);
  return new Uint8Array(out);
}

/** Feeds `input` cut at `cuts` (sorted offsets) through a fresh masker. */
function streamed(input: Uint8Array, secrets: string[], cuts: number[]): Uint8Array {
  const masker = new LogMasker(secrets);
  const parts: Uint8Array[] = [];
  let prev = 0;
  for (const cut of [...cuts, input.length]) {
    parts.push(Uint8Array.from(masker.write(input.subarray(prev, cut))));
    prev = cut;
  }
  parts.push(Uint8Array.from(masker.end()));
  return Buffer.concat(parts);
}

function maskAll(text: string, secrets: string[], cuts: number[] = []): string {
  return dec.decode(streamed(enc.encode(text), secrets, cuts));
}

describe("LogMasker", () => {
  test("replaces a whole secret", () => {
    expect(maskAll("token=hunter2 ok", ["hunter2"])).toBe("token=***** ok");
  });

  test("replaces every occurrence, adjacent ones each", () => {
    expect(maskAll("abc-abc abcabc", ["abc"])).toBe("*****-***** **********");
  });

  test("ignores empty secrets and passes data through without secrets", () => {
    expect(maskAll("hello", [""])).toBe("hello");
    expect(maskAll("hello", [])).toBe("hello");
  });

  test("a secret split at every possible position across two reads", () => {
    const text = "before s3cr3t-Value after";
    for (let cut = 0; cut <= text.length; cut++) {
      expect(maskAll(text, ["s3cr3t-Value"], [cut])).toBe("before ***** after");
    }
  });

  test("a secret split across many one-byte reads", () => {
    const text = "xx s3cr3t yy s3cr3t";
    const cuts = Array.from({ length: text.length }, (_, i) => i);
    expect(maskAll(text, ["s3cr3t"], cuts)).toBe("xx ***** yy *****");
  });

  test("a multi-line secret, also split inside its line break", () => {
    const key = "-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34\n-----END KEY-----";
    const text = `line 1\n${key}\nline 3\n`;
    for (let cut = 0; cut <= text.length; cut++) {
      expect(maskAll(text, [key], [cut])).toBe("line 1\n*****\nline 3\n");
    }
  });

  test("overlapping secrets leave no byte of either", () => {
    expect(maskAll("xabcdey", ["abc", "cde"])).toBe("x*****y");
    expect(maskAll("aaaa", ["aa"])).toBe("*****");
    expect(maskAll("pass password", ["password", "pass"])).toBe("***** *****");
  });

  test("a group that straddles the held-back tail keeps growing across reads", () => {
    // "abcd" is complete before "cdXY" can be seen; both must end up in one mask.
    const text = "..abcdXY..";
    for (let cut = 0; cut <= text.length; cut++) {
      expect(maskAll(text, ["abcd", "cdXY"], [cut])).toBe("..*****..");
    }
  });

  test("multibyte secrets, split inside a character", () => {
    const text = "pw=pässwörd🔑 ok";
    const bytes = enc.encode(text);
    for (let cut = 0; cut <= bytes.length; cut++) {
      expect(dec.decode(streamed(bytes, ["pässwörd🔑"], [cut]))).toBe("pw=***** ok");
    }
  });

  test("holds back only longest secret - 1 bytes", () => {
    const masker = new LogMasker(["12345", "xy"]);
    expect(masker.write(enc.encode("abcdefgh")).length).toBe(4);
    expect(masker.write(enc.encode("i")).length).toBe(1);
    expect(dec.decode(masker.end())).toBe("fghi");
    const single = new LogMasker(["z"]);
    expect(dec.decode(single.write(enc.encode("zaz")))).toBe("*****a*****");
  });

  test("equals the non-streaming reference on random inputs and random splits", () => {
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const alphabet = ["a", "b", "c", "\n", "é", "€"];
    const word = (max: number): string => Array.from({ length: 1 + rand(max) }, () => alphabet[rand(alphabet.length)]).join("");
    for (let round = 0; round < 1500; round++) {
      const secrets = Array.from({ length: 1 + rand(4) }, () => word(5));
      const input = enc.encode(Array.from({ length: rand(60) }, () => (rand(4) === 0 ? secrets[rand(secrets.length)] : word(3))).join(""));
      const cuts = Array.from({ length: rand(24) }, () => rand(input.length + 1)).sort((a, b) => a - b);
      const expected = reference(input, secrets);
      const actual = streamed(input, secrets, cuts);
      if (Buffer.compare(Buffer.from(actual), Buffer.from(expected)) !== 0) {
        throw new Error(`mismatch for secrets=${JSON.stringify(secrets)} input=${JSON.stringify(dec.decode(input))} cuts=${cuts.join(",")}`);
      }
    }
  });

  test("a caller reusing its read buffer does not corrupt the held-back tail", () => {
    const masker = new LogMasker(["secret"]);
    const buffer = new Uint8Array(6);
    const out: Uint8Array[] = [];
    for (const piece of ["xxxsec", "retyyy"]) {
      buffer.set(enc.encode(piece));
      out.push(Uint8Array.from(masker.write(buffer)));
    }
    out.push(Uint8Array.from(masker.end()));
    expect(dec.decode(Buffer.concat(out))).toBe("xxx*****yyy");
  });

  test("as a TransformStream", async () => {
    const source = new ReadableStream<Uint8Array>({
      start(controller) {
        for (const piece of ["key: top", "-secr", "et\n", "done"]) controller.enqueue(enc.encode(piece));
        controller.close();
      },
    });
    const text = await new Response(source.pipeThrough(maskingStream(["top-secret"]))).text();
    expect(text).toBe("key: *****\ndone");
  });
});
