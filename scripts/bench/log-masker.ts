// Micro benchmark of the streaming log masker: MB/s with 20 secrets against a plain copy of the
// same chunks. Usage: bun scripts/bench/log-masker.ts [total MB, default 200] [chunk KB, default 64]
import { LogMasker } from "../../src/launcher/log-masker.ts";
import { report } from "./lib/report.ts";

const totalMb = Number(process.argv[2] ?? 200);
const chunkKb = Number(process.argv[3] ?? 64);
const chunkSize = chunkKb * 1024;
const chunks = Math.ceil((totalMb * 1024 * 1024) / chunkSize);

// Realistic secrets: tokens, passwords and one multi-line key, 8 to 120 bytes.
const secrets = Array.from({ length: 19 }, (_, i) => `secret-${i}-${"x".repeat(8 + i * 5)}-${i.toString(36)}`);
secrets.push("-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\n-----END KEY-----");

// Log-like text; every chunk holds one secret, and one secret is split across each chunk boundary.
const line = "2024-05-01T12:00:00Z INFO terraform: aws_instance.web: Still creating... [10s elapsed]\n";
const base = Buffer.from(line.repeat(Math.ceil(chunkSize / line.length))).subarray(0, chunkSize);
const data: Buffer[] = [];
for (let i = 0; i < 16; i++) {
  const chunk = Buffer.from(base);
  chunk.write(secrets[i % secrets.length]!, 1000);
  const edge = secrets[(i + 7) % secrets.length]!;
  chunk.write(edge, chunkSize - Math.floor(edge.length / 2));
  data.push(chunk);
}

function run(label: string, step: (chunk: Buffer) => number): number {
  const start = performance.now();
  let bytes = 0;
  for (let i = 0; i < chunks; i++) bytes += step(data[i % data.length]!);
  const seconds = (performance.now() - start) / 1000;
  const mbps = (chunks * chunkSize) / 1024 / 1024 / seconds;
  console.log(`${label.padEnd(28)} ${mbps.toFixed(0).padStart(6)} MB/s  (${(bytes / 1024 / 1024).toFixed(0)} MB out)`);
  return mbps;
}

const copy = run("plain copy", (chunk) => Buffer.from(chunk).length);
const masker = new LogMasker(secrets);
const masked = run(`masker, ${secrets.length} secrets`, (chunk) => masker.write(chunk).length);
report({ name: "log masker, 20 secrets", value: masked, unit: "MB/s", baseline: copy, note: `${totalMb} MB in ${chunkKb} KiB chunks; baseline: a plain copy of the same chunks` });
