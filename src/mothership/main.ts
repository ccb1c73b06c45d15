/** `mothership`: the control plane. Commands arrive with the control-plane release; today it reports its version. */
import "reflect-metadata";
import { versionLine } from "../version.ts";

if (import.meta.main) {
  const [command] = process.argv.slice(2);
  if (command === "version" || command === "--version") {
    console.log(versionLine("mothership"));
  } else {
    console.error("mothership: only `mothership version` is available in this build");
    process.exitCode = 2;
  }
}
