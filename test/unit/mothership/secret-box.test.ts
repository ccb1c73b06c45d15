/**
 * Sealed stack secrets: AES-256-GCM bound to the stack and variable, named by key id; a keyring file
 * that is 0600, read back exactly and refused (with the line) when malformed.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isSealed, loadOrCreateSecretBox, newSecretKey, readKeyring, SecretBox, sealedKeyId, secretsKeyPath, writeKeyring } from "../../../src/mothership/secret-box.ts";

let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "secret-box-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const failure = (f: () => unknown): { code?: string; message: string } | null => {
  try {
    f();
    return null;
  } catch (err) {
    return err as { code?: string; message: string };
  }
};

describe("seal and open", () => {
  const key = newSecretKey();
  const box = new SecretBox([key]);

  test("round trip; the text is v1:<key id>:<iv>:<ct> and never contains the value; every seal differs", () => {
    const sealed = box.seal("hunter2-ünïcode", "S1", "TOKEN");
    expect(sealed).toMatch(new RegExp(`^v1:${key.id}:[A-Za-z0-9_-]{16}:[A-Za-z0-9_-]+$`));
    expect(sealed).not.toContain("hunter2");
    expect(isSealed(sealed)).toBe(true);
    expect(sealedKeyId(sealed)).toBe(key.id);
    expect(box.open(sealed, "S1", "TOKEN")).toBe("hunter2-ünïcode");
    expect(box.seal("hunter2-ünïcode", "S1", "TOKEN")).not.toBe(sealed);
    expect(box.open(box.seal("", "S1", "E"), "S1", "E")).toBe("");
  });

  test("bound to its stack and variable: moved elsewhere, or changed, it does not open (and the error names no value)", () => {
    const sealed = box.seal("moved-value", "S1", "TOKEN");
    for (const [stack, name] of [["S2", "TOKEN"], ["S1", "OTHER"]] as const) {
      const err = failure(() => box.open(sealed, stack, name));
      expect(err?.code).toBe("secret-unreadable");
      expect(err?.message).toContain(`secret ${name} of stack ${stack} does not decrypt with key ${key.id}`);
      expect(err?.message).not.toContain("moved-value");
    }
    const parts = sealed.split(":");
    const ct = Buffer.from(parts[3]!, "base64url");
    ct[0] = (ct[0] ?? 0) ^ 1;
    expect(failure(() => box.open([...parts.slice(0, 3), ct.toString("base64url")].join(":"), "S1", "TOKEN"))?.code).toBe("secret-unreadable");
  });

  test("a key ring opens values of every key it holds and seals with its first; an unknown key id is named", () => {
    const newer = newSecretKey();
    const ring = new SecretBox([newer, key]);
    const old = box.seal("v", "S", "N");
    expect(ring.open(old, "S", "N")).toBe("v");
    expect(sealedKeyId(ring.seal("v", "S", "N"))).toBe(newer.id);
    const err = failure(() => new SecretBox([newSecretKey()]).open(old, "S", "N"));
    expect(err?.message).toContain(`is sealed with key ${key.id}, which is not in secrets.key`);
  });
});

describe("the keyring file", () => {
  test("made on first load, 0600, one key; loaded again the same; written keys read back in order", async () => {
    const data = join(dir, "ring");
    await Bun.write(join(data, ".keep"), "");
    const first = await loadOrCreateSecretBox(data);
    expect(first.created).toBe(true);
    expect(((await stat(secretsKeyPath(data))).mode & 0o777).toString(8)).toBe("600");
    const again = await loadOrCreateSecretBox(data);
    expect(again.created).toBe(false);
    expect(again.box.currentKeyId).toBe(first.box.currentKeyId);
    expect(again.box.open(first.box.seal("x", "S", "N"), "S", "N")).toBe("x");

    const a = newSecretKey();
    const b = newSecretKey();
    await writeKeyring(data, [a, b]);
    expect(((await stat(secretsKeyPath(data))).mode & 0o777).toString(8)).toBe("600");
    expect((await readKeyring(data))?.map((k) => [k.id, k.key.toString("hex")])).toEqual([a, b].map((k) => [k.id, k.key.toString("hex")]));
  });

  test("a malformed line is refused naming the file and line", async () => {
    const data = join(dir, "bad");
    await Bun.write(join(data, "secrets.key"), `${newSecretKey().id}:${Buffer.alloc(32).toString("base64url")}\nnot-a-key\n`);
    const err = await readKeyring(data).then(() => null, (e: unknown) => e as { code?: string; message: string });
    expect(err?.code).toBe("secrets-key-invalid");
    expect(err?.message).toContain(`${join(data, "secrets.key")} line 2 is not <12 hex key id>:<base64url of 32 bytes>`);
    await writeFile(join(data, "secrets.key"), "\n");
    expect((await readKeyring(data).catch((e: unknown) => e as Error))?.toString()).toContain("holds no key");
  });
});
