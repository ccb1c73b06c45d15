import { expect, test } from "bun:test";
import { unknownVariables } from "../../../src/config/launcher-config.ts";
import { collectVcsMappings, metadataSlots, vcsSlots } from "../../../src/config/pattern-variables.ts";

test("metadata tags keep the key exactly as written after the prefix", () => {
  const slots = metadataSlots(["SPACELIFT_METADATA_instance_id", "SPACELIFT_METADATA_ASG_Name", "PATH"]);
  expect(slots.map((s) => s.variable)).toEqual(["SPACELIFT_METADATA_ASG_Name", "SPACELIFT_METADATA_instance_id"]);
  expect(slots.map((s) => s.parse("v"))).toEqual([
    { ok: true, value: { key: "ASG_Name", value: "v" } },
    { ok: true, value: { key: "instance_id", value: "v" } },
  ]);
  expect(slots[0]?.parse("  ").ok).toBe(false);
});

test("twelve VCS mappings pair up in numeric order (10 and 11 after 9, not after 1)", () => {
  const env: Record<string, string> = {};
  for (let n = 0; n < 12; n++) {
    env[`SPACELIFT_PRIVATEVCS_MAPPING_NAME_${n}`] = `pool${n}`;
    env[`SPACELIFT_PRIVATEVCS_MAPPING_BASE_ENDPOINT_${n}`] = `https://vcs${n}.internal/`;
  }
  const parts = vcsSlots(Object.keys(env)).map((slot) => {
    const r = slot.parse(env[slot.variable]);
    if (!r.ok) throw new Error(r.problems.join(" | "));
    return r.value;
  });
  const mappings = collectVcsMappings(parts);
  expect(mappings.map((m) => m.name)).toEqual(Array.from({ length: 12 }, (_, n) => `pool${n}`));
  expect(mappings[11]).toEqual({ name: "pool11", baseEndpoint: "https://vcs11.internal" });
});

test("a gap of several indexes reports each missing index once, on its NAME variable", () => {
  const slots = vcsSlots(["SPACELIFT_PRIVATEVCS_MAPPING_NAME_3", "SPACELIFT_PRIVATEVCS_MAPPING_BASE_ENDPOINT_3"]);
  const failing = slots.filter((s) => !s.parse(undefined).ok).map((s) => s.variable);
  expect(failing).toEqual([
    "SPACELIFT_PRIVATEVCS_MAPPING_NAME_0",
    "SPACELIFT_PRIVATEVCS_MAPPING_NAME_1",
    "SPACELIFT_PRIVATEVCS_MAPPING_NAME_2",
    // index 3 exists; parse(undefined) means "unset", which for a present variable never happens.
    "SPACELIFT_PRIVATEVCS_MAPPING_NAME_3",
    "SPACELIFT_PRIVATEVCS_MAPPING_BASE_ENDPOINT_3",
  ]);
});

test("unknownVariables lists SPACELIFT_* names the configuration does not know (typos)", () => {
  expect(
    unknownVariables({
      SPACELIFT_WORKER_NETWROK: "x",
      SPACELIFT_WORKER_NETWORK: "x",
      SPACELIFT_METADATA_anything: "x",
      SPACELIFT_PRIVATEVCS_MAPPING_NAME_0: "x",
      SPACELIFT_PRIVATEVCS_MAPPING_WHATEVER: "x",
      SPACELIFT_TOKN: "x",
      DOCKER_HOST: "x",
      HOME: "/root",
      SPACELIFT_UNSET: undefined,
    }),
  ).toEqual(["SPACELIFT_TOKN", "SPACELIFT_WORKER_NETWROK"]);
});
