import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { commit, ObjectType, Repo } from "@ostree-ts/objstore";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DummyEngine, Ed25519Engine, signCommitWith, SignError, signEngineByName, verifyCommitWith } from "../src/index.js";
import { makeTree } from "./helpers.js";

// signing.md §4.1: an OpenSSL-generated pair.
const PUB = "2saNCl+WpHwlQFOau4EgRzIPAlfANCVNwmtJft2KSHs=";
const SECRET = "H+uKSA8ZCgayuQnZX0+VmqAdIEbagfQ3ELUcZ0VcPsfaxo0KX5akfCVAU5q7gSBHMg8CV8A0JU3Ca0l+3YpIew==";

let dir: string;
let repo: Repo;
let c1: string;
let c2: string;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "gpg-signapi-"));
  repo = await Repo.init(join(dir, "repo"), { mode: "archive" });
  const tree = makeTree(dir);
  c1 = (await commit(repo, { tree: [{ dir: tree }], branch: "main", subject: "one", timestamp: 1577836800 })).commit;
  writeFileSync(join(tree, "a"), "changed\n");
  c2 = (await commit(repo, { tree: [{ dir: tree }], branch: "main", subject: "two", timestamp: 1577836900 })).commit;
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
  delete process.env.OSTREE_DUMMY_SIGN_ENABLED;
});

describe("ed25519", () => {
  it("derives the spec's public key from its secret key", async () => {
    expect(await Ed25519Engine.publicKeyOf(SECRET)).toBe(PUB);
  });

  it("signs a commit into ostree.sign.ed25519 (aay of 64-byte signatures) and verifies it", async () => {
    const signer = new Ed25519Engine();
    signer.setSecretKey(SECRET);
    await signCommitWith(repo, c1, signer);
    const meta = await repo.readCommitMeta(c1);
    const v = meta!.find(([k]) => k === "ostree.sign.ed25519")![1];
    expect(v.type).toBe("aay");
    expect((v.value as Uint8Array[])[0]!.length).toBe(64);

    const verifier = new Ed25519Engine();
    verifier.setPublicKey(PUB);
    expect(await verifyCommitWith(repo, c1, verifier)).toBe(`ed25519: Signature verified successfully with key '${Buffer.from(PUB, "base64").toString("hex")}'`);
  });

  it("rejects a signature moved to another commit, a wrong key, a revoked key, a short signature", async () => {
    const signer = new Ed25519Engine();
    signer.setSecretKey(SECRET);
    await signCommitWith(repo, c1, signer);
    await repo.writeCommitMeta(c2, await repo.readCommitMeta(c1));
    const verifier = new Ed25519Engine();
    verifier.setPublicKey(PUB);
    await expect(verifyCommitWith(repo, c2, verifier)).rejects.toThrow(/ed25519: Signature couldn't be verified with: key '/);

    const other = await Ed25519Engine.generate();
    const wrong = new Ed25519Engine();
    wrong.setPublicKey(other.public);
    await expect(verifyCommitWith(repo, c1, wrong)).rejects.toThrow(SignError);

    const revoked = new Ed25519Engine();
    writeFileSync(join(dir, "trusted.ed25519"), `${PUB}\n`);
    writeFileSync(join(dir, "revoked.ed25519"), `${PUB}\n`);
    await revoked.loadPublicKeys({ basedir: dir });
    await expect(verifyCommitWith(repo, c1, revoked)).rejects.toThrow(/no signatures found/);

    const { variant } = await import("@ostree-ts/gvariant");
    await repo.writeCommitMeta(c1, [["ostree.sign.ed25519", variant("aay", [new Uint8Array(10)])]]);
    await expect(verifyCommitWith(repo, c1, verifier)).rejects.toThrow("Invalid signature length of 10 bytes, expected 64");
  });

  it("loads keys files (one base64 key per line, junk lines skipped) and refuses bad keys", async () => {
    const other = await Ed25519Engine.generate();
    writeFileSync(join(dir, "keys"), `not-a-key\n${other.public}\n${PUB}\n`);
    const signer = new Ed25519Engine();
    signer.setSecretKey(SECRET);
    await signCommitWith(repo, c1, signer);
    const v = new Ed25519Engine();
    await v.loadPublicKeys({ filename: join(dir, "keys") });
    expect(v.publicKeys.length).toBe(2);
    expect(await verifyCommitWith(repo, c1, v)).toMatch(/verified successfully/);
    expect(() => v.setSecretKey(PUB)).toThrow("Incorrect ed25519 secret key");
    expect(() => v.addPublicKey(SECRET)).toThrow("Incorrect ed25519 public key");
    writeFileSync(join(dir, "empty"), "junk\n");
    await expect(new Ed25519Engine().loadPublicKeys({ filename: join(dir, "empty") })).rejects.toThrow(/no valid keys in file/);
  });

  it("appends: two signers leave two signatures, other commitmeta keys kept", async () => {
    const { variant } = await import("@ostree-ts/gvariant");
    await repo.writeCommitMeta(c1, [["custom", variant("s", "x")]]);
    const a = new Ed25519Engine();
    a.setSecretKey(SECRET);
    const otherPair = await Ed25519Engine.generate();
    const b = new Ed25519Engine();
    b.setSecretKey(otherPair.secret);
    await signCommitWith(repo, c1, a);
    await signCommitWith(repo, c1, b);
    const meta = (await repo.readCommitMeta(c1))!;
    expect(meta.find(([k]) => k === "custom")![1].value).toBe("x");
    expect((meta.find(([k]) => k === "ostree.sign.ed25519")![1].value as Uint8Array[]).length).toBe(2);
    const v = new Ed25519Engine();
    v.setPublicKey(otherPair.public);
    expect(await verifyCommitWith(repo, c1, v)).toMatch(/verified successfully/);
  });
});

describe("dummy", () => {
  it("writes the 39-byte commitmeta of signing.md §4.2", async () => {
    expect(() => new DummyEngine().setSecretKey("mysecret")).toThrow("dummy signature type is only for ostree testing");
    process.env.OSTREE_DUMMY_SIGN_ENABLED = "1";
    const d = signEngineByName("dummy");
    d.setSecretKey("mysecret");
    await signCommitWith(repo, c1, d);
    const bytes = readFileSync(repo.objectPath(c1, ObjectType.CommitMeta));
    expect(bytes.toString("hex")).toBe(
      "6f73747265652e7369676e2e64756d6d7900" + "000000000000" + Buffer.from("mysecret").toString("hex") + "08" + "00616179" + "12" + "26",
    );
    const v = new DummyEngine();
    v.setPublicKey("mysecret");
    expect(await verifyCommitWith(repo, c1, v)).toBe("dummy: Signature verified");
    v.setPublicKey("other");
    await expect(verifyCommitWith(repo, c1, v)).rejects.toThrow("signature: dummy: incorrect signatures found: 1");
    await expect(verifyCommitWith(repo, c2, v)).rejects.toThrow("signature: dummy: commit have no signatures of my type");
    // ostree refuses to verify too without the variable (test-signed-commit "dummy sig requires env").
    delete process.env.OSTREE_DUMMY_SIGN_ENABLED;
    v.setPublicKey("mysecret");
    await expect(verifyCommitWith(repo, c1, v)).rejects.toThrow("dummy signature type is only for ostree testing");
  });

  it("unknown types are refused as ostree does", () => {
    expect(() => signEngineByName("rsa")).toThrow("Requested signature type is not implemented");
  });
});
