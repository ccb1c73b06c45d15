/**
 * The embedded MQTT broker (Aedes on node:tls). Every connection is mutual TLS with a certificate
 * from our CA; the certificate's CN names the pool, and the pool's current serial must match (a reset
 * pool's old certificate is refused). The client id must be `<pool>.<worker>` with the certificate's
 * pool (so one pool can never take over another pool's connection, which a broker does by client id),
 * and a Last Will, if any, must be that worker's own writeonly topic. ACLs: a client publishes only on
 * `<ns>/writeonly/<pool>/<worker>` and subscribes only to `<ns>/readonly/<pool>/<worker>` of its client
 * id. A packet larger than `maxPacketBytes` drops its connection before it is buffered.
 *
 * The mothership itself is not an MQTT client: it subscribes and publishes in-process. Topics stay
 * in here: the control plane hears (pool, worker, payload) and hands messages to `deliver(pool,
 * worker, message)` (an Outbox, outbox.ts). `mqtt`-family imports of the embedded broker stay in this file.
 */
import { Aedes, type AedesPublishPacket, type AuthenticateError, type Client, type PublishPacket } from "aedes";
import { createServer, type Server, type TLSSocket } from "node:tls";
import type { AddressInfo } from "node:net";
import { SpaceliftError } from "../errors.ts";
import type { Logger } from "../log/logger.ts";
import { normalizeSerial } from "../pki/der.ts";
import { allWriteonlyFilter, parseTopic, readonlyTopic, workerOfClientId, writeonlyTopic } from "../protocol/topics.ts";
import { MAX_MQTT_PACKET_BYTES, PacketSizeGuard } from "./mqtt-packet-limit.ts";
import type { Outbox } from "./outbox.ts";

export interface BrokerOptions {
  host: string;
  port: number;
  namespace: string;
  caPem: string;
  serverCertPem: string;
  serverKeyPem: string;
  /** True when `serial` is the live certificate of `pool` (pool exists, serial not revoked). */
  isCertificateValid(pool: string, serial: string): Promise<boolean>;
  /** Every message launchers publish on their writeonly topics, in arrival order per connection. */
  onUplink(pool: string, worker: string, payload: Buffer): void;
  /** Largest MQTT packet (remaining length) a client may send; default MAX_MQTT_PACKET_BYTES (1 MiB). */
  maxPacketBytes?: number;
  logger: Logger;
}

export interface Broker extends Outbox {
  readonly port: number;
  /** Closes every connection of `pool` (after a reset or delete its certificate is no longer valid). */
  disconnectPool(pool: string): void;
  connectedClients(): number;
  close(): Promise<void>;
}

interface Identity {
  pool: string;
  serial: string;
  worker: string;
}

function authError(message: string): AuthenticateError {
  // 5 = CONNACK "not authorized" (MQTT 3.1.1 §3.2.2.3).
  return Object.assign(new Error(message), { returnCode: 5 }) as AuthenticateError;
}

export async function startBroker(opts: BrokerOptions): Promise<Broker> {
  const log = opts.logger.child({ component: "broker" });
  const identities = new WeakMap<Client, Identity>();
  // The Last Will topic of each CONNECT (null: none), kept from preConnect for authenticate to check.
  const wills = new WeakMap<Client, string | null>();
  const clients = new Set<Client>();
  // Set while closing: the broker then publishes the Last Will of every client it drops, and
  // those must not be read as launchers crashing (they will reconnect to the next process).
  let closing = false;

  /** The checks after the certificate's: client id and Last Will of that pool's worker. */
  function admit(client: Client, pool: string, serial: string, done: (err: AuthenticateError | null, success: boolean | null) => void): void {
    // Checked before Aedes registers the client, which is when it would drop an older one of that id.
    const worker = workerOfClientId(pool, client.id);
    if (!worker) {
      log.warn("client id not of the certificate's pool refused", { pool, client: client.id });
      done(authError("the client id must be <pool>.<worker> with the pool of the certificate"), false);
      return;
    }
    const will = wills.get(client) ?? null;
    if (will !== null && will !== writeonlyTopic(opts.namespace, pool, worker)) {
      log.warn("Last Will on another topic than the worker's own refused", { pool, worker, topic: will });
      done(authError("the Last Will must be the worker's own writeonly topic"), false);
      return;
    }
    identities.set(client, { pool, serial, worker });
    done(null, true);
  }

  const aedes = await Aedes.createBroker({
    // A launcher's message is small; a pool that floods us is cut off rather than buffered forever.
    queueLimit: 1000,
    preConnect(client, packet, done) {
      wills.set(client, packet.will ? packet.will.topic : null);
      done(null, true);
    },
    authenticate(client, _username, _password, done) {
      const socket = client.conn as TLSSocket;
      const cert = typeof socket.getPeerCertificate === "function" ? socket.getPeerCertificate() : null;
      const pool = cert && typeof cert.subject?.CN === "string" ? cert.subject.CN : "";
      const serial = cert?.serialNumber ? normalizeSerial(cert.serialNumber) : "";
      if (!pool || !serial || !socket.authorized) {
        log.warn("connection without a valid client certificate refused", { client: client.id });
        done(authError("client certificate required"), false);
        return;
      }
      opts.isCertificateValid(pool, serial).then(
        (valid) => {
          if (!valid) {
            log.warn("revoked or unknown pool certificate refused", { pool, serial });
            done(authError("certificate revoked or pool unknown"), false);
            return;
          }
          admit(client, pool, serial, done);
        },
        (err: unknown) => {
          log.error("pool certificate could not be checked; connection refused", { pool, error: err });
          done(authError("the mothership cannot check certificates now; retry later"), false);
        },
      );
    },
    authorizePublish(client, packet, callback) {
      // Broker-originated messages (client null) are the mothership's own.
      if (client === null) return callback(null);
      // Its Last Will comes here too, when the broker publishes it.
      const id = identities.get(client);
      if (!id || packet.topic !== writeonlyTopic(opts.namespace, id.pool, id.worker)) {
        log.warn("publish outside the worker's own writeonly topic refused", { pool: id?.pool, worker: id?.worker, topic: packet.topic });
        return callback(new Error("not authorized"));
      }
      callback(null);
    },
    authorizeSubscribe(client, sub, callback) {
      const id = identities.get(client);
      // Exactly the worker's own topic: a wildcard is no topic of a worker.
      if (!id || sub.topic !== readonlyTopic(opts.namespace, id.pool, id.worker)) {
        log.warn("subscription outside the worker's own readonly topic refused", { pool: id?.pool, worker: id?.worker, topic: sub.topic });
        return callback(null, null);
      }
      callback(null, sub);
    },
  });

  aedes.on("client", (c) => clients.add(c));
  aedes.on("clientDisconnect", (c) => clients.delete(c));
  aedes.on("clientError", (c, err) => log.debug("client error", { client: c.id, error: err.message }));
  aedes.on("connectionError", (_c, err) => log.debug("connection error", { error: err.message }));

  await new Promise<void>((resolve) => {
    aedes.subscribe(
      allWriteonlyFilter(opts.namespace),
      (packet: AedesPublishPacket, cb: () => void) => {
        const addr = parseTopic(packet.topic);
        if (addr && addr.direction === "writeonly" && addr.namespace === opts.namespace && !closing) {
          try {
            opts.onUplink(addr.pool, addr.worker, Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload));
          } catch (err) {
            log.error("uplink handler failed", { topic: packet.topic, error: err });
          }
        }
        cb();
      },
      resolve,
    );
  });

  const server: Server = createServer(
    {
      cert: opts.serverCertPem,
      key: opts.serverKeyPem,
      ca: [opts.caPem],
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: "TLSv1.2",
    },
    (socket) => {
      const guard = new PacketSizeGuard(opts.maxPacketBytes ?? MAX_MQTT_PACKET_BYTES);
      const client = aedes.handle(socket);
      readsEverything(socket, (chunk) => {
        const problem = guard.feed(chunk);
        if (problem === null) return true;
        const id = identities.get(client);
        log.warn("MQTT client disconnected: packet over the size limit", { pool: id?.pool, worker: id?.worker, problem });
        socket.destroy();
        return false;
      });
    },
  );
  server.on("tlsClientError", (err) => log.debug("TLS handshake refused", { error: err.message }));

  await new Promise<void>((resolve, reject) => {
    server.once("error", (err) => reject(new SpaceliftError("broker-listen-failed", `MQTT broker cannot listen on ${opts.host}:${opts.port}`, { cause: err })));
    server.listen(opts.port, opts.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  log.info("MQTT broker listening", { host: opts.host, port });

  return {
    port,
    deliver(pool, worker, message) {
      const topic = readonlyTopic(opts.namespace, pool, worker);
      const packet = { cmd: "publish", topic, payload: Buffer.from(message), qos: 1, retain: false, dup: false } as PublishPacket;
      return new Promise((resolve, reject) => aedes.publish(packet, (err) => (err ? reject(err) : resolve())));
    },
    disconnectPool(pool) {
      for (const c of clients) if (identities.get(c)?.pool === pool) c.close();
    },
    connectedClients: () => clients.size,
    async close() {
      closing = true;
      for (const c of clients) c.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
    },
  };
}

/**
 * Aedes reads a connection with one `read(null)` per 'readable' event and expects it to return everything
 * buffered, as Node documents. In the compiled mothership a TLS socket's `read()` can return only part of
 * its buffer, and since the buffer never empties no further 'readable' comes: Aedes stops reading, PUBACKs
 * stop, and a launcher streaming a large log looks silent. Reading until the socket says null returns the
 * whole buffer and re-arms 'readable'. Every byte Aedes reads passes `inspect` first; when it answers
 * false the connection is going and Aedes gets nothing more.
 */
function readsEverything(socket: TLSSocket, inspect: (chunk: Buffer) => boolean): void {
  const readOnce = socket.read.bind(socket);
  socket.read = (size?: number): unknown => {
    if (size !== undefined && size !== null) {
      const chunk = readOnce(size) as Buffer | null;
      return chunk === null || inspect(chunk) ? chunk : null;
    }
    const chunks: Buffer[] = [];
    for (let chunk = readOnce() as Buffer | null; chunk !== null; chunk = readOnce() as Buffer | null) {
      if (!inspect(chunk)) return null;
      chunks.push(chunk);
    }
    return chunks.length === 0 ? null : chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
  };
}
