/**
 * A private Mosquitto (its own process on a free loopback port, never the shared test broker) on the
 * files `mothership broker-config mosquitto` wrote, and the mothership CLI that writes them. Stopped
 * by its PID.
 */
import { existsSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { stopPid } from "../../../scripts/testenv/util.ts";

// Not from ../mothership/harness.ts: that one loads the whole mothership, and the broker tests need none of it.
export const repoRoot = join(import.meta.dir, "../../..");

/** Polls `probe` until it returns something, or fails after `timeoutMs`. */
export async function waitFor<T>(what: string, probe: () => T | undefined | null | false, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(50);
  }
}

export const mosquittoInstalled = (): boolean => existsSync("/usr/sbin/mosquitto") || Bun.which("mosquitto") !== null;

/** A private Mosquitto on `mosquitto.conf` as `broker-config` wrote it. */
export class Mosquitto {
  proc: Bun.Subprocess | null = null;
  constructor(
    readonly conf: string,
    readonly port: number,
    readonly logFile: string,
  ) {}

  async start(): Promise<void> {
    const out = openSync(this.logFile, "a");
    this.proc = Bun.spawn(["mosquitto", "-c", this.conf], { stdout: out, stderr: out, stdin: "ignore" });
    await waitFor("mosquitto listening", () => readFileSync(this.logFile, "utf8").split("\n").filter((l) => l.includes(" running")).length > this.starts, 10_000);
    this.starts++;
  }

  private starts = 0;

  get pid(): number {
    if (!this.proc) throw new Error("mosquitto is not running");
    return this.proc.pid;
  }

  /** SIGKILL: no goodbye to anyone, nothing saved. */
  async kill(): Promise<void> {
    if (!this.proc) return;
    this.proc.kill("SIGKILL");
    await this.proc.exited;
    this.proc = null;
  }

  async stop(): Promise<void> {
    if (!this.proc) return;
    await stopPid(this.proc.pid, 5_000);
    await this.proc.exited;
    this.proc = null;
  }

  log(): string {
    return readFileSync(this.logFile, "utf8");
  }
}

/** `bun src/mothership/main.ts ARGS`, to its end. */
export async function mothershipCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn([process.execPath, join(repoRoot, "src/mothership/main.ts"), ...args], { stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}
