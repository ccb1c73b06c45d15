/**
 * A launcher whose pool certificate the mothership refuses — the pool was reset (its serial revoked)
 * or deleted — can never connect again with this token. Retrying forever would hide that from
 * whatever supervises the launcher, so after MAX_REFUSALS refusals with no successful connection
 * in between the transport gives up and the launcher exits with EXIT_CREDENTIALS_REFUSED; systemd,
 * an autoscaling group or Kubernetes then replaces it with one that has the new token.
 *
 * Only a refusal of the credentials counts: the broker's CONNACK "not authorized" (or "bad user name
 * or password"), a TLS alert that refuses the client certificate, a long-poll 401
 * `poll-signature-invalid`. A network that is down, a mothership that restarts or a proxy that
 * answers 502 is transient and never counts.
 */

/** Refusals in a row (no successful connection between them) before the launcher gives up (./session-state.ts counts them). */
export const MAX_REFUSALS = 5;

/** The launcher's exit code when it gave up for that reason (sysexits EX_NOPERM). */
export const EXIT_CREDENTIALS_REFUSED = 77;

export interface RefusalInfo {
  /** What the peer said, e.g. "CONNACK not authorized" or "HTTP 401 poll-signature-invalid". */
  readonly reason: string;
  readonly attempts: number;
}

const TLS_REFUSALS = ["certificate revoked", "bad certificate", "certificate unknown", "unknown ca", "certificate_revoked", "bad_certificate", "certificate_unknown", "unknown_ca"];

/**
 * The refusal an MQTT connection error means, if it is one: CONNACK 4/5 (mqtt.js puts the return code
 * in `code`) or a TLS alert from the broker about our certificate. Our own refusal of the broker's
 * certificate (an unknown issuer) is not the pool's credentials and does not count.
 */
export function mqttRefusal(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 5) return "CONNACK not authorized";
  if (code === 4) return "CONNACK bad user name or password";
  const text = `${typeof code === "string" ? code : ""} ${err instanceof Error ? err.message : String(err)}`.toLowerCase();
  if (!text.includes("alert")) return undefined;
  const alert = TLS_REFUSALS.find((name) => text.includes(name) || text.includes(name.replace(/ /g, "_")));
  return alert === undefined ? undefined : `TLS alert ${alert.replace(/_/g, " ")}`;
}

/** A long-poll answer that refuses the pool's signature for good (a reset or deleted pool). */
export function pollRefusal(status: number, code: string): string | undefined {
  return status === 401 && code === "poll-signature-invalid" ? `HTTP 401 ${code}` : undefined;
}
