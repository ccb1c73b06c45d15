// Replicas on an external broker: the replica id (flag, variable, or made once and kept in the data
// dir, the same for two processes starting on it at once), and the presence messages a replica reads
// from the broker (bounded, validated, anything else ignored).
import "reflect-metadata";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parsePresence, presencePayload, presenceTopic, sharedUplinkFilter } from "../../../src/mothership/broker-replicas.ts";
import { parseArgs } from "../../../src/mothership/cli/args.ts";
import { resolveReplicaId } from "../../../src/mothership/replica-id.ts";
import { SERVE_FLAGS, serveConfigFromArgs } from "../../../src/mothership/serve-config.ts";

let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "broker-replicas-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("the replica id", () => {
  const settings = (argv: string[], env: Record<string, string> = {}) => serveConfigFromArgs(parseArgs(argv, SERVE_FLAGS), env);
  const broker = ["--broker", "mqtts://mq.example.com:8883"];

  test("--replica-id, else MOTHERSHIP_REPLICA_ID; only with --broker; letters, digits, _ . - up to 64", () => {
    expect(settings([...broker, "--replica-id", "web-1.eu_west"]).externalBroker?.replicaId).toBe("web-1.eu_west");
    expect(settings(broker, { MOTHERSHIP_REPLICA_ID: "from-env" }).externalBroker?.replicaId).toBe("from-env");
    expect(settings([...broker, "--replica-id", "flag"], { MOTHERSHIP_REPLICA_ID: "env" }).externalBroker?.replicaId).toBe("flag");
    expect(settings(broker).externalBroker?.replicaId).toBeUndefined();
    expect(settings([...broker, "--replica-id", "x".repeat(64)]).externalBroker?.replicaId).toHaveLength(64);
    for (const bad of ["x".repeat(65), "a/b", "a+b", "#", "a b", ""]) expect(() => settings([...broker, "--replica-id", bad])).toThrow("--replica-id");
    expect(() => settings(broker, { MOTHERSHIP_REPLICA_ID: "a/b" })).toThrow("MOTHERSHIP_REPLICA_ID");
    expect(() => settings(["--replica-id", "r1"])).toThrow("goes with --broker");
  });

  test("made once per data dir (0600), kept across starts, one for two processes starting at once", async () => {
    const data = join(dir, "data");
    await mkdir(data, { recursive: true });
    const both = await Promise.all([resolveReplicaId(data, undefined), resolveReplicaId(data, undefined)]);
    expect(both[0]).toBe(both[1]);
    expect(both[0]).toMatch(/^[A-Za-z0-9_.-]{1,64}$/);
    expect(await resolveReplicaId(data, undefined)).toBe(both[0]);
    expect((await readFile(join(data, "replica-id"), "utf8")).trim()).toBe(both[0]);
    expect((await stat(join(data, "replica-id"))).mode & 0o777).toBe(0o600);
    expect(await resolveReplicaId(data, "given")).toBe("given");
    await writeFile(join(data, "replica-id"), "not/an id\n");
    expect(await resolveReplicaId(data, undefined).then(() => "", (err: unknown) => String(err))).toContain("must hold a replica id");
  });
});

describe("presence messages", () => {
  const ns = "spacelift";
  const instance = "0123456789abcdef";

  test("the shared subscription and presence topics", () => {
    expect(sharedUplinkFilter(ns)).toBe("$share/mothership-spacelift/spacelift/writeonly/+/+");
    expect(presenceTopic(ns, "r1")).toBe("spacelift/replicas/r1");
  });

  test("read back as written; a cleared, malformed or oversized one is no marker; other topics are not presence", () => {
    expect(parsePresence(ns, "spacelift/replicas/r1", presencePayload({ state: "down", instance }))).toEqual({ replica: "r1", presence: { state: "down", instance } });
    expect(parsePresence(ns, "spacelift/replicas/r1", Buffer.alloc(0))).toEqual({ replica: "r1", presence: null });
    for (const bad of ['{"state":"gone","instance":"0123456789abcdef"}', '{"state":"up","instance":"XYZ"}', "not json", "null", JSON.stringify({ state: "up", instance, pad: "x".repeat(300) })]) {
      expect(parsePresence(ns, "spacelift/replicas/r1", Buffer.from(bad))).toEqual({ replica: "r1", presence: null });
    }
    expect(parsePresence(ns, "spacelift/replicas/a+b", presencePayload({ state: "up", instance }))).toBeNull();
    expect(parsePresence(ns, "spacelift/writeonly/p/w", presencePayload({ state: "up", instance }))).toBeNull();
    expect(parsePresence(ns, "other/replicas/r1", presencePayload({ state: "up", instance }))).toBeNull();
  });
});
