/**
 * ULIDs: every id the mothership makes (pools, stacks, runs) and a launcher's worker id. Sortable by
 * creation time, safe as MQTT topic levels, and what the run spec's `id` requires. Monotonic within
 * one millisecond, so ids made in a burst still sort in creation order. No I/O, no clock at import.
 */
const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/** Crockford base32, 26 characters, the first at most 7 (a 48-bit millisecond time). */
export const ULID_PATTERN = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/;

let lastTime = -1;
let lastRandom: number[] = [];

export function ulid(now: number = Date.now()): string {
  let random: number[];
  if (now === lastTime) {
    random = [...lastRandom];
    for (let i = random.length - 1; i >= 0; i--) {
      const digit = random[i] ?? 0;
      if (digit < 31) {
        random[i] = digit + 1;
        break;
      }
      random[i] = 0;
    }
  } else {
    random = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b & 31);
  }
  lastTime = now;
  lastRandom = random;
  let time = "";
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = (ALPHABET[t % 32] ?? "0") + time;
    t = Math.floor(t / 32);
  }
  return time + random.map((d) => ALPHABET[d] ?? "0").join("");
}
