/**
 * What the deployment tests (test/deploy/) run: `aws` (the CLI against the stand-ins), `kubectl`
 * (kustomize), shellcheck, gpg, jq, curl and the util-linux/passwd tools the boot script and its
 * sandbox use. A command already on PATH is used as it is (e.g. an `aws` CLI installed with pip);
 * otherwise the Debian package that has it is installed like the rest of the test environment.
 */
import { spawnSync } from "node:child_process";
import { ensurePackages } from "./packages.ts";

/** Command -> the Debian package that provides it. */
const COMMANDS: Record<string, string> = {
  aws: "awscli",
  kubectl: "kubernetes-client",
  shellcheck: "shellcheck",
  gpg: "gpg",
  gpgv: "gpgv",
  jq: "jq",
  curl: "curl",
  "systemd-analyze": "systemd",
  unshare: "util-linux",
  setpriv: "util-linux",
  useradd: "passwd",
  "update-ca-certificates": "ca-certificates",
};

export function onPath(command: string): boolean {
  return spawnSync("sh", ["-c", 'command -v "$1"', "sh", command], { stdio: "ignore" }).status === 0;
}

/** The commands of `names` (default: all of them) that are not on PATH. */
export function missingDeployTools(names: readonly string[] = Object.keys(COMMANDS)): string[] {
  return names.filter((name) => !onPath(name));
}

export function ensureDeployTools(log: (msg: string) => void): void {
  const packages = [...new Set(missingDeployTools().map((name) => COMMANDS[name]!))];
  if (packages.length > 0) ensurePackages(packages, log);
}
