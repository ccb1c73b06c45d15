// The log masker on bytes: whole, split and overlapping secrets, multibyte secrets cut inside a
// character, the held-back tail and its early release, and a seeded fuzz against a naive reference.
import { describe, expect, test } from "bun:test";
import { LogMasker, MASK, maskingStream } from "../../../src/launcher/log-masker.ts";
import { rng } from "../../support/random.ts";

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

/**
 * Feeds `input` cut at `cuts` (sorted offsets) through a fresh masker; checks after every read that
 * the output so far holds no secret and that the masker keeps no more than it says.
 */
function streamed(input: Uint8Array, secrets: string[], cuts: number[]): Uint8Array {
  const masker = new LogMasker(secrets);
  const parts: Uint8Array[] = [];
  let prev = 0;
  for (const cut of [...cuts, input.length]) {
    // Copied: the masker may return views of the read, and the reader reuses nothing here, but be strict.
    parts.push(...masker.write(input.subarray(prev, cut)).map((p) => Uint8Array.from(p)));
    prev = cut;
    expect(masker.heldBack()).toBeLessThanOrEqual(masker.maxHeldBack);
  }
  parts.push(...masker.end());
  expect(masker.heldBack()).toBe(0);
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

  test("holds back at most longest secret - 1 bytes, and only while they may begin a secret", () => {
    const masker = new LogMasker(["12345", "xy"]);
    const text = (parts: Uint8Array[]) => dec.decode(Buffer.concat(parts));
    expect(masker.maxHeldBack).toBe(4);
    expect(text(masker.write(enc.encode("abcdefgh")))).toBe("abcdefgh");
    expect(text(masker.write(enc.encode("abc1234")))).toBe("abc");
    expect(masker.heldBack()).toBe(4);
    // "234x" still may be followed by "y".
    expect(text(masker.write(enc.encode("x")))).toBe("1");
    expect(text(masker.write(enc.encode("z")))).toBe("234xz");
    expect(masker.heldBack()).toBe(0);
    expect(text(masker.end())).toBe("");
    const single = new LogMasker(["z"]);
    expect(text(single.write(enc.encode("zaz")))).toBe("*****a*****");
  });

  test("lengths are bytes: a one-character multibyte secret cut after its first byte is held and masked", () => {
    for (const secret of ["€", "é", "😀"]) {
      const bytes = enc.encode(`a${secret}b`);
      const masker = new LogMasker([secret]);
      expect(masker.maxHeldBack).toBe(enc.encode(secret).length - 1);
      const first = Buffer.concat(masker.write(bytes.subarray(0, 2)));
      // The secret's first byte stays back whatever else does.
      expect(first.includes(bytes[1]!)).toBe(false);
      expect(masker.heldBack()).toBeGreaterThanOrEqual(1);
      const rest = Buffer.concat([...masker.write(bytes.subarray(2)), ...masker.end()]);
      expect(dec.decode(Buffer.concat([first, rest]))).toBe("a*****b");
    }
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

  test("fuzz (seeded): multibyte, emoji and overlapping secrets, cut at random byte positions - streaming equals one-shot, no secret leaves", () => {
    const random = rng(20240611);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    const int = (n: number): number => Math.floor(random() * n);
    // Characters that share leading bytes with each other ("€" and "₤", the two emoji), so a read cut
    // inside one leaves bytes that could begin another. No "*": the mask itself must not look like a secret.
    const chars = ["a", "b", "\n", "é", "è", "€", "₤", "中", "😀", "😁", "🔑"];
    const word = (max: number): string => Array.from({ length: 1 + int(max) }, () => pick(chars)).join("");
    const cases = 4000;
    for (let round = 0; round < cases; round++) {
      const secrets: string[] = [];
      for (let i = 1 + int(4); i > 0; i--) {
        const kind = int(5);
        const other = secrets.length > 0 ? Array.from(pick(secrets)) : null;
        if (kind === 0) secrets.push(pick(["€", "é", "中", "₤"]));
        else if (kind === 1) secrets.push(pick(["😀", "🔑", "😀😁"]));
        else if (kind === 2 && other) secrets.push(other.slice(int(other.length)).join("") + word(3)); // overlaps the other's end
        else if (kind === 3 && other) secrets.push(other.slice(0, 1 + int(other.length)).join("")); // a prefix of the other
        else secrets.push(word(6));
      }
      const encoded = secrets.map((x) => enc.encode(x));
      const pieces: Uint8Array[] = [];
      for (let i = int(40); i > 0; i--) {
        const r = int(6);
        if (r === 0) pieces.push(pick(encoded));
        else if (r === 1) {
          const sec = pick(encoded); // a secret's first bytes only, often ending inside a character
          pieces.push(sec.subarray(0, int(sec.length)));
        } else pieces.push(enc.encode(word(3)));
      }
      const input = Buffer.concat(pieces);
      const everyByte = int(20) === 0;
      const cuts = everyByte
        ? Array.from({ length: input.length }, (_, i) => i)
        : Array.from({ length: int(16) }, () => int(input.length + 1)).sort((x, y) => x - y);
      const actual = Buffer.from(streamed(input, secrets, cuts));
      const oneShot = new LogMasker(secrets);
      const whole = Buffer.concat([...oneShot.write(input), ...oneShot.end()]);
      const expected = Buffer.from(reference(input, secrets));
      const where = `seed 20240611 round ${round}: secrets=${JSON.stringify(secrets)} input=${input.toString("hex")} cuts=${cuts.join(",")}`;
      if (!actual.equals(whole) || !actual.equals(expected)) throw new Error(`streaming differs from one-shot masking at ${where}`);
      for (const sec of encoded) if (actual.indexOf(sec) !== -1) throw new Error(`secret bytes in the output at ${where}`);
    }
    expect(cases).toBe(4000);
  });

  test("a caller reusing its read buffer does not corrupt the held-back tail", () => {
    const masker = new LogMasker(["secret"]);
    const buffer = new Uint8Array(6);
    const out: Uint8Array[] = [];
    for (const piece of ["xxxsec", "retyyy"]) {
      buffer.set(enc.encode(piece));
      out.push(...masker.write(buffer).map((p) => Uint8Array.from(p)));
    }
    out.push(...masker.end());
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
