/**
 * The control plane: what the mothership does with each launcher message and each operator action.
 * Every one that reads or writes the store goes through one serial queue (serial-queue.ts), so each
 * is applied whole before the next starts: a message's decisions never interleave with another's.
 * Encryption and delivery run outside the queue and never hold a decision open. Scheduling is
 * scheduler.ts's; the periodic sweep is sweep.ts's.
 *
 * Replicas on one PostgreSQL each have their own queue, and one launcher's messages may reach several
 * of them, so every status write is conditional on what its decision read (store/runs.ts applyEvent):
 * an event that lost the race is decided again on the run as it is now, and its replies follow what
 * applied. A worker is freed only of the run it still holds, and declared gone only as it was read.
 */
import { errorMessage, SpaceliftError } from "../errors.ts";
import type { Logger } from "../log/logger.ts";
import { decodeMessage, encodeMessage, makeMessage, parseMessage, type DownlinkMessage, type DecodedMessage, type UplinkMessage } from "../protocol/messages.ts";
import { isTerminalRunState, type RejectReason, type RunType } from "../protocol/states.ts";
import { transition, type RunEvent, type RunStatus } from "./run-lifecycle.ts";
import { DEFAULT_LOG_LIMITS, RunLogIntake, type LogLimits } from "./run-log-intake.ts";
import { validateTrigger } from "./run-spec-builder.ts";
import { Scheduler } from "./scheduler.ts";
import type { Outbox } from "./outbox.ts";
import { workerStatus, type Repos, type Run, type RunTriggerDetails, type Store, type Worker } from "./store/index.ts";
import type { AppliedEvent, StatusExtra } from "./store/runs.ts";
import { SerialQueue } from "./serial-queue.ts";
import { UnreportedResults } from "./unreported-results.ts";
import { declareWorkerGone, Sweeper } from "./sweep.ts";
import { ulid } from "../protocol/ulid.ts";

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
  private readonly logs: RunLogIntake;
  private readonly queue = new SerialQueue();
  private readonly scheduler: Scheduler;
  private readonly sweeper: Sweeper;
  /** Runs whose worker says it no longer holds them, waiting for their result (unreported-results.ts). */
  private readonly unreported: UnreportedResults;
  /** The sweep waiting or running: a store slower than the sweep's period must not pile sweeps up. */
  private sweeping: Promise<void> | null = null;

  constructor(private readonly opts: ControlOptions) {
    this.store = opts.store;
    this.log = opts.logger.child({ component: "control" });
    this.now = opts.now ?? (() => new Date());
    this.sweeper = new Sweeper({ ...opts, store: this.store, now: this.now, log: this.log, logState: (run, from, next) => this.logState(run, from, next) });
    this.unreported = new UnreportedResults(2 * opts.heartbeatSeconds * 1000);
    this.logs = new RunLogIntake(this.store, opts.logLimits ?? DEFAULT_LOG_LIMITS, opts.logger);
    this.scheduler = new Scheduler({
      store: this.store,
      log: this.log,
      now: this.now,
      schedule: async (run, worker, tx) => (await this.apply(run, { type: "schedule", worker }, {}, tx)) !== null,
      send: (pool, worker, message) => this.send(pool, worker, message),
      unencryptable: (run, worker, err) =>
        this.background("rejecting an unencryptable run", { run: run.id }, async () => {
          const current = await this.store.runs.get(run.id);
          if (current) await this.reject(current, worker, "bad-payload", [`the run cannot be encrypted to the pool certificate: ${errorMessage(err)}`], "the mothership");
          await this.releaseWorker(worker, run.id);
        }),
    });
  }

  private iso(): string {
    return this.now().toISOString();
  }

  /**
   * Launcher messages and periodic work: queued like every decision, and a failure (the store went away)
   * is logged here, as nobody waits for its answer; the queue goes on with the next one.
   */
  private background(what: string, fields: Record<string, unknown>, task: () => Promise<void>): Promise<void> {
    return this.queue.run(task).catch((err: unknown) => {
      this.log.error(`${what} failed`, { ...fields, error: errorMessage(err) });
    });
  }

  private send(pool: string, worker: string, message: DownlinkMessage): void {
    this.opts.outbox.deliver(pool, worker, encodeMessage(message)).catch((err: unknown) => {
      this.log.warn("delivery to launcher failed", { pool, worker, type: message.type, error: err });
    });
  }

  /**
   * Applies a lifecycle event through `repos` (the store, or a transaction's), decided anew on the run
   * as it is now if another writer changed it since `run` was read. `holder`: the event is that worker's
   * and applies only while it holds the run. Null (and a debug line) when it does not apply.
   */
  private async apply(run: Run, event: RunEvent, extra: StatusExtra = {}, repos: Repos = this.store, holder?: string): Promise<AppliedEvent | null> {
    const applied = await repos.runs.applyEvent(run, event, this.iso(), extra, holder);
    if (!applied) {
      this.log.debug("run event ignored in this state", { run: run.id, state: run.state, event: event.type });
      return null;
    }
    this.logState(run.id, applied.from.state, applied.to);
    return applied;
  }

  private logState(run: string, from: Run["state"], next: RunStatus): void {
    if (next.state !== from) this.log.info("run state", { run, from, to: next.state, reason: next.reason });
  }

  // ---- launcher messages ----

  /**
   * A message from `worker` of `pool`, whichever carrier brought it; the carrier vouches for the pool
   * (a certificate of the pool, a broker ACL on the pool's subtree, a request signed with its key).
   * Resolves once it is applied; never rejects (a failure is logged).
   */
  handleUplink(pool: string, worker: string, payload: Uint8Array): Promise<void> {
    return this.background("launcher message", { pool, worker }, () => this.applyUplink({ pool, worker }, parseMessage(payload, "uplink")));
  }

  /** The same for a message already decoded from JSON (one of a long-poll batch). */
  handleUplinkValue(pool: string, worker: string, value: unknown): Promise<void> {
    return this.background("launcher message", { pool, worker }, () => this.applyUplink({ pool, worker }, decodeMessage(value, "uplink")));
  }

  private async applyUplink(addr: WorkerAddress, parsed: DecodedMessage<UplinkMessage>): Promise<void> {
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
    const worker = await this.store.workers.get(addr.worker);
    if (worker && worker.pool !== addr.pool) return this.refuseForeignWorker(addr, worker.pool, m);
    if (m.type === "hello") return this.onHello(addr, m);
    // Heard only while live: another replica may have declared it gone since it was read. A worker
    // heard within the last second needs no new last_seen (nobody is declared gone that soon), which
    // spares a write for most messages of a busy launcher.
    if (!worker || worker.gone_at !== null || !(this.heardRecently(worker) || (await this.store.workers.touch(worker.id, this.iso())))) {
      if (m.type === "gone") return;
      // A worker we do not know, or already declared gone (silent too long): ask it to say hello again.
      this.send(addr.pool, addr.worker, makeMessage("error", { in_reply_to: m.id, code: "unknown-worker", message: "send hello first" }));
      return;
    }
    switch (m.type) {
      case "heartbeat":
        await this.reconcileHeld(worker, m.run);
        if (m.docker && (await this.recordDockerHealth(worker, m.docker.ok, m.docker.message)) && m.docker.ok) await this.scheduler.dispatchPool(worker.pool);
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

  /** Heard within the last second (or a quarter of the heartbeat interval, if that is shorter). */
  private heardRecently(w: Worker): boolean {
    const window = Math.min(1000, (this.opts.heartbeatSeconds * 1000) / 4);
    const age = this.now().getTime() - Date.parse(w.last_seen);
    return age >= 0 && age < window;
  }

  /** Answers the sender alone (its own pool's address) and changes nothing of the worker's own pool. */
  private refuseForeignWorker(addr: WorkerAddress, owner: string, m: UplinkMessage): void {
    this.log.warn("message for a worker of another pool refused", { pool: addr.pool, worker: addr.worker, worker_pool: owner, type: m.type });
    this.send(addr.pool, addr.worker, makeMessage("error", { in_reply_to: m.id, code: "worker-pool-mismatch", message: `worker ${addr.worker} belongs to another pool; a launcher makes a fresh worker id at each start` }));
  }

  private async onHello(addr: WorkerAddress, m: Extract<UplinkMessage, { type: "hello" }>): Promise<void> {
    const before = await this.store.workers.get(addr.worker);
    const w = await this.store.workers.register({ id: addr.worker, pool: addr.pool, metadata: m.metadata, version: m.version, arch: m.arch, now: this.iso() });
    // register() never moves a row to another pool; applyUplink refused that case already.
    if (!w) return this.refuseForeignWorker(addr, before?.pool ?? "unknown", m);
    this.log.info("worker registered", { pool: addr.pool, worker: w.id, version: m.version, arch: m.arch, reconnect: before !== null });
    // A launcher that says nothing about Docker (an older one) is taken at its word that it can run.
    await this.recordDockerHealth(w, m.docker?.ok ?? true, m.docker?.message ?? "");
    // Reconcile what we believe the worker holds with what it says it holds.
    if (w.current_run && w.current_run !== m.run) {
      const run = await this.store.runs.get(w.current_run);
      if (run?.state === "SCHEDULED" && m.run === null) {
        this.send(addr.pool, w.id, makeMessage("registered", { worker: w.id, pool: w.pool, status: workerStatus(w), heartbeat_seconds: this.opts.heartbeatSeconds }));
        return this.scheduler.publish(run);
      }
      if (run && (run.state === "PREPARING" || run.state === "RUNNING") && m.run === null) {
        // The same launcher process, done with the run: its result follows this hello or was lost.
        // The worker keeps the run until the result comes or its heartbeats say it never will.
        this.unreported.overdue(run.id, this.now().getTime());
      } else {
        if (run) await this.apply(run, { type: "worker-lost" }, {}, this.store, w.id);
        await this.store.workers.release(w.id, w.current_run);
      }
    }
    const fresh = (await this.store.workers.get(w.id)) ?? w;
    this.send(addr.pool, w.id, makeMessage("registered", { worker: w.id, pool: w.pool, status: workerStatus(fresh), heartbeat_seconds: this.opts.heartbeatSeconds }));
    if (fresh.drained) this.send(addr.pool, w.id, makeMessage("drain", {}));
    if (fresh.cycling) this.send(addr.pool, w.id, makeMessage("cycle", {}));
    await this.scheduler.dispatchPool(w.pool);
  }

  /**
   * A heartbeat saying the worker holds no run (or another) while the store says it holds one it
   * accepted: after two heartbeats without the run's result, the result is taken as lost and the run
   * FAILS launcher-crashed, so the worker takes runs again. A SCHEDULED run is the schedule timeout's.
   */
  private async reconcileHeld(w: Worker, reported: string | null): Promise<void> {
    if (!w.current_run || w.current_run === reported) return;
    const run = await this.store.runs.get(w.current_run);
    if (!run || run.state === "SCHEDULED") return;
    if (!this.unreported.overdue(run.id, this.now().getTime())) return;
    this.log.warn("the launcher no longer holds its run and the run's result never came; the run fails", { pool: w.pool, worker: w.id, run: run.id, state: run.state });
    const why = "the launcher reported that it no longer holds the run, and its result never reached the mothership";
    await this.apply(run, { type: "worker-lost" }, { messages: [why] }, this.store, w.id);
    await this.releaseWorker(w.id, run.id);
  }

  /** A worker whose Docker stops answering gets no runs until it reports it back. True when it changed. */
  private async recordDockerHealth(w: Worker, ok: boolean, message: string): Promise<boolean> {
    if (!(await this.store.workers.setDockerHealth(w.id, ok, message))) return false;
    if (ok) this.log.info("worker's Docker answers again; it takes runs", { pool: w.pool, worker: w.id });
    else this.log.warn("worker's Docker does not answer; no runs go to it", { pool: w.pool, worker: w.id, problem: message });
    return true;
  }

  private async onRunMessage(addr: WorkerAddress, m: Extract<UplinkMessage, { run: string }>): Promise<void> {
    const run = await this.store.runs.get(m.run);
    if (!run || run.worker !== addr.worker || run.pool !== addr.pool) {
      this.log.warn("message about a run this worker does not hold", { worker: addr.worker, run: m.run, type: m.type });
      this.send(addr.pool, addr.worker, makeMessage("error", { in_reply_to: m.id, code: "unknown-run", message: `run ${m.run} is not assigned to this worker` }));
      return;
    }
    const holder = addr.worker;
    switch (m.type) {
      case "run_accepted":
        // A cancel requested before the acceptance applied (read again if it raced one) goes out now.
        if ((await this.apply(run, { type: "accepted" }, {}, this.store, holder))?.from.cancel_requested) this.send(addr.pool, holder, makeMessage("cancel", { run: run.id }));
        return;
      case "run_rejected":
        if (await this.reject(run, holder, m.reason, m.messages, `worker ${holder}`)) await this.releaseWorker(holder, run.id);
        return;
      case "phase":
        await this.apply(run, { type: "phase", phase: m.phase }, { phase: m.phase }, this.store, holder);
        return;
      case "log":
        return this.onLog(addr, run, m);
      case "run_finished":
        this.unreported.forget(run.id);
        // A run that already ended here (its launcher was declared lost) still learns its last seq.
        if (!(await this.apply(run, { type: "finished", reason: m.reason, exit_code: m.exit_code }, { last_seq: m.last_seq, messages: m.messages }, this.store, holder))) {
          await this.store.runs.recordLateLastSeq(run.id, holder, m.last_seq);
        }
        // Whatever we thought of the run, the worker is free of it now.
        return this.releaseWorker(addr.worker, run.id);
    }
  }

  private async onLog(addr: WorkerAddress, run: Run, m: Extract<UplinkMessage, { type: "log" }>): Promise<void> {
    const verdict = await this.logs.receive(run, m.seq, m.data, addr.worker);
    if (verdict.kind === "stored") return this.send(addr.pool, addr.worker, makeMessage("log_ack", { run: run.id, seq: verdict.acked }));
    this.send(addr.pool, addr.worker, makeMessage("error", { in_reply_to: m.id, code: verdict.code, message: verdict.message }));
    if (verdict.kind === "over-limit") await this.stopOverLogLimit(run, verdict.note);
    // A run that ended with its whole log stored will never take this chunk: acknowledge it as
    // well, so the launcher drops it from its spool instead of resending it after every reconnect.
    const now = await this.store.runs.get(run.id);
    if (now && isTerminalRunState(now.state) && now.last_seq !== null && now.log_acked >= now.last_seq) {
      this.send(addr.pool, addr.worker, makeMessage("log_ack", { run: run.id, seq: Math.max(m.seq, now.log_acked) }));
    }
  }

  /**
   * A run over its log cap ends FAILED `log-limit-exceeded` at once, with a note in its log that
   * ends it (its `last_seq`, so followers finish), and its launcher is told to cancel it.
   */
  private async stopOverLogLimit(run: Run, note: string): Promise<void> {
    const stopped = await this.store.transaction(async (tx) => {
      // Locked, so the note goes in only with the status it explains (another replica may have ended the run).
      const now = await tx.runs.lock(run.id);
      if (!now || now.worker !== run.worker || !transition(now, { type: "log-limit" })) return null;
      const noteSeq = await tx.runs.appendNote(run.id, note);
      return this.apply(now, { type: "log-limit" }, { messages: [note], last_seq: noteSeq }, tx);
    });
    if (stopped && run.worker) this.send(run.pool, run.worker, makeMessage("cancel", { run: run.id }));
  }

  /**
   * A rejection (by the launcher, or by us when the run cannot be encrypted). One that ends the run
   * also goes into the run's log with its messages, so `run logs` says why (system-error alone does not).
   */
  private reject(run: Run, holder: string, reason: RejectReason, messages: string[], by: string): Promise<boolean> {
    return this.store.transaction(async (tx) => {
      const next = (await this.apply(run, { type: "rejected", reason }, { messages }, tx, holder))?.to;
      if (next && isTerminalRunState(next.state)) {
        const details = messages.length > 0 ? messages.map((text) => `: ${text}`) : [""];
        await tx.runs.appendNote(run.id, details.map((d) => `mothership: run rejected by ${by} (${reason})${d}`).join("\n"));
      }
      return next !== null;
    });
  }

  /** The worker is free of the run, unless it holds another by now; its pool's queue moves on. */
  private async releaseWorker(workerId: string, runId: string): Promise<void> {
    const w = await this.store.workers.get(workerId);
    if (!w) return;
    await this.store.workers.release(workerId, runId);
    await this.scheduler.dispatchPool(w.pool);
  }

  /**
   * The worker said goodbye (or its Last Will did): the runs it held fail. Not when another replica
   * heard it again (a reconnecting launcher's hello) after this one read it.
   */
  private async workerGone(pool: string, workerId: string, crashed: boolean): Promise<void> {
    const w = await this.store.workers.get(workerId);
    if (!w || w.gone_at || w.pool !== pool) return;
    const changes = await declareWorkerGone(this.store, w, crashed, this.iso());
    if (!changes) return;
    for (const c of changes) this.logState(c.run, c.from, c.to);
    this.log.info("worker gone", { pool: w.pool, worker: w.id, crashed });
    await this.scheduler.dispatchPool(w.pool);
  }

  // ---- scheduling ----

  /**
   * Matches a pool's queued runs with its idle workers (every pool when none is named: the start).
   * Each assignment reads the head of that pool's queue and one worker, so its cost does not grow with
   * the queue nor with the other pools. Never rejects (a failure is logged).
   */
  dispatch(pool?: string): Promise<void> {
    return this.background("dispatch", { pool }, () => (pool === undefined ? this.scheduler.dispatchAll() : this.scheduler.dispatchPool(pool)));
  }

  /**
   * A carrier lost its way to the workers (the external broker went away) or found it again. While one
   * is down, silence proves nothing; once every carrier is back, workers get a full liveness window
   * (as after a restart) to be heard again before any is declared lost.
   */
  carrierDown(carrier: string, down: boolean): void {
    this.sweeper.carrierDown(carrier, down);
  }

  /**
   * Periodic: declare silent workers lost, put unconfirmed schedules back in the queue, then dispatch
   * every pool. A call while one is pending joins it. Never rejects (a failure is logged).
   */
  sweep(): Promise<void> {
    if (this.sweeping) return this.sweeping;
    const pending = this.background("sweep", {}, async () => {
      await this.sweeper.run();
      await this.scheduler.dispatchAll();
    }).finally(() => {
      this.sweeping = null;
    });
    this.sweeping = pending;
    return pending;
  }

  // ---- operator actions: queued like launcher messages; their errors go back to the caller ----

  /** Queues a run; the commit, branch and metadata are checked against the run spec first. */
  triggerRun(stackId: string, type: RunType, details: RunTriggerDetails = {}): Promise<Run> {
    return this.queue.run(async () => {
      const stack = await this.store.stacks.get(stackId);
      if (!stack) throw notFound("stack", stackId);
      if (details.commit_sha != null && !/^[0-9a-fA-F]{4,64}$/.test(details.commit_sha)) {
        throw new SpaceliftError("invalid-request", "commit must be a commit hash (4 to 64 hex digits), e.g. the output of git rev-parse HEAD");
      }
      validateTrigger(stack, { type, ...details });
      const run = await this.store.runs.insert({ id: ulid(), stack: stack.id, pool: stack.pool, type, created_at: this.iso(), ...details });
      this.log.info("run queued", { run: run.id, stack: stack.id, pool: stack.pool, type });
      await this.scheduler.dispatchPool(stack.pool);
      return (await this.store.runs.get(run.id)) ?? run;
    });
  }

  cancelRun(id: string): Promise<Run> {
    return this.queue.run(async () => {
      const run = await this.store.runs.get(id);
      if (!run) throw notFound("run", id);
      const applied = await this.apply(run, { type: "cancel" });
      // The worker of the run as the cancel applied to it (another replica may have moved it meanwhile).
      const worker = applied?.from.worker;
      if (applied && applied.to.state !== "CANCELED" && worker) this.send(run.pool, worker, makeMessage("cancel", { run: run.id }));
      return (await this.store.runs.get(id)) ?? run;
    });
  }

  setDrained(workerId: string, drained: boolean): Promise<void> {
    return this.queue.run(async () => {
      const w = await this.store.workers.get(workerId);
      if (!w) throw notFound("worker", workerId);
      await this.drain(w, drained);
    });
  }

  private async drain(w: Worker, drained: boolean): Promise<void> {
    await this.store.workers.setDrained(w.id, drained);
    this.send(w.pool, w.id, makeMessage(drained ? "drain" : "undrain", {}));
    if (!drained) await this.scheduler.dispatchPool(w.pool);
  }

  /**
   * Drains (or undrains) every live worker of the pool whose metadata tags hold all of `tags`
   * (`SPACELIFT_METADATA_<key>`); no tags: every live worker of the pool. Returns the workers it changed.
   */
  setDrainedByTags(poolId: string, tags: Readonly<Record<string, string>>, drained: boolean): Promise<Worker[]> {
    return this.queue.run(async () => {
      if (!(await this.store.pools.get(poolId))) throw notFound("pool", poolId);
      const live = await this.store.workers.listLive(poolId);
      const matching = live.filter((w) => Object.entries(tags).every(([k, v]) => Object.hasOwn(w.metadata, k) && w.metadata[k] === v));
      for (const w of matching) await this.drain(w, drained);
      this.log.info(drained ? "workers drained by tag" : "workers undrained by tag", { pool: poolId, tags, workers: matching.map((w) => w.id) });
      const changed: Worker[] = [];
      for (const w of matching) changed.push((await this.store.workers.get(w.id)) ?? w);
      return changed;
    });
  }

  cyclePool(poolId: string): Promise<number> {
    return this.queue.run(async () => {
      const workers = await this.store.workers.listLive(poolId);
      for (const w of workers) {
        await this.store.workers.setCycling(w.id);
        this.send(w.pool, w.id, makeMessage("cycle", {}));
      }
      return workers.length;
    });
  }
}
