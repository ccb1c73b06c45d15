/**
 * `spacelift-launcher` (no command): the launcher itself. Wiring only — configuration, Docker client,
 * run supervisor, log spool, transport (MQTT or HTTP long-poll, SPACELIFT_WORKER_COMMS_PROTOCOL), agent loop, signals and the spot watcher — then it waits
 * for the agent to leave. A bad configuration is one line per problem and exit 1.
 */
import { join } from "node:path";
import { ConfigError, formatProblem, loadLauncherConfig, requireCredentials, unknownVariables } from "../../config/launcher-config.ts";
import { createDockerClient } from "../../docker/client.ts";
import { errorMessage } from "../../errors.ts";
import { createLogger } from "../../log/logger.ts";
import { importRunDecryptionKey } from "../../protocol/envelope.ts";
import type { UplinkMessage } from "../../protocol/messages.ts";
import { importSigningKey } from "../../protocol/poll.ts";
import { poolMqttTransport, poolPollTransport } from "../../transport/pool-connection.ts";
import { proxyFor } from "../../transport/proxy.ts";
import type { Transport } from "../../transport/transport.ts";
import { buildInfo } from "../../version.ts";
import { Agent } from "../agent/agent.ts";
import { DockerHealth } from "../agent/docker-health.ts";
import { LogSpool } from "../agent/log-spool.ts";
import { lockScratchDir } from "../agent/scratch-lock.ts";
import { SpotWatcher } from "../agent/spot-watcher.ts";
import { chooseWorkerId } from "../agent/worker-id.ts";
import type { Io } from "../main.ts";
import { writeRunCaFiles } from "../supervisor/run-ca-bundle.ts";
import { launcherIdentity } from "../supervisor/launcher-identity.ts";
import { createRunSupervisor } from "../supervisor/run-supervisor.ts";

const ARCH = process.arch === "arm64" ? "aarch64" : process.arch === "x64" ? "x86_64" : process.arch;

export async function launchCommand(_args: string[], env: Record<string, string | undefined>, io: Io): Promise<number> {
  let config;
  try {
    config = loadLauncherConfig(env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const p of err.problems) io.stderr(`spacelift-launcher: ${formatProblem(p)}\n`);
    return 1;
  }
  const credentials = requireCredentials(config);
  const logger = createLogger({ level: config.debug ? "debug" : "info" });
  for (const name of unknownVariables(env)) logger.warn("unknown SPACELIFT_ variable ignored (a typo?)", { variable: name });

  // Before anything in the scratch dir is touched: it is this launcher's alone (several per host, one dir each).
  let scratchLock;
  try {
    scratchLock = lockScratchDir(config.scratchDir);
  } catch (err) {
    io.stderr(`spacelift-launcher: ${errorMessage(err)}\n`);
    return 1;
  }
  await writeRunCaFiles(config.scratchDir, config.trust.additionalCas);
  const launcherId = launcherIdentity(config.scratchDir);
  const spool = await LogSpool.open(join(config.scratchDir, "spool"), logger);
  const identity = chooseWorkerId(spool.list());
  for (const run of identity.undeliverable) await spool.discard(run);
  const worker = identity.worker;
  const pool = credentials.token.pool;
  const log = logger.child({ worker, pool });
  log.info("launcher starting", { version: buildInfo.version, arch: ARCH, launcher: launcherId, resumed_identity: identity.resumed });

  const docker = createDockerClient({ host: config.docker.host.url });
  const supervisor = createRunSupervisor({
    docker,
    config,
    logger,
    workerId: worker,
    poolId: pool,
    launcherId,
    // The policy's evaluator (and the Rego engine behind it) is loaded only when a policy is configured.
    initPolicy: config.runInitializationPolicy
      ? (await import("../init-policy/check.ts")).createInitPolicy(config, logger, { stderr: io.stderr }, { env })
      : undefined,
  });
  // Asked before the first hello, so the mothership knows at once whether this launcher can run anything.
  const dockerHealth = new DockerHealth({ ping: (signal) => docker.ping(signal), endpoint: config.docker.host.url, logger: log });
  await dockerHealth.probe();
  dockerHealth.start();
  const decryptionKey = await importRunDecryptionKey(new Uint8Array(credentials.key.keyObject.export({ type: "pkcs8", format: "der" })));
  const commsUrl = config.comms.url ?? credentials.token.comms_url;
  const signingKey = config.comms.protocol === "poll" ? await importSigningKey(credentials.key.keyObject) : null;
  const target = signingKey ? commsUrl : credentials.token.broker?.endpoint;
  const proxy = target === undefined ? undefined : proxyFor(config.proxy, new URL(target));
  log.info("comms", {
    protocol: config.comms.protocol,
    ...(signingKey ? { url: commsUrl } : { broker: target }),
    proxy: proxy ? `${proxy.shown} (${proxy.variable})` : "none",
    additional_cas: config.trust.additionalCas.length,
  });
  const network = { additionalCas: config.trust.additionalCas, proxy: config.proxy };
  const transport = (hooks: { greeting: () => UplinkMessage }): Transport =>
    signingKey
      ? poolPollTransport({ token: credentials.token, url: commsUrl, signingKey, worker, greeting: hooks.greeting, logger, ...network })
      : poolMqttTransport({ token: credentials.token, keyPem: credentials.key.pem, worker, ...hooks, logger, ...network });

  // Loaded only when asked for: without SPACELIFT_LAUNCHER_METRICS_ADDR the launcher carries no metrics code.
  const metricsServer = config.metricsAddr
    ? (await import("../agent/metrics-server.ts")).startMetricsServer(
        config.metricsAddr,
        { transport: config.comms.protocol, docker: () => dockerHealth.status, spool: () => spool.depth(), workerState: () => agent.workerState },
        log,
      )
    : undefined;
  const agent: Agent = new Agent({
    worker,
    transport,
    executor: supervisor,
    spool,
    decryptionKey,
    cleanupOrphans: (report) => supervisor.cleanupOrphans(report),
    dockerHealth,
    metadata: config.metadata,
    version: buildInfo.version,
    arch: ARCH,
    logger,
    metrics: metricsServer?.metrics,
  });

  const onSignal = (signal: NodeJS.Signals) => {
    log.info("signal received", { signal });
    agent.stopSignal();
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  const spot = config.instanceMetadataEndpoint
    ? new SpotWatcher({ endpoint: config.instanceMetadataEndpoint, logger, onNotice: () => agent.spotNotice() })
    : undefined;
  spot?.start();

  let code: number;
  try {
    code = await agent.run();
  } finally {
    spot?.stop();
    dockerHealth.stop();
    void metricsServer?.stop();
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
  }
  log.info("launcher exiting", { exit_code: code });
  if (code !== 0) {
    // The third signal: out now, whatever is still streaming; the next start cleans up after us.
    process.exit(code);
  }
  await docker.close().catch(() => {});
  scratchLock.release();
  // Keep-alive sockets or a finishing cleanup must not hold an orderly exit open.
  setTimeout(() => process.exit(code), 2_000).unref();
  return code;
}
