/**
 * The `log` message, encoded once: its JSON goes straight into one buffer, the chunk's base64 written
 * into it from the chunk's bytes, so a 64 KiB chunk costs one ~88 KiB allocation on its way to the
 * broker instead of a base64 string, a JSON string and the bytes the socket is given (docs/performance.md).
 *
 * The message is still an ordinary `log` UplinkMessage to everything that does not look for the bytes:
 * its `data` (the base64 text) is read from the buffer on demand, so a generic `JSON.stringify` (the
 * long-poll transport, test harnesses) produces the same JSON. `wirePayload` gives the bytes to a
 * transport that can send bytes (MQTT).
 */
import { encodeMessage, makeMessage, type MessageOf, type UplinkMessage } from "../protocol/messages.ts";

const ENCODED = Symbol("log message bytes");

interface Encoded {
  [ENCODED]: { bytes: Buffer; dataStart: number; dataEnd: number; rawBytes: number };
}

const ALPHABET = new TextEncoder().encode("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
const PAD = 0x3d; // "="

/** A `log` message for `data` (bytes of the run's output) whose wire JSON is already built. */
export function logMessage(run: string, seq: number, data: Uint8Array, now: Date = new Date()): MessageOf<"log"> {
  const header = makeMessage("log", { run, seq, data: "" }, now);
  // Everything but `data` through JSON.stringify (small strings); the field order is makeMessage's.
  const head = JSON.stringify({ ...header, data: undefined }).slice(0, -1);
  const prefix = `${head},"data":"`;
  const prefixBytes = Buffer.byteLength(prefix, "utf8");
  const out = Buffer.allocUnsafe(prefixBytes + Math.ceil(data.length / 3) * 4 + 2);
  out.write(prefix, 0, "utf8");
  const dataEnd = base64Into(data, out, prefixBytes);
  out[dataEnd] = 0x22; // "
  out[dataEnd + 1] = 0x7d; // }
  const message = header as MessageOf<"log"> & Encoded;
  message[ENCODED] = { bytes: out, dataStart: prefixBytes, dataEnd, rawBytes: data.length };
  Object.defineProperty(message, "data", { enumerable: true, configurable: true, get: () => out.toString("latin1", prefixBytes, dataEnd) });
  return message;
}

/** What a transport publishes for `message`: the prebuilt bytes of a `logMessage`, else its JSON. */
export function wirePayload(message: UplinkMessage): Buffer | string {
  return isEncoded(message) ? message[ENCODED].bytes : encodeMessage(message);
}

/** How many bytes of run output a `log` message carries (without decoding its base64 when it is prebuilt). */
export function logDataBytes(message: MessageOf<"log">): number {
  return isEncoded(message) ? message[ENCODED].rawBytes : Buffer.byteLength(message.data, "base64");
}

function isEncoded(message: object): message is Encoded {
  return ENCODED in message;
}

/** Writes the base64 of `src` at `out[at...]` (padded); returns where it ended. No intermediate string. */
function base64Into(src: Uint8Array, out: Uint8Array, at: number): number {
  const whole = src.length - (src.length % 3);
  let o = at;
  for (let i = 0; i < whole; i += 3) {
    const v = (src[i]! << 16) | (src[i + 1]! << 8) | src[i + 2]!;
    out[o] = ALPHABET[v >>> 18]!;
    out[o + 1] = ALPHABET[(v >>> 12) & 63]!;
    out[o + 2] = ALPHABET[(v >>> 6) & 63]!;
    out[o + 3] = ALPHABET[v & 63]!;
    o += 4;
  }
  const rest = src.length - whole;
  if (rest > 0) {
    const v = (src[whole]! << 16) | (rest === 2 ? src[whole + 1]! << 8 : 0);
    out[o] = ALPHABET[v >>> 18]!;
    out[o + 1] = ALPHABET[(v >>> 12) & 63]!;
    out[o + 2] = rest === 2 ? ALPHABET[(v >>> 6) & 63]! : PAD;
    out[o + 3] = PAD;
    o += 4;
  }
  return o;
}
