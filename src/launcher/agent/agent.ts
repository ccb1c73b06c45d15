/**
 * The agent loop: the launcher's conversation with the mothership (src/protocol/README.md). Everything
 * that changes the worker's state — messages, a run's end, signals, spot notices — is an action in one
 * serial queue, so decisions never interleave; the run itself executes beside the loop and its output
 * flows to the log shipper directly, not through the queue.
 */
import { errorMessage, SpaceliftError } from "../../errors.ts";
import type { Logger } from "../../log/logger.ts";
import { decryptRun } from "../../protocol/envelope.ts";
import { makeMessage, type DownlinkMessage, type UplinkMessage } from "../../protocol/messages.ts";
import type { RunSpec } from "../../protocol/run-spec.ts";
import type { RunReason } from "../../protocol/states.ts";
import { EXIT_CREDENTIALS_REFUSED, type RefusalInfo } from "../../transport/refusals.ts";
import { logDataBytes } from "../../transport/log-message.ts";
import type { Transport } from "../../transport/transport.ts";
import type { AbortReason, RunExecutor, RunResult, RunSink } from "../run-executor.ts";
import type { DockerHealth } from "./docker-health.ts";
import { LogShipper } from "./log-shipper.ts";
import type { LogSpool } from "./log-spool.ts";
import { SentMessages } from "./sent-messages.ts";
import { currentRun, INITIAL_STATE, reportedStatus, transition, type WorkerEffect, type WorkerEvent, type WorkerState } from "./worker-state.ts";

/** Removes containers a dead launcher left behind, reporting each one's run (the agent reports it launcher-crashed). */
export type OrphanCleanup = (report: (run: string) => Promise<void>) => Promise<unknown>;

export interface AgentOptions {
  worker: string;
  /** Builds the transport; `greeting` must be sent first on every connection (a crash is the transport's to report: the MQTT Last Will). */
  transport: (hooks: { greeting: () => UplinkMessage }) => Transport;
  executor: RunExecutor;
  spool: LogSpool;
  /** The pool private key, imported for JWE decryption. */
  decryptionKey: CryptoKey;
  cleanupOrphans?: OrphanCleanup;
  /** Whether Docker answers: reported in hello and heartbeat; no run is accepted while it does not. */
  dockerHealth?: DockerHealth;
  metadata: Readonly<Record<string, string>>;
  version: string;
  arch: string;
  logger: Logger;
  /** How long an orderly exit waits for `gone` (and other queued messages) to reach the broker. */
  goodbyeTimeoutMs?: number;
  metrics?: AgentMetrics;
}

/** What the agent reports to SPACELIFT_LAUNCHER_METRICS_ADDR (./metrics-server.ts); absent, nothing is counted. */
export interface AgentMetrics {
  scheduled(run: string): void;
  /** The run's first phase in its container. */
  running(run: string): void;
  runFinished(run: string, reason: RunReason): void;
  logSent(bytes: number): void;
  connection(up: boolean, reconnect: boolean): void;
  registered(): void;
}

/**
 * 0: orderly exit (drain, cycle, spot); 1: the third signal, out at once; 77 (EXIT_CREDENTIALS_REFUSED):
 * the mothership keeps refusing the pool's certificate (a reset or deleted pool), a new token is needed.
 */
export type AgentExit = 0 | 1 | typeof EXIT_CREDENTIALS_REFUSED;

export class Agent {
  private state: WorkerState = INITIAL_STATE;
  private readonly log: Logger;
  private readonly transport: Transport;
  private readonly shipper: LogShipper;
  private readonly sent = new SentMessages();
  private readonly queue: Array<() => Promise<void>> = [];
  private pumping = false;
  private heartbeat: ReturnType<typeof setInterval> | null = null;
  private running: { run: string; controller: AbortController } | null = null;
  private exited: ((code: AgentExit) => void) | null = null;
  private readonly connectAbort = new AbortController();
  private refused = false;

  constructor(private readonly opts: AgentOptions) {
    this.log = opts.logger.child({ worker: opts.worker });
    this.transport = opts.transport({ greeting: () => this.hello() });
    const metrics = opts.metrics;
    const send = (m: UplinkMessage): Promise<void> => {
      if (m.type === "log") metrics?.logSent(logDataBytes(m));
      return this.transport.send(m);
    };
    this.shipper = new LogShipper(opts.spool, { send }, this.log);
    this.transport.on("message", (m) => this.enqueue(() => this.onMessage(m)));
    this.transport.on("disconnected", () => {
      this.shipper.setOnline(false);
      metrics?.connection(false, false);
    });
    this.transport.on("connected", (info) => metrics?.connection(true, info.reconnect));
    this.transport.on("refused", (info) => this.enqueue(() => this.credentialsRefused(info)));
    // A change goes out at once, not at the next interval: the mothership stops (or resumes) scheduling here.
    opts.dockerHealth?.onChange(() => {
      if (this.heartbeat) this.sendHeartbeat();
    });
  }

  get workerState(): WorkerState {
    return this.state;
  }

  /** Runs until the worker leaves. Resolves with the process exit code. */
  async run(): Promise<AgentExit> {
    const done = new Promise<AgentExit>((resolve) => (this.exited = resolve));
    await this.reportLeftovers();
    try {
      await this.transport.connect(this.connectAbort.signal);
    } catch (err) {
      if (!(err instanceof SpaceliftError) || (this.state.kind !== "exited" && !this.refused)) throw err;
    }
    return done;
  }

  /** SIGTERM/SIGINT: drain, then cancel the run, then out at once. */
  stopSignal(): void {
    this.enqueue(async () => this.apply({ type: "stop-signal" }));
  }

  /** A spot interruption notice: leave like a first signal. */
  spotNotice(): void {
    this.enqueue(async () => this.apply({ type: "spot-notice" }));
  }

  private hello(): UplinkMessage {
    const o = this.opts;
    const docker = o.dockerHealth?.status;
    return makeMessage("hello", { metadata: { ...o.metadata }, version: o.version, arch: o.arch, state: reportedStatus(this.state), run: currentRun(this.state), ...(docker ? { docker } : {}) });
  }

  private sendHeartbeat(): void {
    const docker = this.opts.dockerHealth?.status;
    this.send(makeMessage("heartbeat", { state: reportedStatus(this.state), run: currentRun(this.state), ...(docker ? { docker } : {}) }));
    void this.shipper.resendStalled().catch((err: unknown) => this.log.warn("resending unacknowledged logs failed", { error: errorMessage(err) }));
  }

  private send(message: UplinkMessage): void {
    this.sent.remember(message);
    this.transport.send(message).catch((err: unknown) => this.log.debug("message not sent", { type: message.type, error: errorMessage(err) }));
  }

  private enqueue(action: () => Promise<void>): void {
    this.queue.push(action);
    if (this.pumping) return;
    this.pumping = true;
    void (async () => {
      while (this.queue.length > 0) {
        const next = this.queue.shift()!;
        try {
          await next();
        } catch (err) {
          this.log.error("agent action failed", { error: errorMessage(err) });
        }
      }
      this.pumping = false;
    })();
  }

  /** Orphaned containers and spooled runs of a launcher that died: their results go out first. */
  private async reportLeftovers(): Promise<void> {
    const reported = new Set<string>();
    const report = async (run: string): Promise<void> => {
      reported.add(run);
      this.log.warn("run of a launcher that is gone reported as crashed", { run });
      await this.finishRun(run, { exit_code: null, reason: "launcher-crashed", last_seq: this.opts.spool.lastSeq(run) });
    };
    if (this.opts.cleanupOrphans) {
      try {
        await this.opts.cleanupOrphans(report);
      } catch (err) {
        this.log.error("orphan cleanup failed", { error: errorMessage(err) });
      }
    }
    for (const spooled of this.opts.spool.list()) {
      if (reported.has(spooled.run)) continue;
      const finished = spooled.finished ?? { exit_code: null, reason: "launcher-crashed" as const, last_seq: this.opts.spool.lastSeq(spooled.run) };
      await this.finishRun(spooled.run, finished);
    }
  }

  private async finishRun(run: string, result: { exit_code: number | null; reason: RunResult["reason"]; last_seq: number }, messages: readonly string[] = []): Promise<void> {
    // A full spool disk must not keep the result from the mothership (the run would stay RUNNING there).
    await this.opts.spool.finish(run, result).catch((err: unknown) => this.log.error("the run's result could not be written to the spool", { run, error: errorMessage(err) }));
    this.opts.metrics?.runFinished(run, result.reason);
    // The reasons travel with the result too: a run that failed because its log could not be written has no log saying why.
    const why = messages.slice(0, 16).map((m) => (m.length > 1024 ? `${m.slice(0, 1023)}…` : m));
    this.send(makeMessage("run_finished", { run, ...result, ...(why.length > 0 ? { messages: why } : {}) }));
  }

  private async onMessage(m: DownlinkMessage): Promise<void> {
    switch (m.type) {
      case "registered":
        return this.onRegistered(m.heartbeat_seconds, m.status);
      case "schedule":
        return this.onSchedule(m.run, m.jwe);
      case "cancel":
        return this.apply({ type: "cancel", run: m.run });
      case "drain":
      case "undrain":
      case "cycle":
        this.log.info(`${m.type} requested by the mothership`);
        return this.apply({ type: m.type });
      case "log_ack":
        return this.opts.spool.ack(m.run, m.seq);
      case "error":
        return this.onError(m);
    }
  }

  private async onRegistered(heartbeatSeconds: number, status: string): Promise<void> {
    this.log.info("registered", { status, heartbeat_seconds: heartbeatSeconds });
    this.opts.metrics?.registered();
    if (status === "DRAINED") this.apply({ type: "drain" });
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = setInterval(() => this.sendHeartbeat(), heartbeatSeconds * 1000);
    for (const message of this.sent.takeResends()) this.send(message);
    this.shipper.setOnline(true);
    void this.shipper.resend().catch((err: unknown) => this.log.warn("resending spooled logs failed", { error: errorMessage(err) }));
  }

  private async onError(m: Extract<DownlinkMessage, { type: "error" }>): Promise<void> {
    const original = m.in_reply_to === null ? undefined : this.sent.get(m.in_reply_to);
    if (m.code === "unknown-worker") {
      // Declared gone (silent too long, or the mothership's data was restored): introduce ourselves again.
      if (original && original.type !== "heartbeat") this.sent.resendAfterHello(original);
      if (!this.sent.helloPending()) {
        this.log.warn("the mothership does not know this worker; saying hello again");
        this.shipper.setOnline(false);
        const hello = this.hello();
        this.sent.markHello();
        this.send(hello);
      }
      return;
    }
    if (m.code === "unknown-run" && original && "run" in original && typeof original.run === "string" && original.run !== currentRun(this.state)) {
      // The mothership will never take this run's output: keeping it would only fill the disk.
      this.log.warn("the mothership does not know a spooled run; dropping it", { run: original.run });
      await this.opts.spool.discard(original.run);
      return;
    }
    this.log.warn("the mothership refused a message", { code: m.code, message: m.message, type: original?.type });
  }

  private async onSchedule(run: string, jwe: string): Promise<void> {
    this.opts.metrics?.scheduled(run);
    const s = this.state;
    const mayAccept = s.kind === "idle" && !s.drained && s.signals === 0;
    if (mayAccept && this.opts.dockerHealth) {
      // Asked now, not taken from the last probe: a run accepted here would only fail at its pull.
      const docker = await this.opts.dockerHealth.probe();
      if (!docker.ok) {
        this.log.warn("scheduled run refused: Docker does not answer", { run, problem: docker.message });
        this.send(makeMessage("run_rejected", { run, reason: "docker-unavailable", messages: [`Docker does not answer: ${docker.message}`] }));
        return;
      }
    }
    let spec: RunSpec | null = null;
    let payload: "ok" | "bad-payload" | "decrypt-failed" = "ok";
    let problem = "";
    if (mayAccept) {
      try {
        spec = await decryptRun(jwe, this.opts.decryptionKey);
        if (spec.id !== run) throw new SpaceliftError("run-spec-invalid", "the decrypted run names another run id");
      } catch (err) {
        const code = err instanceof SpaceliftError ? err.code : "";
        payload = code === "envelope-decrypt-failed" || code === "envelope-key-mismatch" ? "decrypt-failed" : "bad-payload";
        problem = errorMessage(err);
        this.log.warn("scheduled run refused", { run, reason: payload, error: problem });
      }
    }
    this.apply({ type: "schedule", run, payload }, { spec, problem });
  }

  private apply(event: WorkerEvent, context: { spec?: RunSpec | null; problem?: string } = {}): void {
    const before = this.state;
    const { state, effects } = transition(before, event);
    this.state = state;
    if (state.kind !== before.kind) this.log.info("worker state", { from: before.kind, to: state.kind, event: event.type });
    for (const effect of effects) this.perform(effect, context);
  }

  private perform(effect: WorkerEffect, context: { spec?: RunSpec | null; problem?: string }): void {
    switch (effect.type) {
      case "accept":
        if (!context.spec) throw new Error("accept without a decrypted run");
        return this.start(context.spec);
      case "reject":
        this.send(makeMessage("run_rejected", { run: effect.run, reason: effect.reason, messages: context.problem ? [context.problem] : [] }));
        return;
      case "abort":
        this.log.info("stopping the run", { run: effect.run, reason: effect.reason });
        if (this.running?.run === effect.run) this.running.controller.abort(effect.reason satisfies AbortReason);
        return;
      case "exit":
        this.enqueue(() => this.leave(effect.immediate));
        return;
    }
  }

  private start(spec: RunSpec): void {
    const run = spec.id;
    const controller = new AbortController();
    this.running = { run, controller };
    this.log.info("run accepted", { run, type: spec.type, stack: spec.stack.id });
    const sink: RunSink = {
      phase: (r, name) => {
        if (name !== "preparing") this.opts.metrics?.running(r);
        this.send(makeMessage("phase", { run: r, phase: name }));
      },
      log: (chunk) => this.shipper.ship(chunk),
    };
    const execution = (async (): Promise<RunResult> => {
      await this.opts.spool.begin(run, this.opts.worker);
      this.send(makeMessage("run_accepted", { run }));
      return this.opts.executor.execute(spec, sink, controller.signal);
    })();
    execution
      .catch((err: unknown): RunResult => {
        this.log.error("run execution failed", { run, error: errorMessage(err) });
        return { run, exitCode: null, reason: "system-error", lastSeq: this.opts.spool.lastSeq(run), messages: [errorMessage(err)] };
      })
      .then((result) => this.enqueue(() => this.onRunDone(result)), () => {});
  }

  private async onRunDone(result: RunResult): Promise<void> {
    // After a third signal nothing more is reported: the next start finds the run and reports it.
    if (this.state.kind === "exited" && this.state.immediate) return;
    this.log.info("run finished", { run: result.run, reason: result.reason, exit_code: result.exitCode });
    this.running = null;
    // A system error is often Docker going away mid-run: ask it now, so no run is taken while it is gone.
    if (result.reason === "system-error") await this.opts.dockerHealth?.probe();
    await this.finishRun(result.run, { exit_code: result.exitCode, reason: result.reason, last_seq: result.lastSeq }, result.messages);
    this.apply({ type: "run-finished", run: result.run });
  }

  /**
   * The token is dead (the transport has closed itself): say so in one line and leave, so that whatever
   * supervises the launcher replaces it. A run in progress is stopped; the next launcher on this scratch
   * dir reports it as crashed and removes its container.
   */
  private async credentialsRefused(info: RefusalInfo): Promise<void> {
    this.refused = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.connectAbort.abort();
    this.log.error(
      "the mothership refused this pool's certificate: the pool's credentials were reset or the pool was deleted; give this launcher the new token and key (mothership pool reset) and start it again",
      { reason: info.reason, attempts: info.attempts, exit_code: EXIT_CREDENTIALS_REFUSED },
    );
    this.running?.controller.abort("launcher-stopping" satisfies AbortReason);
    await this.transport.close(false);
    this.exited?.(EXIT_CREDENTIALS_REFUSED);
  }

  private async leave(immediate: boolean): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.connectAbort.abort();
    if (immediate) {
      this.log.warn("third stop signal: exiting at once");
      await this.transport.close(false);
      this.exited?.(1);
      return;
    }
    this.log.info("leaving: saying goodbye to the mothership");
    const goodbye = this.transport.send(makeMessage("gone", { crashed: false }));
    const timeout = new Promise<void>((resolve) => setTimeout(resolve, this.opts.goodbyeTimeoutMs ?? 5_000).unref());
    await Promise.race([goodbye.catch(() => {}), timeout]);
    await this.transport.close(true);
    this.exited?.(0);
  }
}
