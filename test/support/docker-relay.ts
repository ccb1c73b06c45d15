/**
 * A unix-socket relay to the test Docker daemon, which a test can stop and start again: how a launcher
 * sees its dockerd go away (and come back) without the shared test dockerd ever being touched.
 * Stopping closes the listening socket, removes its file and cuts every connection through it (an
 * attach or a wait of a running run included), as a killed dockerd would.
 */
import { rmSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";

export class DockerRelay {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  /** Connections made through the relay since it was created. */
  connections = 0;

  /** `path`: the relay's socket; `target`: the daemon's DOCKER_HOST (unix:///... or tcp://host:port). */
  constructor(
    readonly path: string,
    private readonly target: string,
  ) {}

  /** DOCKER_HOST for the launcher. */
  get dockerHost(): string {
    return `unix://${this.path}`;
  }

  async start(): Promise<void> {
    if (this.server) return;
    rmSync(this.path, { force: true });
    const server = createServer((client) => {
      this.connections++;
      const upstream = this.dial();
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on("close", () => this.sockets.delete(s));
        s.on("error", () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.path, resolve);
    });
  }

  /** Like a killed dockerd: nothing listens any more and every open connection is cut. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(this.path, { force: true });
  }

  private dial(): Socket {
    const url = new URL(this.target);
    if (url.protocol === "unix:") return connect(url.pathname);
    return connect(Number(url.port), url.hostname);
  }
}
