/**
 * `make demo`: the operator workflow end to end with the compiled binaries — build, a mothership on a
 * temp data dir, `openssl req` key + CSR, pool create, a launcher with SPACELIFT_TOKEN and the base64
 * key, a stack with two phases and a secret (given from a file, never on argv) the phase prints
 * (masked), a run with its logs followed, the worker list — then everything it started is stopped.
 * The mothership's output must not contain the admin token, nor the database the secret. Docker comes from the test environment
 * (a private dockerd with a locally made busybox image when none answers).
 */
import { withTestEnv } from "./testenv/index.ts";
import { secretProblem } from "./demo/secret-check.ts";
import { buildBinaries, DemoWorld } from "./demo/world.ts";

const say = (m: string) => console.log(`\n==> ${m}`);
const SECRET = "correct-horse-battery-staple";

async function demo(): Promise<void> {
  const bin = buildBinaries(say);
  await withTestEnv(say, async (env) => {
    const image = env.vars.TEST_BUSYBOX_IMAGE ?? "spacelift-test/busybox:latest";
    const world = new DemoWorld(bin, env.vars.DOCKER_HOST ?? "", say);
    try {
      await world.startMothership();
      say("openssl req -new -newkey rsa:4096 -nodes -keyout spacelift.key -out spacelift.csr");
      await world.createPool("demo-pool");
      say("spacelift-launcher with SPACELIFT_TOKEN and SPACELIFT_POOL_PRIVATE_KEY=$(base64 -w0 spacelift.key)");
      const launcher = world.startLauncher();
      await world.waitFor("the worker to register", async () => (await world.json<unknown[]>(["worker", "list", "--pool", world.pool])).length > 0);
      const secretFile = world.privateFile("demo-secret", `${SECRET}\n`);
      say(`stack create with --secret-file DEMO_SECRET=${secretFile} (a secret on the command line is visible in ps)`);
      const stack = (
        await world.cliOk([
          "stack", "create", "--name", "demo-stack", "--pool", world.pool, "--image", image,
          "--env", "GREETING=hello", "--secret-file", `DEMO_SECRET=${secretFile}`,
          "--phase", "plan=echo \"$GREETING from the planning phase\"; echo \"the secret is $DEMO_SECRET\"",
          "--phase", "apply=echo applying; uname -m; echo done",
        ])
      ).trim();
      say(`stack ${stack} created (image ${image}, phases plan and apply, secret DEMO_SECRET)`);
      const run = (await world.cliOk(["run", "trigger", stack, "--type", "TRACKED"])).trim();
      say(`run ${run} triggered; following its logs`);
      const followed = await world.cliOk(["run", "logs", run, "--follow"]);
      process.stdout.write(followed);
      // A leaked secret fails the demo whatever the run's state; a missing mask once the run FINISHED.
      const secret = secretProblem(followed, SECRET, "the secret is ");
      if (secret?.kind === "leaked") throw new Error(`DEMO_SECRET: ${secret.message}`);
      say("run show");
      process.stdout.write(await world.cliOk(["run", "show", run]));
      say("worker list");
      process.stdout.write(await world.cliOk(["worker", "list", "--pool", world.pool]));
      const shown = await world.json<{ state: string }>(["run", "show", run]);
      if (shown.state !== "FINISHED") {
        console.error(launcher.log());
        throw new Error(`the run ended ${shown.state}`);
      }
      if (secret) throw new Error(`DEMO_SECRET: ${secret.message}`);
      const leaks = world.secretLeaks(SECRET);
      if (leaks.length > 0) throw new Error(`secrets in the clear: ${leaks.join("; ")}`);
      say("the mothership printed no admin token and its database holds DEMO_SECRET only encrypted");
      say("stopping the launcher (SIGTERM: drain, goodbye, exit 0) and the mothership");
    } finally {
      await world.close();
    }
  });
  say("demo finished");
}

try {
  await demo();
} catch (err) {
  console.error(`make demo failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
}
