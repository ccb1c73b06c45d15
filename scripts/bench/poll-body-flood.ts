/**
 * The mothership under a flood of unauthenticated long-poll bodies: a `mothership serve` child process
 * (the compiled binary in dist/ when there is one, else `bun src/mothership/main.ts`) gets bursts of 6
 * parallel 100 MB POSTs to /api/v1/comms/uplink without a signature, once with a Content-Length and once
 * chunked. Reported: its RSS idle and at the peak of each burst, as a ratio to idle (target: under
 * 1.5x; a server that reads a body before checking who sent it grows by the whole burst), and how long
 * the answers took. The bodies come from one reused 1 MiB buffer over raw TLS sockets, so the client
 * costs nothing worth counting.
 *   bun scripts/bench/poll-body-flood.ts        BENCH_FLOOD_MB=100 BENCH_FLOOD_PARALLEL=6
 * BENCH_MOTHERSHIP=path runs another mothership instead (an executable, or a `main.ts` run with bun),
 * e.g. one built from an older commit, to compare.
 */
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "node:tls";
import { rssMb } from "./lib/proc.ts";
import { report } from "./lib/report.ts";

const repoRoot = join(import.meta.dir, "../..");
const MB = Number(process.env.BENCH_FLOOD_MB ?? 100);
const PARALLEL = Number(process.env.BENCH_FLOOD_PARALLEL ?? 6);
const arch = process.arch === "arm64" ? "aarch64" : "x86_64";
const compiled = join(repoRoot, "dist", `mothership-${arch}`);

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** One POST of `total` bytes; resolves with the status code (0 when the connection closed first) and bytes written. */
function flood(port: number, ca: string, total: number, chunked: boolean): Promise<{ status: number; sent: number }> {
  return new Promise((resolve) => {
    const s = connect({ host: "127.0.0.1", port, ca, servername: "localhost" });
    const chunk = Buffer.alloc(1 << 20, 0x61);
    let sent = 0;
    let answer = "";
    const done = () => resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0), sent });
    s.once("secureConnect", () => {
      const framing = chunked ? "Transfer-Encoding: chunked" : `Content-Length: ${total}`;
      s.write(`POST /api/v1/comms/uplink HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\n${framing}\r\n\r\n`);
      const pump = () => {
        while (sent < total && !s.destroyed && answer === "") {
          sent += chunk.length;
          if (chunked) s.write(`${chunk.length.toString(16)}\r\n`);
          let ok = s.write(chunk);
          if (chunked) ok = s.write("\r\n");
          if (!ok) return void s.once("drain", pump);
        }
        if (chunked && sent >= total) s.write("0\r\n\r\n");
      };
      pump();
    });
    s.on("data", (d: Buffer) => {
      answer += d.toString("latin1");
      if (answer.includes("\r\n\r\n")) s.destroy();
    });
    s.on("error", () => {});
    s.on("close", done);
  });
}

const dir = mkdtempSync(join(tmpdir(), "bench-flood-"));
const http = await freePort();
const mqtt = await freePort();
const chosen = process.env.BENCH_MOTHERSHIP;
const cmd = chosen
  ? chosen.endsWith(".ts") ? [process.execPath, chosen] : [chosen]
  : existsSync(compiled) ? [compiled] : [process.execPath, join(repoRoot, "src/mothership/main.ts")];
const logFile = join(dir, "mothership.log");
const out = openSync(logFile, "a");
const proc = Bun.spawn([...cmd, "serve", "--data", join(dir, "data"), "--http", `127.0.0.1:${http}`, "--mqtt", `127.0.0.1:${mqtt}`], { stdout: out, stderr: out, stdin: "ignore" });
let failed = false;
try {
  const deadline = Date.now() + 20_000;
  while (!readFileSync(logFile, "utf8").includes("mothership ready")) {
    if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`mothership did not start:\n${readFileSync(logFile, "utf8")}`);
    await Bun.sleep(50);
  }
  const ca = readFileSync(join(dir, "data", "ca", "ca.crt"), "utf8");
  await Bun.sleep(2_000);
  const idle = rssMb(proc.pid) ?? NaN;
  console.log(`mothership (${cmd.join(" ")}), ${PARALLEL} parallel unsigned POSTs of ${MB} MB each`);
  report({ name: "mothership RSS idle", value: idle, unit: "MB", note: "a fresh data dir, no pool" });
  for (const chunked of [false, true]) {
    let peak = idle;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peak = Math.max(peak, rssMb(proc.pid) ?? 0);
        await Bun.sleep(10);
      }
    })();
    const t = performance.now();
    const answers = await Promise.all(Array.from({ length: PARALLEL }, () => flood(http, ca, MB * 1024 * 1024, chunked)));
    const ms = performance.now() - t;
    sampling = false;
    await sampler;
    const statuses = [...new Set(answers.map((a) => a.status))].join(",");
    const sentMb = answers.reduce((n, a) => n + a.sent, 0) / 1024 / 1024;
    const label = chunked ? "chunked" : "Content-Length";
    report({
      name: `mothership RSS peak, unsigned ${MB} MB bodies x${PARALLEL} (${label})`,
      value: peak,
      unit: "MB",
      baseline: idle,
      target: { maxRatio: 1.5 },
      note: "baseline: the same mothership idle; a server that reads a body before checking who sent it grows by the whole burst",
    });
    report({
      name: `mothership rejects the burst (${label})`,
      value: ms,
      unit: "ms",
      target: { max: 5_000 },
      note: `answered ${statuses}; ${sentMb.toFixed(0)} of ${MB * PARALLEL} MB written before the answers`,
    });
  }
} catch (err) {
  failed = true;
  console.error(`poll-body-flood bench failed: ${err instanceof Error ? err.message : String(err)}`);
  console.error(readFileSync(logFile, "utf8").split("\n").slice(-15).join("\n"));
} finally {
  proc.kill("SIGTERM");
  await proc.exited;
  rmSync(dir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
