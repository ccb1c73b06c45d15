// The compiled launcher against forged downlink messages, over both transports. Over HTTP long-poll a
// fake mothership on plain HTTP (the launcher connects because SPACELIFT_WORKER_COMMS_INSECURE_HTTP=true)
// serves `schedule` messages signed by a CA the launcher does not trust, by the pool's own key and
// certificate (which chain to the token's CA), unsigned, expired, addressed to another worker or pool;
// over MQTT the same are published on the worker's readonly topic through the real Mosquitto, as a
// compromised broker could. Each is refused with a warning naming why, and nothing starts: no
// run_accepted, no container. A correctly signed schedule then runs (the checks can pass), and the same
// message again is dropped, as is its id re-signed: the run is accepted once.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt, { type MqttClient } from "mqtt";
import { createDockerClient } from "../../../src/docker/client.ts";
import type { DockerClient } from "../../../src/docker/types.ts";
import { LABEL_RUN } from "../../../src/launcher/supervisor/labels.ts";
import { encodeToken } from "../../../src/pki/token.ts";
import type { DownlinkRefusal } from "../../../src/protocol/downlink-signature.ts";
import { encryptRun } from "../../../src/protocol/envelope.ts";
import { makeMessage } from "../../../src/protocol/messages.ts";
import type { RunSpec } from "../../../src/protocol/run-spec.ts";
import { readonlyTopic } from "../../../src/protocol/topics.ts";
import { ulid } from "../../../src/protocol/ulid.ts";
import { stopPid } from "../../../scripts/testenv/util.ts";
import { makeTestCa, signerOf, type Audience, type TestCa, type TestSigner } from "../../support/downlink-signer.ts";
import { dockerTestEnv, mqttTestEnv } from "../../support/env.ts";
import { ensureLauncherBuilt, LAUNCHER } from "../supervisor/harness.ts";
import { FakePollMothership } from "./fake-mothership.ts";

setDefaultTimeout(120_000);
const docker = dockerTestEnv();
const broker = mqttTestEnv();

type Rec = Record<string, unknown>;

class Launcher {
  private readonly dir = mkdtempSync(join(tmpdir(), "downlink-forgery-"));
  private readonly logFile = join(this.dir, "launcher.log");
  readonly proc: Bun.Subprocess;

  constructor(env: Record<string, string>) {
    const out = openSync(this.logFile, "a");
    this.proc = Bun.spawn([LAUNCHER], {
      stdout: out,
      stderr: out,
      stdin: "ignore",
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        DOCKER_HOST: docker!.host,
        SPACELIFT_LAUNCHER_SCRATCH_DIR: join(this.dir, "scratch"),
        SPACELIFT_INSTANCE_METADATA_ENDPOINT: "off",
        // Debug lines too: the quiet drop of a redelivery is one.
        SPACELIFT_DEBUG: "true",
        ...env,
      },
    });
  }

  records(): Rec[] {
    return readFileSync(this.logFile, "utf8").split("\n").flatMap((line) => {
      try {
        return [JSON.parse(line) as Rec];
      } catch {
        return [];
      }
    });
  }

  refusals(): Rec[] {
    return this.records().filter((r) => r.msg === "downlink message refused");
  }

  async stop(): Promise<void> {
    await stopPid(this.proc.pid, 20_000);
    await this.proc.exited;
    rmSync(this.dir, { recursive: true, force: true });
  }
}

async function waitFor<T>(what: string, probe: () => T | undefined | null | false | Promise<T | undefined | null | false>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(50);
  }
}

function spec(run: string, image: string): RunSpec {
  return {
    id: run,
    type: "PROPOSED",
    stack: { id: "stack-forgery", name: "forgery", labels: [], branch: "main", repository: "org/forgery", project_root: "" },
    commit: { hash: "", branch: "main", author: "", message: "" },
    runner_image: image,
    environment: [],
    phases: [{ name: "plan", commands: ["echo ran"] }],
  };
}

interface Forgery {
  what: string;
  run: string;
  wire: string;
  reason: DownlinkRefusal;
}

/** One schedule per way to forge it, each for a run of its own, with a real JWE to the pool certificate. */
async function forgeries(o: { aud: Audience; poolCert: string; image: string; trusted: TestCa; outsider: TestCa; pool: TestSigner }): Promise<Forgery[]> {
  const schedule = async () => {
    const run = ulid();
    return { run, message: makeMessage("schedule", { run, jwe: await encryptRun(spec(run, o.image), o.poolCert) }) };
  };
  const make = async (what: string, reason: DownlinkRefusal, wire: (m: Awaited<ReturnType<typeof schedule>>["message"]) => string): Promise<Forgery> => {
    const s = await schedule();
    return { what, run: s.run, wire: wire(s.message), reason };
  };
  return [
    await make("signed by a CA the launcher does not trust", "downlink-signer-untrusted", (m) => o.outsider.signer.sign(o.aud, m)),
    await make("signed with the pool's own key and certificate", "downlink-signer-purpose", (m) => o.pool.sign(o.aud, m)),
    await make("unsigned", "downlink-unsigned", (m) => JSON.stringify(m)),
    await make("expired", "downlink-expired", (m) => o.trusted.signer.sign(o.aud, m, Date.now() - 20 * 60_000)),
    await make("for another worker", "downlink-audience", (m) => o.trusted.signer.sign({ ...o.aud, worker: ulid() }, m)),
    await make("for another pool", "downlink-audience", (m) => o.trusted.signer.sign({ ...o.aud, pool: "01OTHERPOOL" }, m)),
  ];
}

/**
 * The scenario on one transport: `deliver` puts a wire payload on the worker's downlink, `accepted`
 * and `finished` read the launcher's uplink for a run.
 */
async function scenario(o: {
  launcher: Launcher;
  forged: Forgery[];
  legit: { run: string; wire: string; resigned: () => string };
  deliver: (wire: string) => Promise<void>;
  uplinked: (type: string, run: string) => Rec[];
  client: DockerClient;
}): Promise<void> {
  const { launcher, forged, legit } = o;
  for (const f of forged) await o.deliver(f.wire);
  await waitFor("every forgery refused", () => launcher.refusals().length >= forged.length);
  const refused = launcher.refusals();
  expect(refused.map((r) => [r.level, r.reason])).toEqual(forged.map((f) => ["warn", f.reason]));
  // The claimed run is not trusted, but the claimed type is logged.
  expect(refused.every((r) => r.type === "schedule")).toBe(true);

  // A schedule the mothership really signed runs: the checks above can fail.
  await o.deliver(legit.wire);
  const [finished] = await waitFor("the signed run finished", () => o.uplinked("run_finished", legit.run).length > 0 && o.uplinked("run_finished", legit.run));
  expect(finished).toMatchObject({ reason: "ok", exit_code: 0 });
  expect(o.uplinked("run_accepted", legit.run)).toHaveLength(1);
  // The same envelope again (a redelivery, or a replay of a captured one), then its id re-signed.
  await o.deliver(legit.wire);
  await o.deliver(legit.resigned());
  await waitFor("the replay refused", () => launcher.refusals().some((r) => r.reason === "downlink-replayed"));
  expect(launcher.records().some((r) => r.msg === "duplicate delivery of a downlink message dropped" && r.level === "debug")).toBe(true);
  await Bun.sleep(500);
  expect(o.uplinked("run_accepted", legit.run)).toHaveLength(1);
  expect(o.uplinked("run_rejected", legit.run)).toHaveLength(0);

  for (const f of forged) {
    expect([f.what, o.uplinked("run_accepted", f.run).length + o.uplinked("run_rejected", f.run).length]).toEqual([f.what, 0]);
    expect([f.what, (await o.client.containerList({ labels: { [LABEL_RUN]: f.run }, all: true })).length]).toEqual([f.what, 0]);
  }
  const accepted = launcher.records().filter((r) => r.msg === "run accepted").map((r) => r.run);
  expect(accepted).toEqual([legit.run]);
}

describe.skipIf(!docker)("forged downlink messages reach a real launcher", () => {
  let trusted: TestCa;
  let outsider: TestCa;
  let client: DockerClient;

  beforeAll(async () => {
    ensureLauncherBuilt();
    trusted = await makeTestCa("Forgery test CA");
    outsider = await makeTestCa("Outsider CA");
    client = createDockerClient({ host: docker!.host });
  });

  afterAll(async () => {
    await client?.close();
    await trusted?.remove();
    await outsider?.remove();
  });

  test("without SPACELIFT_WORKER_COMMS_INSECURE_HTTP a plain http:// comms URL stops the launcher at start: one line, nothing sent", async () => {
    const fake = new FakePollMothership();
    const poolSigner = await trusted.poolSigner("01PLAINHTTP");
    const env = {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      SPACELIFT_TOKEN: encodeToken({ version: 1, pool: "01PLAINHTTP", comms_url: fake.url, certificate: poolSigner.certificatePem, ca: trusted.caPem }),
      SPACELIFT_POOL_PRIVATE_KEY: Buffer.from(poolSigner.keyPem).toString("base64"),
      DOCKER_HOST: docker!.host,
    };
    try {
      for (const [extra, line] of [
        [{}, /^spacelift-launcher: SPACELIFT_TOKEN: has a plain http:\/\/ comms_url; .*SPACELIFT_WORKER_COMMS_INSECURE_HTTP=true/m],
        [{ SPACELIFT_WORKER_COMMS_URL: fake.url }, /^spacelift-launcher: SPACELIFT_WORKER_COMMS_URL: is a plain http:\/\/ URL; .*SPACELIFT_WORKER_COMMS_INSECURE_HTTP=true/m],
      ] as const) {
        const r = Bun.spawnSync([LAUNCHER], { env: { ...env, ...extra }, stdout: "pipe", stderr: "pipe" });
        expect(r.exitCode).toBe(1);
        const stderr = r.stderr.toString();
        expect(stderr).toMatch(line);
        expect(stderr.trim().split("\n")).toHaveLength(1);
      }
      expect(fake.uplink).toEqual([]);
    } finally {
      await fake.stop();
    }
  });

  test("over HTTP long-poll from a fake mothership on plain HTTP", async () => {
    const fake = new FakePollMothership();
    const pool = "01FORGERYPOLL";
    const poolSigner = await trusted.poolSigner(pool);
    const token = encodeToken({ version: 1, pool, comms_url: fake.url, certificate: poolSigner.certificatePem, ca: trusted.caPem });
    const launcher = new Launcher({
      SPACELIFT_TOKEN: token,
      SPACELIFT_POOL_PRIVATE_KEY: Buffer.from(poolSigner.keyPem).toString("base64"),
      SPACELIFT_WORKER_COMMS_INSECURE_HTTP: "true",
    });
    try {
      const worker = await waitFor("hello", () => fake.worker);
      const aud = { pool, worker };
      fake.push(trusted.signer.sign(aud, makeMessage("registered", { worker, pool, status: "IDLE", heartbeat_seconds: 30 })));
      const forged = await forgeries({ aud, poolCert: poolSigner.certificatePem, image: docker!.image, trusted, outsider, pool: poolSigner });
      const run = ulid();
      const message = makeMessage("schedule", { run, jwe: await encryptRun(spec(run, docker!.image), poolSigner.certificatePem) });
      await scenario({
        launcher,
        forged,
        legit: { run, wire: trusted.signer.sign(aud, message), resigned: () => trusted.signer.sign(aud, message) },
        deliver: async (wire) => fake.push(wire),
        uplinked: (type, r) => fake.sent(type, r).map((u) => u.message),
        client,
      });
    } finally {
      await launcher.stop();
      await fake.stop();
    }
  });

  test.skipIf(!broker)("over MQTT, published on the worker's topic through Mosquitto", async () => {
    const { url, ca, cert, key } = broker!;
    const tls = { ca: readFileSync(ca, "utf8"), cert: readFileSync(cert, "utf8"), key: readFileSync(key, "utf8") };
    const pool = `forgery-${ulid().slice(-8).toLowerCase()}`;
    // The broker's CA (for TLS) and our mothership CA (for the downlink signer) both travel in the token.
    const token = encodeToken({
      version: 1,
      pool,
      broker: { endpoint: url, namespace: "spacelift" },
      comms_url: "https://mothership.invalid",
      certificate: tls.cert,
      ca: tls.ca + trusted.caPem,
    });
    const mothership: MqttClient = await mqtt.connectAsync(url, { ...tls, servername: "localhost", reconnectPeriod: 0 });
    const uplink: Rec[] = [];
    mothership.on("message", (_topic, payload) => uplink.push(JSON.parse(payload.toString()) as Rec));
    await mothership.subscribeAsync(`spacelift/writeonly/${pool}/+`, { qos: 1 });
    const launcher = new Launcher({ SPACELIFT_TOKEN: token, SPACELIFT_POOL_PRIVATE_KEY: Buffer.from(tls.key).toString("base64") });
    try {
      const hello = await waitFor("hello", () => launcher.records().find((r) => r.msg === "connected to the broker") && uplink.find((m) => m.type === "hello"));
      const worker = String(launcher.records().find((r) => r.msg === "launcher starting")?.worker ?? "");
      expect(hello).toBeDefined();
      const aud = { pool, worker };
      const topic = readonlyTopic("spacelift", pool, worker);
      const deliver = async (wire: string) => void (await mothership.publishAsync(topic, wire, { qos: 1 }));
      await deliver(trusted.signer.sign(aud, makeMessage("registered", { worker, pool, status: "IDLE", heartbeat_seconds: 30 })));
      // The pool's own key and certificate: Mosquitto's client pair, which chains to a CA in the token.
      const forged = await forgeries({ aud, poolCert: tls.cert, image: docker!.image, trusted, outsider, pool: signerOf(tls.key, tls.cert) });
      const run = ulid();
      const message = makeMessage("schedule", { run, jwe: await encryptRun(spec(run, docker!.image), tls.cert) });
      await scenario({
        launcher,
        forged,
        legit: { run, wire: trusted.signer.sign(aud, message), resigned: () => trusted.signer.sign(aud, message) },
        deliver,
        uplinked: (type, r) => uplink.filter((m) => m.type === type && m.run === r),
        client,
      });
    } finally {
      await launcher.stop();
      await mothership.endAsync(true);
    }
  });
});
