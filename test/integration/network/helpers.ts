// Network parts for the launcher's network tests: a CONNECT proxy that counts its tunnels, a
// TLS-terminating reverse proxy whose certificate comes from a CA of its own, and pool keys and CSRs
// made with openssl as an operator makes them.
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, connect, type AddressInfo, type Server, type Socket } from "node:net";
import { join } from "node:path";

export interface ConnectProxy {
  readonly url: string;
  /** host:port of every tunnel opened, in order. */
  readonly tunnels: string[];
  close(): Promise<void>;
}

/** A minimal HTTP CONNECT proxy on loopback (what a corporate proxy does for TLS traffic). */
export async function startConnectProxy(): Promise<ConnectProxy> {
  const tunnels: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on("close", () => sockets.delete(client));
    client.on("error", () => client.destroy());
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      client.off("data", onData);
      const m = /^CONNECT ([^\s:]+|\[[^\]]+\]):(\d+) HTTP\/1\.[01]\r\n/.exec(head.toString("latin1"));
      if (!m) return void client.end("HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n");
      const host = m[1]!.replace(/^\[|\]$/g, "");
      tunnels.push(`${host}:${m[2]}`);
      const upstream = connect(Number(m[2]), host, () => {
        client.write("HTTP/1.1 200 Connection established\r\n\r\n");
        const rest = head.subarray(end + 4);
        if (rest.length > 0) upstream.write(rest);
        upstream.pipe(client);
        client.pipe(upstream);
      });
      sockets.add(upstream);
      upstream.on("close", () => sockets.delete(upstream));
      upstream.on("error", () => client.destroy());
    };
    client.on("data", onData);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    tunnels,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function openssl(dir: string, args: string[]): void {
  const r = spawnSync("openssl", args, { cwd: dir, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`openssl ${args.join(" ")} failed: ${r.stderr}`);
}

/** A CA of its own (not the mothership's) and a server certificate for 127.0.0.1 from it. */
export function makeForeignCa(dir: string): { caPem: string; certPem: string; keyPem: string } {
  openssl(dir, ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "corp-ca.key", "-out", "corp-ca.pem", "-days", "2", "-subj", "/CN=Corporate Test Root CA"]);
  openssl(dir, ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "lb.key", "-out", "lb.csr", "-subj", "/CN=127.0.0.1"]);
  const ext = join(dir, "lb.ext");
  writeFileSync(ext, "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n");
  openssl(dir, ["x509", "-req", "-in", "lb.csr", "-CA", "corp-ca.pem", "-CAkey", "corp-ca.key", "-CAcreateserial", "-out", "lb.pem", "-days", "1", "-extfile", "lb.ext"]);
  const read = (name: string) => readFileSync(join(dir, name), "utf8");
  return { caPem: read("corp-ca.pem"), certPem: read("lb.pem"), keyPem: read("lb.key") };
}

/**
 * A TLS-terminating reverse proxy (a load balancer in front of the mothership) with a certificate
 * from `makeForeignCa`: requests are passed on to `upstream` over https trusting `upstreamCa`.
 */
export function startTlsReverseProxy(cert: { certPem: string; keyPem: string }, upstream: string, upstreamCa: string): { url: string; requests: () => number; stop: () => void } {
  let requests = 0;
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    tls: { cert: cert.certPem, key: cert.keyPem },
    // Long-polls wait up to 25 s.
    idleTimeout: 60,
    async fetch(req) {
      requests += 1;
      const url = new URL(req.url);
      const headers = new Headers(req.headers);
      headers.delete("host");
      const body = req.method === "GET" || req.method === "HEAD" ? undefined : await req.arrayBuffer();
      const res = await fetch(`${upstream}${url.pathname}${url.search}`, { method: req.method, headers, body, tls: { ca: upstreamCa }, proxy: false });
      return new Response(await res.arrayBuffer(), { status: res.status, headers: res.headers });
    },
  });
  return { url: `https://127.0.0.1:${server.port}`, requests: () => requests, stop: () => void server.stop(true) };
}

/** A new pool key and CSR, as for `mothership pool reset`: the paths. */
export function newKeyAndCsr(dir: string, name: string): { key: string; csr: string } {
  openssl(dir, ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${name}`]);
  return { key: join(dir, `${name}.key`), csr: join(dir, `${name}.csr`) };
}

/**
 * Copies of the compiled binaries (`make build` or `bun build/build.ts` first), so that a rebuild of
 * dist/ while the tests run does not swap the executable under them. Built first when missing.
 * they are not built yet (then they are built first).
 */
export function snapshotBinaries(dir: string): { mothership: string; launcher: string } {
  const arch = process.arch === "arm64" ? "aarch64" : "x86_64";
  const dist = join(import.meta.dir, "../../../dist");
  const out = { mothership: join(dir, "mothership"), launcher: join(dir, "spacelift-launcher") };
  if (!existsSync(join(dist, `spacelift-launcher-${arch}`)) || !existsSync(join(dist, `mothership-${arch}`))) {
    spawnSync(process.execPath, ["build/build.ts", "--target", arch], { cwd: join(dist, ".."), stdio: "inherit" });
  }
  copyFileSync(join(dist, `mothership-${arch}`), out.mothership);
  copyFileSync(join(dist, `spacelift-launcher-${arch}`), out.launcher);
  chmodSync(out.mothership, 0o755);
  chmodSync(out.launcher, 0o755);
  return out;
}
