/**
 * A scripted stand-in for the Docker Engine, for behaviour a real daemon will not show on demand: a pull
 * that stalls, an error inside a 200 progress stream, a connection cut mid-stream. It answers `/_ping`
 * (API 1.41) itself and hands every other request to the test's handler. It listens on a unix socket in a
 * temp dir or on 127.0.0.1 port 0 (loopback only); close() cuts open connections and removes the dir.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export interface FakeEngine {
  /** The DOCKER_HOST value to reach it. */
  host: string;
  /** Requests seen, as "METHOD /path?query" (pings excluded). */
  requests: string[];
  close(): Promise<void>;
}

export const FAKE_API_VERSION = "1.41";

export async function fakeEngine(handler: Handler, on: "unix" | "tcp" = "unix"): Promise<FakeEngine> {
  const requests: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    if (req.url === "/_ping") {
      res.writeHead(200, { "api-version": FAKE_API_VERSION, "content-type": "text/plain" });
      res.end("OK");
      return;
    }
    requests.push(`${req.method} ${req.url}`);
    handler(req, res);
  });
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  const dir = on === "unix" ? mkdtempSync(join(tmpdir(), "slwp-fake-engine-")) : undefined;
  const host = await new Promise<string>((resolve, reject) => {
    server.once("error", reject);
    if (dir) {
      const path = join(dir, "docker.sock");
      server.listen(path, () => resolve(`unix://${path}`));
    } else {
      server.listen(0, "127.0.0.1", () => {
        const addr = server.address();
        resolve(`tcp://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`);
      });
    }
  });
  return {
    host,
    requests,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** One JSON progress line as Docker writes them during a pull. */
export function progressLine(event: object): string {
  return `${JSON.stringify(event)}\r\n`;
}

/** A frame of Docker's multiplexed stream. */
export function muxFrame(stream: 1 | 2, text: string): Buffer {
  const data = Buffer.from(text);
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(data.length, 4);
  return Buffer.concat([header, data]);
}
