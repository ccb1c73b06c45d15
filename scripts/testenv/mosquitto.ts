/**
 * A Mosquitto broker for the tests on a loopback port, with TLS and client certificates
 * (`require_certificate true`, `use_identity_as_username true`). Certificates are made with openssl.
 */
import { spawn } from "node:child_process";
import { mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:tls";
import { join } from "node:path";
import { freePort, sh, stopPid, waitFor } from "./util.ts";

export interface MosquittoEnv {
  url: string; // mqtts://127.0.0.1:PORT
  ca: string; // paths to PEM files
  cert: string;
  key: string;
  pid?: number;
}

/** Reuse a broker described by the TEST_MQTT_* variables when all of them are set. */
export function mosquittoFromEnv(env: NodeJS.ProcessEnv): MosquittoEnv | undefined {
  const { TEST_MQTT_URL: url, TEST_MQTT_CA: ca, TEST_MQTT_CERT: cert, TEST_MQTT_KEY: key } = env;
  if (url && ca && cert && key) return { url, ca, cert, key };
  return undefined;
}

function makeCertificates(dir: string): { ca: string; serverCert: string; serverKey: string; cert: string; key: string } {
  const p = (name: string) => join(dir, name);
  sh("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
    "-keyout", p("ca.key"), "-out", p("ca.pem")]);
  writeFileSync(p("server.ext"), "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
  writeFileSync(p("client.ext"), "extendedKeyUsage=clientAuth\n");
  for (const [name, cn, ext] of [["server", "localhost", "server.ext"], ["client", "test-client", "client.ext"]] as const) {
    sh("openssl", ["req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", `/CN=${cn}`,
      "-keyout", p(`${name}.key`), "-out", p(`${name}.csr`)]);
    sh("openssl", ["x509", "-req", "-in", p(`${name}.csr`), "-CA", p("ca.pem"), "-CAkey", p("ca.key"),
      "-CAcreateserial", "-days", "2", "-extfile", p(ext), "-out", p(`${name}.pem`)]);
  }
  return { ca: p("ca.pem"), serverCert: p("server.pem"), serverKey: p("server.key"), cert: p("client.pem"), key: p("client.key") };
}

export async function startPrivateMosquitto(stateDir: string, log: (m: string) => void): Promise<MosquittoEnv> {
  const dir = join(stateDir, "mosquitto");
  mkdirSync(dir, { recursive: true });
  const certs = makeCertificates(dir);
  const port = await freePort();
  const conf = join(dir, "mosquitto.conf");
  writeFileSync(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      `cafile ${certs.ca}`,
      `certfile ${certs.serverCert}`,
      `keyfile ${certs.serverKey}`,
      "require_certificate true",
      "use_identity_as_username true",
      "allow_anonymous false",
      "persistence false",
      "log_dest stderr",
      // As root, mosquitto drops to its own user, which cannot read our 0600 test keys.
      ...(process.getuid?.() === 0 ? ["user root"] : []),
      "",
    ].join("\n"),
  );
  const out = openSync(join(dir, "mosquitto.log"), "a");
  const child = spawn("mosquitto", ["-c", conf], { detached: true, stdio: ["ignore", out, out] });
  child.unref();
  log(`starting a private mosquitto (pid ${child.pid}) on 127.0.0.1:${port}`);
  const env: MosquittoEnv = { url: `mqtts://127.0.0.1:${port}`, ca: certs.ca, cert: certs.cert, key: certs.key, pid: child.pid! };
  try {
    await waitFor("mosquitto", 15_000, async () => {
      if (child.exitCode !== null) throw new Error(`mosquitto exited with code ${child.exitCode}`);
      return await tlsHandshake(env);
    });
  } catch (err) {
    const tail = readFileSync(join(dir, "mosquitto.log"), "utf8").split("\n").slice(-10).join("\n");
    throw new Error(`${(err as Error).message}; mosquitto log:\n${tail}`);
  }
  return env;
}

/** True when a mutual-TLS handshake with the broker succeeds. */
function tlsHandshake(env: MosquittoEnv): Promise<boolean> {
  const url = new URL(env.url);
  return new Promise((resolve) => {
    const socket = connect({
      host: url.hostname,
      port: Number(url.port),
      ca: readFileSync(env.ca),
      cert: readFileSync(env.cert),
      key: readFileSync(env.key),
      servername: "localhost",
    });
    socket.once("secureConnect", () => {
      socket.end();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

export async function stopPrivateMosquitto(env: MosquittoEnv): Promise<void> {
  if (env.pid !== undefined) await stopPid(env.pid, 5_000);
}
