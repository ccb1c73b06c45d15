/**
 * Sizes of the compiled binaries in dist/ (`make build` when missing), against an empty program compiled by
 * the same Bun: that one is the floor, the Bun runtime every executable carries (docs/performance.md).
 */
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { buildBinaries, dist } from "../demo/world.ts";
import { compiledFloor } from "./lib/proc.ts";
import { report } from "./lib/report.ts";

buildBinaries(() => undefined);
const floor = await compiledFloor();
const mb = (bytes: number) => bytes / 1048576;
for (const name of ["spacelift-launcher-x86_64", "spacelift-launcher-aarch64", "mothership-x86_64", "mothership-aarch64"]) {
  const file = join(dist, name);
  if (!existsSync(file)) continue;
  report({
    name: `binary size ${name}`,
    value: mb(statSync(file).size),
    unit: "MB",
    baseline: mb(floor.bytes),
    ...(name.startsWith("spacelift-launcher") ? { target: { max: 110 } } : {}),
    note: "baseline: an empty program compiled by the same Bun (x86_64)",
  });
}
