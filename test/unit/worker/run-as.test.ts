// The runner image's USER resolved against its /etc/passwd and /etc/group as Docker resolves it, and
// the launcher's reading of an image's Config.User (root runs as before; anything else is handed on).
import { describe, expect, test } from "bun:test";
import { SpaceliftError } from "../../../src/errors.ts";
import { runAsUser } from "../../../src/launcher/supervisor/container-spec.ts";
import { parseWorkerInstructions } from "../../../src/protocol/worker-instructions.ts";
import { accountEnv, resolveRunAs } from "../../../src/worker/run-as.ts";

const files = {
  passwd: [
    "root:x:0:0:root:/root:/bin/sh",
    "# a comment",
    "spacelift:x:1983:1983:Spacelift:/home/spacelift:/bin/sh",
    "nohome:x:2000:2001:::/bin/sh",
    "broken:x:abc:1:::/bin/sh",
    "short:x:3000",
  ].join("\n"),
  group: "root:x:0:\nspacelift:x:1983:\nbuilders:x:4242:spacelift\n",
};

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return error instanceof SpaceliftError ? error.code : "not-coded";
  }
  return undefined;
}

describe("run-as resolution", () => {
  test("a name or its uid gives the passwd entry's uid, primary gid, name and home", () => {
    const spacelift = { uid: 1983, gid: 1983, name: "spacelift", home: "/home/spacelift" };
    expect(resolveRunAs("spacelift", files)).toEqual(spacelift);
    expect(resolveRunAs("1983", files)).toEqual(spacelift);
    expect(resolveRunAs("nohome", files)).toEqual({ uid: 2000, gid: 2001, name: "nohome", home: "/" });
  });

  test("a uid the image does not know runs with group 0 and home /, as Docker does", () => {
    expect(resolveRunAs("5000", files)).toEqual({ uid: 5000, gid: 0, name: undefined, home: "/" });
    expect(resolveRunAs("5000", { passwd: "", group: "" })).toEqual({ uid: 5000, gid: 0, name: undefined, home: "/" });
  });

  test("a group by name or number replaces the primary group", () => {
    expect(resolveRunAs("spacelift:builders", files)).toMatchObject({ uid: 1983, gid: 4242 });
    expect(resolveRunAs("1983:77", files)).toMatchObject({ uid: 1983, gid: 77, name: "spacelift" });
    expect(resolveRunAs("5000:builders", files)).toMatchObject({ uid: 5000, gid: 4242 });
  });

  test("an unknown name, an unknown group name, a broken entry and an out-of-range id are coded errors", () => {
    expect(code(() => resolveRunAs("ghost", files))).toBe("run-as-unknown-user");
    expect(code(() => resolveRunAs("short", files))).toBe("run-as-unknown-user");
    expect(code(() => resolveRunAs("spacelift:ghosts", files))).toBe("run-as-unknown-group");
    expect(code(() => resolveRunAs("broken", files))).toBe("run-as-invalid");
    expect(code(() => resolveRunAs("4294967296", files))).toBe("run-as-unknown-user");
    let message = "";
    try {
      resolveRunAs("ghost", files);
    } catch (error) {
      message = String(error);
    }
    expect(message).toContain(`USER "ghost" is not in the image's /etc/passwd`);
  });

  test("HOME unless the image sets its own, USER when the user has a name", () => {
    const account = resolveRunAs("spacelift", files);
    expect(accountEnv(account, false)).toEqual({ HOME: "/home/spacelift", USER: "spacelift" });
    expect(accountEnv(account, true)).toEqual({ USER: "spacelift" });
    expect(accountEnv(resolveRunAs("5000", files), false)).toEqual({ HOME: "/" });
  });
});

describe("the image's Config.User on the launcher side", () => {
  test("no USER and root (by name or number, with no group or group root) run as before", () => {
    for (const user of ["", "  ", "root", "0", "root:root", "0:0", "root:0"]) expect(runAsUser({ user, env: [] })).toBeUndefined();
  });

  test("any other user is handed to the worker, with whether the image sets HOME itself", () => {
    expect(runAsUser({ user: "1983", env: ["PATH=/bin"] })).toEqual({ user: "1983", image_home: false });
    expect(runAsUser({ user: "spacelift", env: ["HOME=/work"] })).toEqual({ user: "spacelift", image_home: true });
    expect(runAsUser({ user: "0:5", env: [] })).toEqual({ user: "0:5", image_home: false });
  });

  test("a USER value the worker could not parse fails the run on the launcher's side with a clear error", () => {
    for (const user of ["a:b:c", "with space", "x".repeat(65), "tab\tuser"]) {
      expect(code(() => runAsUser({ user, env: [] }))).toBe("runner-image-user-invalid");
    }
  });

  test("the instructions carry the user only in Docker's USER syntax", () => {
    const base = {
      run: {
        id: "01HZY8Q3V6X9J2K4M5N6P7R8S9", type: "TRACKED",
        stack: { id: "s", name: "S", branch: "main", repository: "org/repo" },
        commit: { hash: "abc", branch: "main", author: "Ada", message: "msg" },
        phases: [{ name: "planning", commands: ["true"] }],
      },
      marker_nonce: "0123456789abcdef0123",
    };
    expect(parseWorkerInstructions({ ...base, run_as: { user: "spacelift:1983", image_home: false } }).run_as).toEqual({ user: "spacelift:1983", image_home: false });
    expect(code(() => parseWorkerInstructions({ ...base, run_as: { user: "a\nb", image_home: false } }))).toBe("run-spec-invalid");
    expect(code(() => parseWorkerInstructions({ ...base, run_as: { user: "ok" } }))).toBe("run-spec-invalid");
  });
});
