/**
 * `spacelift-launcher`: one executable, several programs (multi-call).
 *   spacelift-launcher            run the launcher (connect, receive runs, execute them)
 *   spacelift-launcher worker     the in-container worker, PID 1 of every run container
 *   spacelift-launcher check      validate the configuration and Docker reachability
 *   spacelift-launcher version    print version, commit and target
 * This file only dispatches; each command builds its own dependencies. Errors become exit codes here.
 */
import { errorMessage } from "../errors.ts";
import { versionLine } from "../version.ts";

export interface Io {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

type Command = (args: string[], env: Record<string, string | undefined>, io: Io) => Promise<number>;

interface CommandSpec {
  summary: string;
  usage: string;
  run: Command;
}

const COMMANDS: Record<string, CommandSpec> = {
  launcher: {
    summary: "run the launcher: connect to the mothership, receive runs and execute them in Docker",
    usage: "spacelift-launcher\n\nConfigured by SPACELIFT_* environment variables (see the README).",
    run: async (args, env, io) => (await import("./commands/launch.ts")).launchCommand(args, env, io),
  },
  worker: {
    summary: "the in-container worker (PID 1 of a run container; started by the launcher)",
    usage: "spacelift-launcher worker --spec FILE",
    run: async (args, env, io) => (await import("./commands/worker.ts")).workerCommand(args, env, io),
  },
  "run-local": {
    summary: "execute a run spec file on the local Docker without a mothership, printing phases and the masked log",
    usage: "spacelift-launcher run-local SPEC.json [--worker-binary PATH]",
    run: async (args, env, io) => (await import("./commands/run-local.ts")).runLocalCommand(args, env, io),
  },
  check: {
    summary: "validate the configuration and Docker reachability; print the effective configuration",
    usage: "spacelift-launcher check\n\nExits 0 only when every setting is valid and Docker answers.",
    run: async (args, env, io) => (await import("./commands/check.ts")).checkCommand(args, env, io),
  },
  policy: {
    summary: "evaluate a run-initialization policy against an input document, as the launcher would",
    usage: "spacelift-launcher policy eval --policy FILE --input FILE [--query QUERY]\n\nWithout --query prints {\"deny\": [...], \"outcome\": \"allow\"|\"deny\"} (and \"sample\" when the policy has one); with --query the query's result set. Exits 1 on an invalid policy or input.",
    run: async (args, _env, io) =>
      (await import("../policy/cli.ts")).policyEvalCommand(args, { stdout: { write: io.stdout }, stderr: { write: io.stderr } }),
  },
  version: {
    summary: "print the version, git commit and target",
    usage: "spacelift-launcher version",
    run: async (_args, _env, io) => {
      io.stdout(versionLine("spacelift-launcher") + "\n");
      return 0;
    },
  },
};

function help(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  const lines = Object.entries(COMMANDS)
    .filter(([name]) => name !== "launcher")
    .map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return [
    "usage: spacelift-launcher [command] [--help]",
    "",
    "Without a command, runs the launcher.",
    "",
    "commands:",
    ...lines,
    "",
  ].join("\n");
}

/** @testSeam */
export async function main(argv: string[], env: Record<string, string | undefined>, io: Io): Promise<number> {
  const [first, ...rest] = argv;
  if (first === "--help" || first === "-h" || first === "help") {
    io.stdout(help());
    return 0;
  }
  if (first === "--version") return main(["version"], env, io);
  const name = first === undefined || first.startsWith("-") ? "launcher" : first;
  const args = name === "launcher" ? argv : rest;
  const command = COMMANDS[name];
  if (!command) {
    io.stderr(`spacelift-launcher: unknown command "${name}"; run \`spacelift-launcher --help\` for the list\n`);
    return 2;
  }
  if (args.includes("--help") || args.includes("-h")) {
    io.stdout(`usage: ${command.usage}\n\n${command.summary}\n`);
    return 0;
  }
  try {
    return await command.run(args, env, io);
  } catch (err) {
    io.stderr(`spacelift-launcher ${name}: ${errorMessage(err)}\n`);
    return 1;
  }
}

if (import.meta.main) {
  const io: Io = { stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t) };
  // In a compiled binary argv is ["bun", "/$bunfs/root/<name>", ...]; from source ["bun", "main.ts", ...].
  const code = await main(process.argv.slice(2), process.env, io);
  process.exitCode = code;
}
