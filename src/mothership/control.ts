/**
 * The control plane: what the mothership does with each launcher message and each operator action.
 * Store updates are synchronous (bun:sqlite), so every message is applied whole before the next;
 * only encryption and delivery are asynchronous, and they never hold a decision open.
 *
 * Scheduling: each pool's QUEUED runs, oldest first, go to IDLE (live, undrained, not cycling,
 * run-less) workers of that pool whose Docker answers (as their last hello or heartbeat said), the least
 * recently assigned first. An event dispatches only its own pool, and each assignment reads one queue
 * head and one worker. A run's worker is recorded in the same transaction that moves it to SCHEDULED,
 * so no run can reach two workers.
 */
import { errorMessage, SpaceliftError } from "../errors.ts";
import type { Logger } from "../log/logger.ts";
import { encryptRun } from "../protocol/envelope.ts";
import { decodeMessage, encodeMessage, makeMessage, parseMessage, type DownlinkMessage, type DecodedMessage, type UplinkMessage } from "../protocol/messages.ts";
import { isTerminalRunState, type RejectReason, type RunType } from "../protocol/states.ts";
import { transition, type RunEvent, type RunStatus } from "./run-lifecycle.ts";
import { DEFAULT_LOG_LIMITS, RunLogIntake, type LogLimits } from "./run-log-intake.ts";
import { buildRunSpec, validateTrigger } from "./run-spec-builder.ts";
import type { Outbox } from "./outbox.ts";
import { workerStatus, type Run, type RunTriggerDetails, type Store, type Worker } from "./store/index.ts";
import { ulid } from "../protocol/ulid.ts";
import { observeAssignment } from "./metrics.ts";

export interface ControlOptions {
  store: Store;
  /** Where messages to a worker go (carriers.ts: signed, then by the carrier the worker speaks through). */
  outbox: Outbox;
  logger: Logger;
  heartbeatSeconds: number;
  /** A SCHEDULED run the launcher has not accepted after this long goes back to the queue. */
  scheduleTimeoutMs: number;
  /** What a run's log may take (run-log-intake.ts); DEFAULT_LOG_LIMITS when absent. */
  logLimits?: LogLimits;
  now?: () => Date;
}

/** A worker as the control plane knows it: its pool and its id, never how it is reached. */
interface WorkerAddress {
  pool: string;
  worker: string;
}

const notFound = (what: string, id: string) => new SpaceliftError("not-found", `${what} ${id} does not exist`);

export class ControlPlane {
  private readonly store: Store;
  private readonly log: Logger;
  private readonly now: () => Date;
  /** Workers are given heartbeatSeconds x this before they are declared lost. */
  private static readonly MISSED_HEARTBEATS = 3;
  /** Silence counts from here: the start, or when a carrier that was down came back (carrierDown). */
  private graceFrom: Date;
  /** Carriers that are down now: their workers cannot be heard, so nobody is declared lost for silence. */
  private readonly carriersDown = new Set<string>();
  private readonly logs: RunLogIntake;

  constructor(private readonly opts: ControlOptions) {
    this.store = opts.store;
    this.log = opts.logger.child({ component: "control" });
    this.now = opts.now ?? (() => new Date());
    this.graceFrom = this.now();
    this.logs = new RunLogIntake(this.store, opts.logLimits ?? DEFAULT_LOG_LIMITS, opts.logger);
  }

  private iso(): string {
    return this.now().toISOString();
  }

  private send(pool: string, worker: string, message: DownlinkMessage): void {
    this.opts.outbox.deliver(pool, worker, encodeMessage(message)).catch((err: unknown) => {
      this.log.warn("delivery to launcher failed", { pool, worker, type: message.type, error: err });
    });
  }

  /** Applies a lifecycle event; false (and a debug line) when it does not apply in the run's state. */
  private apply(run: Run, event: RunEvent, extra: { phase?: string; messages?: string[]; last_seq?: number } = {}): RunStatus | null {
    const next = transition(run, event);
    if (!next) {
      this.log.debug("run event ignored in this state", { run: run.id, state: run.state, event: event.type });
      return null;
    }
    this.store.runs.applyStatus(run.id, next, this.iso(), extra);
    if (next.state !== run.state) this.log.info("run state", { run: run.id, from: run.state, to: next.state, reason: next.reason });
    return next;
  }

  // ---- launcher messages ----

  /**
   * A message from `worker` of `pool`, whichever carrier brought it; the carrier vouches for the pool
   * (a certificate of the pool, a broker ACL on the pool's subtree, a request signed with its key).
   */
  handleUplink(pool: string, worker: string, payload: Uint8Array): void {
    this.applyUplink({ pool, worker }, parseMessage(payload, "uplink"));
  }

  /** The same for a message already decoded from JSON (one of a long-poll batch). */
  handleUplinkValue(pool: string, worker: string, value: unknown): void {
    this.applyUplink({ pool, worker }, decodeMessage(value, "uplink"));
  }

  private applyUplink(addr: WorkerAddress, parsed: DecodedMessage<UplinkMessage>): void {
    if (parsed.kind === "ignored") {
      this.log.debug("unknown message type ignored", { type: parsed.type, worker: addr.worker });
      return;
    }
    if (parsed.kind === "invalid") {
      this.log.warn("invalid message from launcher", { pool: addr.pool, worker: addr.worker, error: parsed.error });
      this.send(addr.pool, addr.worker, makeMessage("error", { in_reply_to: parsed.id, code: "invalid-message", message: parsed.error }));
      return;
    }
    const m = parsed.message;
    // A worker id is not a secret: one that another pool registered is that pool's, whatever is said.
    const worker = this.store.workers.get(addr.worker);
    if (worker && worker.pool !== addr.pool) return this.refuseForeignWorker(addr, worker.pool, m);
    if (m.type === "hello") return this.onHello(addr, m);
    if (!worker || worker.gone_at !== null) {
      if (m.type === "gone") return;
      // A worker we do not know, or already declared gone (silent too long): ask it to say hello again.
      this.send(addr.pool, addr.worker, makeMessage("error", { in_reply_to: m.id, code: "unknown-worker", message: "send hello first" }));
      return;
    }
    this.store.workers.touch(worker.id, this.iso());
    switch (m.type) {
      case "heartbeat":
        if (m.docker && this.recordDockerHealth(worker, m.docker.ok, m.docker.message) && m.docker.ok) this.dispatch(worker.pool);
        return;
      case "gone":
        return this.workerGone(addr.pool, worker.id, m.crashed);
      case "run_accepted":
      case "run_rejected":
      case "phase":
      case "log":
      case "run_finished":
        return this.onRunMessage(addr, m);
    }
  }

  /** Answers the sender alone (its own pool's address) and changes nothing of the worker's own pool. */
  private refuseForeignWorker(addr: WorkerAddress, owner: string, m: UplinkMessage): void {
    this.log.warn("message for a worker of another pool refused", { pool: addr.pool, worker: addr.worker, worker_pool: owner, type: m.type });
    this.send(addr.pool, addr.worker, makeMessage("error", { in_reply_to: m.id, code: "worker-pool-mismatch", message: `worker ${addr.worker} belongs to another pool; a launcher makes a fresh worker id at each start` }));
  }

  private onHello(addr: WorkerAddress, m: Extract<UplinkMessage, { type: "hello" }>): void {
    const before = this.store.workers.get(addr.worker);
    const w = this.store.workers.register({ id: addr.worker, pool: addr.pool, metadata: m.metadata, version: m.version, arch: m.arch, now: this.iso() });
    // register() never moves a row to another pool; applyUplink refused that case already.
    if (!w) return this.refuseForeignWorker(addr, before?.pool ?? "unknown", m);
    this.log.info("worker registered", { pool: addr.pool, worker: w.id, version: m.version, arch: m.arch, reconnect: before !== null });
    // A launcher that says nothing about Docker (an older one) is taken at its word that it can run.
    this.recordDockerHealth(w, m.docker?.ok ?? true, m.docker?.message ?? "");
    // Reconcile what we believe the worker holds with what it says it holds.
    if (w.current_run && w.current_run !== m.run) {
      const run = this.store.runs.get(w.current_run);
      if (run?.state === "SCHEDULED" && m.run === null) {
        this.send(addr.pool, w.id, makeMessage("registered", { worker: w.id, pool: w.pool, status: workerStatus(w), heartbeat_seconds: this.opts.heartbeatSeconds }));
        this.publishSchedule(run);
        return;
      }
      if (run) this.apply(run, { type: "worker-lost" });
      this.store.workers.setRun(w.id, null);
    }
    const fresh = this.store.workers.get(w.id) ?? w;
    this.send(addr.pool, w.id, makeMessage("registered", { worker: w.id, pool: w.pool, status: workerStatus(fresh), heartbeat_seconds: this.opts.heartbeatSeconds }));
    if (fresh.drained) this.send(addr.pool, w.id, makeMessage("drain", {}));
    if (fresh.cycling) this.send(addr.pool, w.id, makeMessage("cycle", {}));
    this.dispatch(w.pool);
  }

  /** A worker whose Docker stops answering gets no runs until it reports it back. True when it changed. */
  private recordDockerHealth(w: Worker, ok: boolean, message: string): boolean {
    if (!this.store.workers.setDockerHealth(w.id, ok, message)) return false;
    if (ok) this.log.info("worker's Docker answers again; it takes runs", { pool: w.pool, worker: w.id });
    else this.log.warn("worker's Docker does not answer; no runs go to it", { pool: w.pool, worker: w.id, problem: message });
    return true;
  }

  private onRunMessage(addr: WorkerAddress, m: Extract<UplinkMessage, { run: string }>): void {
    const run = this.store.runs.get(m.run);
    if (!run || run.worker !== addr.worker || run.pool !== addr.pool) {
      this.log.warn("message about a run this worker does not hold", { worker: addr.worker, run: m.run, type: m.type });
      this.send(addr.pool, addr.worker, makeMessage("error", { in_reply_to: m.id, code: "unknown-run", message: `run ${m.run} is not assigned to this worker` }));
      return;
    }
    switch (m.type) {
      case "run_accepted":
        this.apply(run, { type: "accepted" });
        if (run.cancel_requested) this.send(addr.pool, addr.worker, makeMessage("cancel", { run: run.id }));
        return;
      case "run_rejected":
        if (this.reject(run, m.reason, m.messages, `worker ${addr.worker}`)) this.releaseWorker(addr.worker, run.id);
        return;
      case "phase":
        this.apply(run, { type: "phase", phase: m.phase }, { phase: m.phase });
        return;
      case "log": {
        const verdict = this.logs.receive(run, m.seq, m.data, addr.worker);
        if (verdict.kind === "stored") return this.send(addr.pool, addr.worker, makeMessage("log_ack", { run: run.id, seq: verdict.acked }));
        this.send(addr.pool, addr.worker, makeMessage("error", { in_reply_to: m.id, code: verdict.code, message: verdict.message }));
        if (verdict.kind === "over-limit") this.stopOverLogLimit(run, verdict.note);
        // A run that ended with its whole log stored will never take this chunk: acknowledge it as
        // well, so the launcher drops it from its spool instead of resending it after every reconnect.
        const now = this.store.runs.get(run.id);
        if (now && isTerminalRunState(now.state) && now.last_seq !== null && now.log_acked >= now.last_seq) {
          this.send(addr.pool, addr.worker, makeMessage("log_ack", { run: run.id, seq: Math.max(m.seq, now.log_acked) }));
        }
        return;
      }
      case "run_finished":
        // A run that already ended here (its launcher was declared lost) still learns its last seq.
        if (!this.apply(run, { type: "finished", reason: m.reason, exit_code: m.exit_code }, { last_seq: m.last_seq, messages: m.messages })) this.store.runs.recordLateLastSeq(run.id, m.last_seq);
        // Whatever we thought of the run, the worker is free of it now.
        this.releaseWorker(addr.worker, run.id);
        return;
    }
  }

  /**
   * A run over its log cap ends FAILED `log-limit-exceeded` at once, with a note in its log that
   * ends it (its `last_seq`, so followers finish), and its launcher is told to cancel it.
   */
  private stopOverLogLimit(run: Run, note: string): void {
    if (!transition(run, { type: "log-limit" })) return;
    this.store.db.transaction(() => {
      const noteSeq = this.store.runs.appendNote(run.id, note);
      this.apply(run, { type: "log-limit" }, { messages: [note], last_seq: noteSeq });
    })();
    if (run.worker) this.send(run.pool, run.worker, makeMessage("cancel", { run: run.id }));
  }

  /**
   * A rejection (by the launcher, or by us when the run cannot be encrypted). One that ends the run
   * also goes into the run's log with its messages, so `run logs` says why (system-error alone does not).
   */
  private reject(run: Run, reason: RejectReason, messages: string[], by: string): boolean {
    return this.store.db.transaction(() => {
      const next = this.apply(run, { type: "rejected", reason }, { messages });
      if (next && isTerminalRunState(next.state)) {
        const details = messages.length > 0 ? messages.map((text) => `: ${text}`) : [""];
        this.store.runs.appendNote(run.id, details.map((d) => `mothership: run rejected by ${by} (${reason})${d}`).join("\n"));
      }
      return next !== null;
    })();
  }

  private releaseWorker(workerId: string, runId: string): void {
    const w = this.store.workers.get(workerId);
    if (!w) return;
    if (w.current_run === runId) this.store.workers.setRun(workerId, null);
    this.dispatch(w.pool);
  }

  private workerGone(pool: string, workerId: string, crashed: boolean): void {
    const w = this.store.workers.get(workerId);
    if (!w || w.gone_at || w.pool !== pool) return;
    for (const run of this.store.runs.heldBy(workerId)) this.apply(run, { type: "worker-lost" });
    this.store.workers.markGone(workerId, crashed, this.iso());
    this.log.info("worker gone", { pool: w.pool, worker: w.id, crashed });
    this.dispatch(w.pool);
  }

  // ---- scheduling ----

  /**
   * Matches a pool's queued runs with its idle workers (every pool when none is named: the periodic
   * sweep and the start). Each assignment reads the head of that pool's queue and one worker, so its
   * cost does not grow with the queue nor with the other pools.
   */
  dispatch(pool?: string): void {
    if (pool === undefined) {
      for (const id of this.store.pools.ids()) this.dispatchPool(id);
      return;
    }
    this.dispatchPool(pool);
  }

  private dispatchPool(pool: string): void {
    for (;;) {
      const scheduled = this.store.db.transaction((): Run | null => {
        const run = this.store.runs.headOfQueue(pool);
        if (!run) return null;
        const worker = this.store.workers.nextIdle(pool);
        if (!worker) return null;
        if (!this.apply(run, { type: "schedule", worker: worker.id })) return null;
        this.store.workers.assign(worker.id, run.id, this.iso());
        return { ...run, worker: worker.id };
      })();
      if (!scheduled) return;
      observeAssignment(scheduled.created_at, this.now());
      this.publishSchedule(scheduled);
    }
  }

  private publishSchedule(run: Run): void {
    const stack = this.store.stacks.get(run.stack);
    const pool = this.store.pools.get(run.pool);
    const worker = run.worker;
    if (!stack || !pool || !worker) return;
    // The one place secret values are opened: straight into the spec that is encrypted to the pool.
    Promise.resolve()
      .then(() => encryptRun(buildRunSpec(this.store.stacks.reveal(stack), run), pool.certificate))
      .then((jwe) => {
        this.log.info("run scheduled", { run: run.id, pool: pool.id, worker });
        this.send(pool.id, worker, makeMessage("schedule", { run: run.id, jwe }));
      })
      .catch((err: unknown) => {
        this.log.error("run cannot be encrypted to the pool certificate", { run: run.id, error: err });
        const current = this.store.runs.get(run.id);
        if (current) this.reject(current, "bad-payload", [`the run cannot be encrypted to the pool certificate: ${errorMessage(err)}`], "the mothership");
        this.releaseWorker(worker, run.id);
      });
  }

  /**
   * A carrier lost its way to the workers (the external broker went away) or found it again. While one
   * is down, silence proves nothing; once every carrier is back, workers get a full liveness window
   * (as after a restart) to be heard again before any is declared lost.
   */
  carrierDown(carrier: string, down: boolean): void {
    if (down) this.carriersDown.add(carrier);
    else if (this.carriersDown.delete(carrier)) this.graceFrom = this.now();
  }

  /** Periodic: declare silent workers lost, put unconfirmed schedules back in the queue. */
  sweep(): void {
    const now = this.now().getTime();
    const silence = this.opts.heartbeatSeconds * 1000 * ControlPlane.MISSED_HEARTBEATS;
    // After a restart every worker gets a full grace period to reconnect before it can be lost.
    if (this.carriersDown.size === 0 && now - this.graceFrom.getTime() >= silence) {
      for (const w of this.store.workers.silentSince(new Date(now - silence).toISOString())) {
        this.log.warn("worker silent, declared gone", { worker: w.id, last_seen: w.last_seen });
        this.workerGone(w.pool, w.id, true);
      }
    }
    const expired = new Date(now - this.opts.scheduleTimeoutMs).toISOString();
    for (const run of this.store.runs.scheduledBefore(expired)) {
      if (!run.worker) continue;
      this.log.warn("schedule not confirmed, run back in the queue", { run: run.id, worker: run.worker });
      const worker = run.worker;
      this.apply(run, { type: "schedule-expired" });
      const w = this.store.workers.get(worker);
      if (w?.current_run === run.id) this.store.workers.setRun(worker, null);
    }
    this.dispatch();
  }

  // ---- operator actions ----

  /** Queues a run; the commit, branch and metadata are checked against the run spec first. */
  triggerRun(stackId: string, type: RunType, details: RunTriggerDetails = {}): Run {
    const stack = this.store.stacks.get(stackId);
    if (!stack) throw notFound("stack", stackId);
    if (details.commit_sha != null && !/^[0-9a-fA-F]{4,64}$/.test(details.commit_sha)) {
      throw new SpaceliftError("invalid-request", "commit must be a commit hash (4 to 64 hex digits), e.g. the output of git rev-parse HEAD");
    }
    validateTrigger(stack, { type, ...details });
    const run = this.store.runs.insert({ id: ulid(), stack: stack.id, pool: stack.pool, type, created_at: this.iso(), ...details });
    this.log.info("run queued", { run: run.id, stack: stack.id, pool: stack.pool, type });
    this.dispatch(stack.pool);
    return this.store.runs.get(run.id) ?? run;
  }

  cancelRun(id: string): Run {
    const run = this.store.runs.get(id);
    if (!run) throw notFound("run", id);
    const next = this.apply(run, { type: "cancel" });
    if (next && next.state !== "CANCELED" && run.worker) this.send(run.pool, run.worker, makeMessage("cancel", { run: run.id }));
    return this.store.runs.get(id) ?? run;
  }

  setDrained(workerId: string, drained: boolean): void {
    const w = this.store.workers.get(workerId);
    if (!w) throw notFound("worker", workerId);
    this.store.workers.setDrained(w.id, drained);
    this.send(w.pool, w.id, makeMessage(drained ? "drain" : "undrain", {}));
    if (!drained) this.dispatch(w.pool);
  }

  /**
   * Drains (or undrains) every live worker of the pool whose metadata tags hold all of `tags`
   * (`SPACELIFT_METADATA_<key>`); no tags: every live worker of the pool. Returns the workers it changed.
   */
  setDrainedByTags(poolId: string, tags: Readonly<Record<string, string>>, drained: boolean): Worker[] {
    if (!this.store.pools.get(poolId)) throw notFound("pool", poolId);
    const matching = this.store.workers.listLive(poolId).filter((w) => Object.entries(tags).every(([k, v]) => Object.hasOwn(w.metadata, k) && w.metadata[k] === v));
    for (const w of matching) this.setDrained(w.id, drained);
    this.log.info(drained ? "workers drained by tag" : "workers undrained by tag", { pool: poolId, tags, workers: matching.map((w) => w.id) });
    return matching.map((w) => this.store.workers.get(w.id) ?? w);
  }

  cyclePool(poolId: string): number {
    const workers = this.store.workers.listLive(poolId);
    for (const w of workers) {
      this.store.workers.setCycling(w.id);
      this.send(w.pool, w.id, makeMessage("cycle", {}));
    }
    return workers.length;
  }
}
