/**
 * `mothership`: the control plane's single entry point. `serve` runs the server; every other
 * command is a client of its HTTP API. This is the one place that reads the environment and turns
 * errors into exit codes (0 ok, 1 failed, 2 usage).
 */
import "reflect-metadata";
import { resolve as resolvePath } from "node:path";
import { errorMessage, SpaceliftError } from "../errors.ts";
import { createLogger } from "../log/logger.ts";
import { versionLine } from "../version.ts";
import { flag, parseArgs, usageError, type ParsedArgs } from "./cli/args.ts";
import { connect } from "./cli/client.ts";
import { poolCommand, runCommand, stackCommand, workerCommand, type Io } from "./cli/commands.ts";
import { TOKEN_ON_ARGV_WARNING } from "./cli/secret-input.ts";
import { SECRETS_FLAGS, secretsCommand } from "./cli/secrets.ts";
import { BROKER_CONFIG_FLAGS, brokerConfigCommand } from "./broker-config.ts";
import { printable } from "./cli/terminal.ts";
import { SERVE_FLAGS, serveConfigFromArgs } from "./serve-config.ts";
import { startMothership } from "./serve.ts";

const HELP = `mothership — control plane for private worker pools

Server:
  mothership serve [--data DIR] [--http HOST:PORT] [--mqtt HOST:PORT] [--broker-endpoint mqtts://HOST:PORT]
                   [--comms-url URL] [--namespace NS] [--http-plain] [--heartbeat SECONDS] [--log-level LEVEL]
                   [--schedule-timeout SECONDS] [--max-log-chunk-bytes BYTES] [--max-run-log-bytes BYTES]
                   [--downloads DIR] [--broker mqtts://HOST:PORT [--broker-ca FILE]
                   [--broker-crl PATH [--broker-reload-command CMD]] [--replica-id NAME]]
                   [--database postgres://USER@HOST/DB]
      defaults: --data ./mothership-data, --http 127.0.0.1:8080, --mqtt 127.0.0.1:8883,
                --max-log-chunk-bytes 256KiB, --max-run-log-bytes 512MiB (a run over it is stopped),
                --downloads: the binary's own directory when it holds SHA256SUMS (served at /downloads/)
      --http-plain serves plain HTTP behind a TLS-terminating proxy and needs --comms-url, the URL
      launchers reach that proxy at (an http:// one is warned about: see docs/security.md)
      --broker uses an existing MQTT broker instead of the embedded one (--mqtt), with the client
      certificate in DIR/broker-client/; --broker-crl is the CRL file the broker reads, rewritten on
      every pool reset and delete, then --broker-reload-command runs (docs/external-broker.md)
      --database (or MOTHERSHIP_DATABASE_URL) keeps the store in PostgreSQL instead of DIR/mothership.db;
      its password goes in MOTHERSHIP_DATABASE_URL or PGPASSWORD, never on the command line. Several
      replicas share one database and one --broker, each with its own --replica-id (or
      MOTHERSHIP_REPLICA_ID; default: one made once in DIR/replica-id) (docs/scale.md)

Client (talks to the HTTP API; --url/MOTHERSHIP_URL, --token-file PATH/MOTHERSHIP_TOKEN, --ca/MOTHERSHIP_CA,
or --data DIR of a local mothership for all three; without a CA, ./mothership-data/ca/ca.crt if present.
--token TOKEN works too but other users can read it in ps; so can --secret NAME=VALUE: prefer the files):
  mothership pool create --name N --csr FILE [--description D]     prints the pool token (once)
  mothership pool list | show ID | reset ID --csr FILE | delete ID | cycle ID
  mothership worker list [--pool ID] | drain ID | undrain ID
  mothership worker drain|undrain --pool ID [--tag KEY=VALUE]...   every live worker of the pool with those tags
  mothership stack create --name N --pool ID --image IMG [--env K=V]... [--secret-file NAME=PATH]...
                          [--secret NAME=- | --secret-stdin NAME] [--secret NAME=VALUE]...
                          --phase NAME=COMMAND... [--repository URL --branch B [--vcs-pool NAME]]
                          [--label L]...   prints the stack id
      secret values: from a file (one trailing newline trimmed) or stdin (one secret); never on argv
  mothership stack list | show ID | delete ID
  mothership run trigger STACK_ID [--type PROPOSED|TRACKED|TASK|DESTROY] [--commit SHA] [--branch B]
                         [--metadata KEY=VALUE]... [--metadata-file PATH]... [--wait]   prints the run id
  mothership run list [--stack ID] [--pool ID] [--state S | --active] | show ID | logs ID [--follow] | cancel ID
  mothership version
List and show commands take --json.

Broker configuration (docs/external-broker.md):
  mothership broker-config mosquitto --out DIR [--listen HOST:PORT] [--data DIR] [--namespace NS]
                                     [--server-name NAME]... [--user USER]
      writes mosquitto.conf, the ACL file, the CA, its CRL and a server certificate into DIR
      (the CA of the data dir is made first if it is new); default --listen 0.0.0.0:8883

Offline (the mothership stopped):
  mothership secrets rotate-key [--data DIR] [--database URL]   re-encrypts every stack secret value
      under a new key in DIR/secrets.key; safe to run again after a crash
`;

const CLIENT_FLAGS = ["url", "token", "token-file", "ca", "data"];
const SPECS: Record<string, { values: string[]; switches: string[] }> = {
  serve: SERVE_FLAGS,
  secrets: SECRETS_FLAGS,
  "broker-config": BROKER_CONFIG_FLAGS,
  pool: { values: [...CLIENT_FLAGS, "name", "csr", "description"], switches: ["json"] },
  worker: { values: [...CLIENT_FLAGS, "pool", "tag"], switches: ["json"] },
  stack: { values: [...CLIENT_FLAGS, "name", "pool", "image", "env", "secret", "secret-file", "secret-stdin", "phase", "repository", "branch", "vcs-pool", "label"], switches: ["json"] },
  run: { values: [...CLIENT_FLAGS, "type", "stack", "pool", "state", "commit", "branch", "metadata", "metadata-file"], switches: ["json", "wait", "follow", "active"] },
};

async function serve(a: ParsedArgs, env: Record<string, string | undefined>): Promise<number> {
  const { logLevel, ...settings } = serveConfigFromArgs(a, env);
  const logger = createLogger({ level: logLevel });
  // Everything the server writes (data dir, database, its WAL) is for this user only.
  process.umask(0o077);
  const m = await startMothership({ ...settings, logger });
  // The token itself is never printed (stdout ends up in journals and CI logs): only where it is.
  const tokenPath = resolvePath(m.adminTokenPath);
  console.log(`admin token ${m.adminTokenCreated ? "created in" : "in"} ${tokenPath} (0600, only this user can read it)`);
  console.log(`  CLI: --data ${resolvePath(settings.dataDir)}, or MOTHERSHIP_TOKEN=$(cat ${tokenPath}), or --token-file ${tokenPath}`);
  // The API's certificate comes from this CA: a CLI given --url and --token must be told to trust it.
  const caPath = resolvePath(m.caPath);
  console.log(`CA certificate: ${caPath}`);
  console.log(`  CLI with --url/MOTHERSHIP_URL and --token-file/MOTHERSHIP_TOKEN: add --ca ${caPath} or export MOTHERSHIP_CA=${caPath}`);
  console.log(`mothership ready: api ${m.httpUrl}, broker ${m.brokerEndpoint}`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  logger.info("stopping");
  await m.stop();
  return 0;
}

async function main(argv: string[], env: Record<string, string | undefined>, io: Io): Promise<number> {
  const [group, ...rest] = argv;
  if (!group || group === "--help" || group === "-h" || group === "help") {
    io.out(HELP);
    return group ? 0 : 2;
  }
  if (group === "version" || group === "--version") {
    io.out(versionLine("mothership"));
    return 0;
  }
  const spec = SPECS[group];
  if (!spec) throw usageError(`unknown command ${JSON.stringify(group)}; see mothership --help`);
  if (rest.includes("--help") || rest.includes("-h")) {
    io.out(HELP);
    return 0;
  }
  if (group === "serve") return serve(parseArgs(rest, { values: spec.values, switches: spec.switches }), env);
  const [sub, ...more] = rest;
  if (!sub) throw usageError(`${group} needs a command; see mothership --help`);
  const a = parseArgs(more, { values: spec.values, switches: spec.switches });
  if (group === "secrets") return secretsCommand(sub, a, io, env);
  if (group === "broker-config") return brokerConfigCommand(sub, a, io.out, createLogger({ level: "warn" }));
  const tokenFile = flag(a, "token-file");
  if (flag(a, "token") !== undefined) {
    if (tokenFile !== undefined) throw usageError("give the admin token once: --token-file PATH or --token, not both");
    io.err(printable(TOKEN_ON_ARGV_WARNING));
  }
  const api = await connect({
    // An empty variable counts as unset, as in most shells' ${VAR:-default}. Flags win over the environment.
    url: flag(a, "url") ?? (env.MOTHERSHIP_URL || undefined),
    token: flag(a, "token") ?? (tokenFile === undefined ? env.MOTHERSHIP_TOKEN || undefined : undefined),
    tokenFile,
    ca: flag(a, "ca") ?? (env.MOTHERSHIP_CA || undefined),
    dataDir: flag(a, "data"),
  });
  switch (group) {
    case "pool":
      return poolCommand(sub, a, api, io);
    case "worker":
      return workerCommand(sub, a, api, io);
    case "stack":
      return stackCommand(sub, a, api, io);
    default:
      return runCommand(sub, a, api, io, (b) => process.stdout.write(b));
  }
}

if (import.meta.main) {
  const io: Io = { out: (t) => console.log(t), err: (t) => console.error(t), stdin: process.stdin };
  main(process.argv.slice(2), process.env, io).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      // Error text can quote what a peer or the API sent: made terminal-safe like every other line.
      io.err(`mothership: ${printable(errorMessage(err))}`);
      process.exitCode = err instanceof SpaceliftError && err.code === "usage" ? 2 : 1;
    },
  );
}
