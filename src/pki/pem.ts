/**
 * Small, strict helpers for the encodings operators paste into environment variables: base64 (with
 * line wraps, with or without padding, standard or URL alphabet) and PEM blocks. Strict because
 * `Buffer.from(x, "base64")` silently skips garbage, which would turn "not base64" into a confusing
 * "not JSON" or "no PEM block" later.
 */

/** Decode base64 after removing whitespace; undefined when the text is empty or not base64. */
export function decodeBase64Strict(text: string): Buffer | undefined {
  const compact = text.replace(/\s+/g, "");
  if (compact === "") return undefined;
  if (!/^(?:[A-Za-z0-9+/]+|[A-Za-z0-9_-]+)={0,2}$/.test(compact)) return undefined;
  const unpadded = compact.replace(/=+$/, "");
  if (unpadded.length % 4 === 1) return undefined;
  if (compact.includes("=") && compact.length % 4 !== 0) return undefined;
  return Buffer.from(unpadded.replace(/-/g, "+").replace(/_/g, "/"), "base64");
}

/** Standard base64 of UTF-8 text, one line. */
export function encodeBase64(text: string): string {
  return Buffer.from(text, "utf8").toString("base64");
}

/** Decode bytes as UTF-8, undefined when they are not valid UTF-8 (e.g. DER instead of PEM). */
export function utf8Strict(bytes: Uint8Array): string | undefined {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

export interface PemBlock {
  /** The label between BEGIN and END, e.g. "PRIVATE KEY". */
  readonly label: string;
  /** RFC 1421 headers (e.g. "Proc-Type: 4,ENCRYPTED" of legacy encrypted keys), lower-cased names. */
  readonly headers: ReadonlyMap<string, string>;
  /** The whole block, re-wrapped at 64 columns with "\n" line ends and a final newline. */
  readonly text: string;
}

/** Every PEM block in `text`, in order. Text outside blocks (comments, "Bag Attributes") is ignored. */
export function pemBlocks(text: string): PemBlock[] {
  const normalized = text.replace(/\r\n?/g, "\n");
  const blocks: PemBlock[] = [];
  const re = /-----BEGIN ([A-Z0-9 ]{1,40})-----\n?([\s\S]*?)-----END \1-----/g;
  for (let m = re.exec(normalized); m !== null; m = re.exec(normalized)) {
    const label = m[1] ?? "";
    const inner = m[2] ?? "";
    const headers = new Map<string, string>();
    const headerPart = /^((?:[A-Za-z-]+:[^\n]*\n)+)\n/.exec(inner);
    if (headerPart?.[1]) {
      for (const line of headerPart[1].split("\n")) {
        const colon = line.indexOf(":");
        if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
      }
    }
    // Rebuild the block with 64-column lines: pasted keys often arrive with spaces for newlines.
    const body = inner.slice(headerPart?.[0].length ?? 0).replace(/\s+/g, "");
    const lines = body.match(/.{1,64}/g) ?? [];
    const headerText = headerPart?.[0] ?? "";
    const rebuilt = `-----BEGIN ${label}-----\n${headerText}${lines.map((l) => l + "\n").join("")}-----END ${label}-----\n`;
    blocks.push({ label, headers, text: rebuilt });
  }
  return blocks;
}

/** Text an operator pasted with literal "\n" sequences (common in .env files and YAML) made multi-line. */
export function unescapeNewlines(text: string): string {
  return text.includes("\n") ? text : text.replace(/\\n/g, "\n");
}
