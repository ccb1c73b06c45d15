/**
 * What `make demo` proves about its secret: the phase printed it, and the followed logs show only the
 * mask in its place. Returns the problem (a leak, or no mask where the secret was printed), or null.
 */
import { MASK } from "../../src/launcher/log-masker.ts";

export type SecretProblem = { kind: "leaked" | "unmasked"; message: string };

export function secretProblem(logs: string, secret: string, printedAfter: string): SecretProblem | null {
  if (logs.includes(secret)) return { kind: "leaked", message: "the followed logs contain the secret value" };
  if (!logs.includes(`${printedAfter}${MASK}`)) {
    return { kind: "unmasked", message: `the followed logs do not show the secret masked as ${MASK} (no "${printedAfter}${MASK}")` };
  }
  return null;
}
