/**
 * The messages of the launcher <-> mothership conversation (src/protocol/README.md), one valibot schema per type.
 * Every message is a JSON object `{ v, type, id, ts, ...body }`. Field names are snake_case on the
 * wire. Unknown fields are dropped (a newer peer may send more); an unknown `type` is reported as
 * "ignored" so that old peers keep working when new types appear. Parsing never throws.
 */
import * as v from "valibot";
import { REJECT_REASONS, RUN_REASONS, WORKER_STATUSES } from "./states.ts";

/** The wire version this code speaks. A message with another `v` is refused, not guessed at. */
const PROTOCOL_VERSION = 1;

const Id = v.pipe(v.string(), v.minLength(1), v.maxLength(128));
/**
 * The highest log seq a run may have. 2^31 chunks is far beyond any real run (the mothership caps a
 * run's log in bytes long before), and a bound keeps a seq like 1e300 (an "integer" to JavaScript)
 * out of the store.
 */
export const MAX_SEQ = 2 ** 31;
const Seq = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(MAX_SEQ));
const Base64 = v.pipe(v.string(), v.regex(/^[A-Za-z0-9+/]*={0,2}$/, "not base64"));

/**
 * Whether the launcher's Docker Engine answers (`/_ping`), as it last probed it. Optional in hello and
 * heartbeat: a launcher that does not send it is taken as healthy, so older launchers keep working.
 * A worker whose Docker does not answer gets no runs until it reports `ok` again.
 */
const DockerHealth = v.object({
  ok: v.boolean(),
  /** Why not, in one line, e.g. "cannot reach Docker at unix:///var/run/docker.sock (ENOENT)"; "" when ok. */
  message: v.pipe(v.string(), v.maxLength(1024)),
});

const header = {
  v: v.literal(PROTOCOL_VERSION),
  id: Id,
  /** ISO-8601 time the sender made the message. */
  ts: v.pipe(v.string(), v.isoTimestamp()),
};

// ---- launcher -> mothership (published on <ns>/writeonly/<pool>/<worker>) ----

/** First message after every (re)connect: who this worker is and what it is doing. */
const Hello = v.object({
  ...header,
  type: v.literal("hello"),
  metadata: v.record(v.string(), v.string()),
  version: v.string(),
  arch: v.string(),
  state: v.picklist(WORKER_STATUSES),
  /** The run the launcher is executing right now, if any (lets the mothership reconcile after a restart). */
  run: v.nullable(Id),
  docker: v.optional(DockerHealth),
});

const Heartbeat = v.object({
  ...header,
  type: v.literal("heartbeat"),
  state: v.picklist(WORKER_STATUSES),
  run: v.nullable(Id),
  /** Also sent at once, between intervals, when the launcher's Docker health changes. */
  docker: v.optional(DockerHealth),
});

const RunAccepted = v.object({ ...header, type: v.literal("run_accepted"), run: Id });

const RunRejected = v.object({
  ...header,
  type: v.literal("run_rejected"),
  run: Id,
  reason: v.picklist(REJECT_REASONS),
  /** Human-readable details, e.g. the deny messages of the run-initialization policy. */
  messages: v.array(v.string()),
});

/** The run entered a phase: "preparing" (pull, workspace) or one of the stack's phase names. */
const Phase = v.object({ ...header, type: v.literal("phase"), run: Id, phase: v.pipe(v.string(), v.minLength(1)) });

/** One chunk of run output. `seq` counts from 0 per run, without gaps; `data` is base64. */
const Log = v.object({ ...header, type: v.literal("log"), run: Id, seq: Seq, data: Base64 });

const RunFinished = v.object({
  ...header,
  type: v.literal("run_finished"),
  run: Id,
  exit_code: v.nullable(v.pipe(v.number(), v.integer())),
  reason: v.picklist(RUN_REASONS),
  /** Seq of the last log chunk of the run, -1 when it printed nothing; lets the mothership wait for stragglers. */
  last_seq: v.pipe(v.number(), v.integer(), v.minValue(-1), v.maxValue(MAX_SEQ)),
  /** Why a run failed, as the run's log also says: kept with the run, so it is known even when the log could not be written. */
  messages: v.optional(v.pipe(v.array(v.pipe(v.string(), v.maxLength(1024))), v.maxLength(16))),
});

/** The worker leaves. Also the Last Will, with crashed=true, published by the broker for a lost launcher. */
const Gone = v.object({ ...header, type: v.literal("gone"), crashed: v.boolean() });

// ---- mothership -> launcher (published on <ns>/readonly/<pool>/<worker>) ----

const Registered = v.object({
  ...header,
  type: v.literal("registered"),
  worker: Id,
  pool: Id,
  /** DRAINED when an operator drained this worker before (drain survives reconnects). */
  status: v.picklist(WORKER_STATUSES),
  heartbeat_seconds: v.pipe(v.number(), v.integer(), v.minValue(1)),
});

/** A run for this worker; `jwe` is the run spec encrypted to the pool certificate (envelope.ts). */
const Schedule = v.object({ ...header, type: v.literal("schedule"), run: Id, jwe: v.pipe(v.string(), v.minLength(1)) });

const Cancel = v.object({ ...header, type: v.literal("cancel"), run: Id });
const Drain = v.object({ ...header, type: v.literal("drain") });
const Undrain = v.object({ ...header, type: v.literal("undrain") });
/** Exit as soon as idle (pool cycle: the supervisor, e.g. an ASG, brings a fresh launcher). */
const Cycle = v.object({ ...header, type: v.literal("cycle") });

/** Every chunk of `run` with a seq <= `seq` is stored; the launcher may drop them from its spool. */
const LogAck = v.object({ ...header, type: v.literal("log_ack"), run: Id, seq: v.pipe(v.number(), v.integer(), v.minValue(-1), v.maxValue(MAX_SEQ)) });

/** The answer to a message the mothership could not accept. */
const ErrorReply = v.object({
  ...header,
  type: v.literal("error"),
  in_reply_to: v.nullable(v.string()),
  code: v.string(),
  message: v.string(),
});

const UplinkSchema = v.variant("type", [Hello, Heartbeat, RunAccepted, RunRejected, Phase, Log, RunFinished, Gone]);
const DownlinkSchema = v.variant("type", [Registered, Schedule, Cancel, Drain, Undrain, Cycle, LogAck, ErrorReply]);

/** launcher -> mothership */
export type UplinkMessage = v.InferOutput<typeof UplinkSchema>;
/** mothership -> launcher */
export type DownlinkMessage = v.InferOutput<typeof DownlinkSchema>;
export type Message = UplinkMessage | DownlinkMessage;
export type MessageType = Message["type"];
export type DockerHealthReport = v.InferOutput<typeof DockerHealth>;
export type MessageOf<T extends MessageType> = Extract<Message, { type: T }>;

/** @testSeam */
export const UPLINK_TYPES = UplinkSchema.options.map((o) => o.entries.type.literal);
/** @testSeam */
export const DOWNLINK_TYPES = DownlinkSchema.options.map((o) => o.entries.type.literal);

/** Body of a message: everything except the header, which `makeMessage` fills in. */
export type MessageBody<T extends MessageType> = Omit<MessageOf<T>, "v" | "id" | "ts" | "type">;

export function makeMessage<T extends MessageType>(type: T, body: MessageBody<T>, now: Date = new Date()): MessageOf<T> {
  return { v: PROTOCOL_VERSION, type, id: crypto.randomUUID(), ts: now.toISOString(), ...body } as MessageOf<T>;
}

export function encodeMessage(message: Message): string {
  return JSON.stringify(message);
}

/** What decoding one message gave: the message, a type to ignore, or why it is invalid. */
export type DecodedMessage<M> =
  | { kind: "ok"; message: M }
  /** A type this side does not know (newer peer): drop it quietly. */
  | { kind: "ignored"; type: string; id: string | null }
  /** Not JSON, wrong version, or a known type with a bad body: log it, answer with an error where useful. */
  | { kind: "invalid"; error: string; type: string | null; id: string | null };

export type Side = "uplink" | "downlink";

/**
 * Parses one raw payload in the given direction. Known types of the other direction count as
 * invalid (a launcher never sends `schedule`), types nobody knows are ignored.
 */
export function parseMessage(raw: string | Uint8Array, side: "uplink"): DecodedMessage<UplinkMessage>;
export function parseMessage(raw: string | Uint8Array, side: "downlink"): DecodedMessage<DownlinkMessage>;
export function parseMessage(raw: string | Uint8Array, side: Side): DecodedMessage<Message> {
  let data: unknown;
  try {
    data = JSON.parse(typeof raw === "string" ? raw : new TextDecoder().decode(raw));
  } catch {
    return { kind: "invalid", error: "payload is not JSON", type: null, id: null };
  }
  return decode(data, side);
}

/** The same checks on a value already decoded from JSON (a long-poll batch carries messages as values). */
export function decodeMessage(data: unknown, side: "uplink"): DecodedMessage<UplinkMessage>;
export function decodeMessage(data: unknown, side: "downlink"): DecodedMessage<DownlinkMessage>;
export function decodeMessage(data: unknown, side: Side): DecodedMessage<Message> {
  return decode(data, side);
}

function decode(data: unknown, side: Side): DecodedMessage<Message> {
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    return { kind: "invalid", error: "payload is not a JSON object", type: null, id: null };
  }
  const rec = data as Record<string, unknown>;
  // What a peer sent travels on into logs and error replies: bounded, whatever it was.
  const type = typeof rec.type === "string" ? clip(rec.type, MAX_ECHO_ID) : null;
  const id = typeof rec.id === "string" && rec.id.length <= MAX_ECHO_ID ? rec.id : null;
  if (rec.v !== PROTOCOL_VERSION) {
    return { kind: "invalid", error: clip(`unsupported protocol version ${JSON.stringify(rec.v) ?? typeof rec.v}`, MAX_ECHO_ERROR), type, id };
  }
  if (type === null) return { kind: "invalid", error: "message has no type", type, id };
  const mine: readonly string[] = side === "uplink" ? UPLINK_TYPES : DOWNLINK_TYPES;
  const theirs: readonly string[] = side === "uplink" ? DOWNLINK_TYPES : UPLINK_TYPES;
  if (!mine.includes(type)) {
    if (theirs.includes(type)) return { kind: "invalid", error: `${type} is not sent in this direction`, type, id };
    return { kind: "ignored", type, id };
  }
  const result = v.safeParse(side === "uplink" ? UplinkSchema : DownlinkSchema, data);
  if (result.success) return { kind: "ok", message: result.output };
  const issue = result.issues[0];
  const path = issue.path?.map((p) => String(p.key)).join(".") ?? "";
  return { kind: "invalid", error: clip(`${type}: ${path ? path + ": " : ""}${issue.message}`, MAX_ECHO_ERROR), type, id };
}

/** The longest type or id a decoding result repeats (ids are UUIDs), and the longest reason. */
const MAX_ECHO_ID = 128;
const MAX_ECHO_ERROR = 300;

function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
