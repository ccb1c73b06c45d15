/**
 * A load balancer in front of the replicas' HTTPS ports, as small as one can be: each TCP connection
 * goes to the next backend in turn (TLS passes through untouched; every replica's server certificate
 * comes from the shared CA), and a backend that refuses the connection is skipped. HTTP clients keep
 * connections alive, so `cutEvery` closes every open connection now and then: the next requests open
 * new ones, which land on the other replica.
 */
import { connect, createServer, type Server, type Socket } from "node:net";

export class RoundRobin {
  /** Connections handed to each backend, by port. */
  readonly served = new Map<number, number>();
  private readonly open = new Set<Socket>();
  private server: Server | null = null;
  private next = 0;
  private cutter: ReturnType<typeof setInterval> | null = null;
  port = 0;

  constructor(private readonly backends: readonly number[]) {}

  async start(): Promise<void> {
    const server = createServer((client) => this.accept(client));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    this.server = server;
    this.port = (server.address() as { port: number }).port;
  }

  private accept(client: Socket): void {
    this.open.add(client);
    client.once("close", () => this.open.delete(client));
    client.on("error", () => client.destroy());
    client.pause();
    this.connectTo(client, this.next++ % this.backends.length, this.backends.length);
  }

  /** Tries backend `i`, then the others in turn; with none left the client's connection is closed. */
  private connectTo(client: Socket, i: number, triesLeft: number): void {
    if (triesLeft === 0 || client.destroyed) {
      client.destroy();
      return;
    }
    const port = this.backends[i]!;
    const backend = connect(port, "127.0.0.1");
    let connected = false;
    backend.on("error", () => {
      backend.destroy();
      // Refused (the replica is down): the next one. Failed later: the client sees its connection end.
      if (!connected) this.connectTo(client, (i + 1) % this.backends.length, triesLeft - 1);
    });
    backend.once("connect", () => {
      connected = true;
      this.open.add(backend);
      this.served.set(port, (this.served.get(port) ?? 0) + 1);
      backend.once("close", () => {
        this.open.delete(backend);
        client.destroy();
      });
      client.once("close", () => backend.destroy());
      client.pipe(backend);
      backend.pipe(client);
      client.resume();
    });
  }

  /** Closes every open connection (both sides), as a balancer that drops them would. */
  cutAll(): void {
    for (const s of this.open) s.destroy();
  }

  /** `cutAll` every `ms` until `stopCutting`. */
  cutEvery(ms: number): void {
    this.stopCutting();
    this.cutter = setInterval(() => this.cutAll(), ms);
  }

  stopCutting(): void {
    if (this.cutter) clearInterval(this.cutter);
    this.cutter = null;
  }

  async close(): Promise<void> {
    this.stopCutting();
    this.cutAll();
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
