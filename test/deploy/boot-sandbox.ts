/**
 * Runs the boot script for real, as root, in a throwaway mount namespace: /etc, /usr/local, /var, /opt,
 * /home and /root are overlays whose upper layers live in a temp dir, so `useradd`, the trust store,
 * /etc/spacelift and the installed binary land there and the host is left as it was. `systemctl` is a
 * recorder on PATH (this host's systemd does not run the instance's services): each call is one line
 * of `systemctl.log`, so `enable --now spacelift-launcher.service` and `poweroff` can be asserted. An
 * optional `after` script runs in the same namespace once the boot script ended, to look at (or start)
 * what it installed the way systemd would.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const BOOT_SCRIPT = join(import.meta.dir, "../../build/user-data/spacelift-boot.sh");
const OVERLAID = ["etc", "usr/local", "var", "opt", "home", "root"];

const RUNNER = `#!/bin/bash
# $1 sandbox dir, $2 user data, $3 after-script (may be empty)
set -e
for d in ${OVERLAID.join(" ")}; do
  mkdir -p "$1/upper/$d" "$1/work/$d"
  mount -t overlay overlay -o "lowerdir=/$d,upperdir=$1/upper/$d,workdir=$1/work/$d" "/$d"
done
set +e
bash "$2" >"$1/boot.out" 2>&1
rc=$?
echo "$rc" >"$1/boot-exit"
if [ -n "$3" ]; then bash "$3" "$1" >"$1/after.out" 2>&1; echo $? >"$1/after-exit"; fi
exit "$rc"
`;

const RECORDER = `#!/bin/sh
printf '%s\\n' "$*" >>"$SYSTEMCTL_LOG"
`;

export interface BootResult {
  exit: number;
  /** Everything the script printed (it also appends the same to its log file). */
  output: string;
  /** One line per `systemctl` call. */
  systemctl: string[];
  afterOutput: string;
  afterExit: number | null;
  /** A path of the instance's filesystem as the script left it (the overlay's upper layer). */
  changed(path: string): string;
  dir: string;
}

export class BootSandbox {
  readonly dir = mkdtempSync(join(tmpdir(), "boot-sandbox-"));
  private readonly bin = join(this.dir, "bin");

  constructor() {
    mkdirSync(this.bin);
    writeFileSync(join(this.bin, "systemctl"), RECORDER);
    chmodSync(join(this.bin, "systemctl"), 0o755);
    writeFileSync(join(this.dir, "runner.sh"), RUNNER);
  }

  /**
   * The user data as the templates render it: `settings` as shell assignments, then the boot script.
   * `after` is a bash script run in the namespace afterwards, with the sandbox dir as $1; `script` is
   * what runs (default the boot script; the Packer test runs its provisioning script).
   */
  async boot(name: string, settings: Record<string, string>, env: Record<string, string> = {}, after = "", script = BOOT_SCRIPT): Promise<BootResult> {
    const dir = join(this.dir, name);
    mkdirSync(dir);
    const quote = (v: string) => `'${v.replace(/'/g, `'\\''`)}'`;
    const preamble = Object.entries(settings).map(([k, v]) => `${k}=${quote(v)}`).join("\n");
    writeFileSync(join(dir, "user-data.sh"), `#!/bin/bash\n${preamble}\n${readFileSync(script, "utf8")}`);
    if (after) writeFileSync(join(dir, "after.sh"), after);
    const proc = Bun.spawn(["unshare", "--mount", "--propagation", "private", "--", "bash", join(this.dir, "runner.sh"), dir, join(dir, "user-data.sh"), after ? join(dir, "after.sh") : ""], {
      env: {
        PATH: `${this.bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:${process.env.PATH ?? ""}`,
        HOME: "/root",
        LANG: "C.UTF-8",
        SYSTEMCTL_LOG: join(dir, "systemctl.log"),
        ...env,
      },
      stdout: "pipe",
      stderr: "pipe",
    });
    const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    const read = (f: string) => (existsSync(join(dir, f)) ? readFileSync(join(dir, f), "utf8") : "");
    if (!existsSync(join(dir, "boot-exit"))) throw new Error(`the sandbox did not run the boot script (exit ${code}): ${stdout}${stderr}`);
    return {
      exit: Number(read("boot-exit").trim()),
      output: read("boot.out"),
      systemctl: read("systemctl.log").split("\n").filter(Boolean),
      afterOutput: read("after.out"),
      afterExit: existsSync(join(dir, "after-exit")) ? Number(read("after-exit").trim()) : null,
      changed: (path: string) => join(dir, "upper", path.replace(/^\//, "")),
      dir,
    };
  }

  close(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
