// The part of dockerode (benchmark baseline only) that scripts/bench/docker-client.ts uses.
declare module "dockerode" {
  import type { Duplex, Writable } from "node:stream";

  interface Container {
    inspect(): Promise<unknown>;
    start(): Promise<unknown>;
    wait(): Promise<unknown>;
    remove(opts?: { force?: boolean }): Promise<unknown>;
    attach(opts: { stream: boolean; stdout: boolean; stderr: boolean; hijack: boolean }): Promise<Duplex>;
  }

  export default class Dockerode {
    constructor(opts: { socketPath: string } | { host: string; port: number });
    modem: { demuxStream(stream: Duplex, stdout: Writable, stderr: Writable): void };
    getContainer(id: string): Container;
    createContainer(opts: { Image: string; Entrypoint: string[]; Cmd: string[]; Labels: Record<string, string> }): Promise<Container>;
  }
}
