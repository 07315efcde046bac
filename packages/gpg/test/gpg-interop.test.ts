import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describeInterop, ostree, runOstree } from "@ostree-ts/interop";
import { Repo } from "@ostree-ts/objstore";
import { afterAll, beforeAll, expect, it } from "vitest";
import {
  deleteCommitSignatures,
  DummyEngine,
  formatShowSignatures,
  importRemoteKeys,
  Keyring,
  signCommit,
  signCommitWith,
  signSummary,
  verifyCommit,
  verifyCommitForShow,
  verifySummary,
} from "../src/index.js";
import { gpgAvailable, makeGnupgKey, makeTree, type GnupgKey } from "./helpers.js";

/** `ostree show` output from the "Found N signature" line on ("" when unsigned). */
function showSignatures(repoPath: string, rev: string, extra: string[] = []): string {
  const out = ostree(["show", `--repo=${repoPath}`, ...extra, rev]);
  const i = out.indexOf("Found ");
  return i < 0 ? "" : out.slice(i);
}

describeInterop("GPG signatures against ostree 2022.7 and gnupg", () => {
  let dir: string;
  let key: GnupgKey;
  let other: GnupgKey;
  let repoPath: string;
  let repo: Repo;
  let c1: string;
  let c2: string;

  beforeAll(async () => {
    if (!gpgAvailable()) throw new Error("gnupg (gpg) is required for the GPG interop tests: apt-get install gnupg");
    dir = mkdtempSync(join(tmpdir(), "gpg-interop-"));
    key = makeGnupgKey(join(dir, "k1"));
    other = makeGnupgKey(join(dir, "k2"), "Other Key <other@example.com>");
    repoPath = join(dir, "repo");
    ostree(["init", `--repo=${repoPath}`, "--mode=archive"]);
    const tree = makeTree(dir);
    c1 = ostree(["commit", `--repo=${repoPath}`, "-b", "main", "--timestamp=2020-01-01T00:00:00Z", "-s", "one", "--no-xattrs", tree]).trim();
    writeFileSync(join(tree, "a"), "changed\n");
    c2 = ostree(["commit", `--repo=${repoPath}`, "-b", "main", "--timestamp=2020-01-02T00:00:00Z", "-s", "two", "--no-xattrs", tree]).trim();
    ostree(["remote", "add", `--repo=${repoPath}`, "origin", "http://127.0.0.1:1/"]);
    repo = await Repo.open(repoPath);
  }, 120_000);
  afterAll(() => {
    key?.cleanup();
    other?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it("ostree gpg-sign → our verify accepts; our keyring file is read by ostree show identically", async () => {
    ostree(["gpg-sign", `--repo=${repoPath}`, `--gpg-homedir=${key.homedir}`, c1, key.keyId]);
    const keyring = new Keyring();
    await keyring.addData(key.publicKey);
    const r = await verifyCommit(repo, c1, keyring);
    expect(r.countAll).toBe(1);
    expect(r.countValid).toBe(1);
    expect(r.signatures[0]!.fingerprint).toBe(key.fingerprint);
    expect(r.signatures[0]!.pubkeyAlgoName).toBe("RSA");

    // Unknown key before import: both say so, byte for byte.
    const before = await verifyCommitForShow(repo, c1);
    expect(before!.signatures[0]!.keyMissing).toBe(true);
    expect(formatShowSignatures(before!)).toBe(showSignatures(repoPath, c1));

    expect(await importRemoteKeys(repo, "origin", key.publicKey)).toBe(1);
    expect(await importRemoteKeys(repo, "origin", key.publicKey)).toBe(0);
    const after = await verifyCommitForShow(repo, c1, { remote: "origin" });
    expect(after!.countValid).toBe(1);
    const real = showSignatures(repoPath, c1, ["--gpg-verify-remote=origin"]);
    expect(real).toContain('Good signature from "Test Key <test@example.com>"');
    expect(formatShowSignatures(after!)).toBe(real);
  });

  it("our signatures (gpg binary and in-memory openpgp.js key) → ostree show reports them good", async () => {
    await signCommit(repo, c2, { keyId: key.fingerprint, homedir: key.homedir });
    await signCommit(repo, c2, { privateKey: other.secretKeyArmored });
    await expect(signCommit(repo, c2, { keyId: key.keyId, homedir: key.homedir })).rejects.toThrow(/already signed with GPG key/);
    writeFileSync(join(dir, "other.gpg"), other.publicKey);
    ostree(["remote", "gpg-import", `--repo=${repoPath}`, "-k", join(dir, "other.gpg"), "origin"]);
    const real = showSignatures(repoPath, c2, ["--gpg-verify-remote=origin"]);
    expect(real).toMatch(/^Found 2 signatures:/);
    expect(real).toContain('Good signature from "Test Key <test@example.com>"');
    expect(real).toContain('Good signature from "Other Key <other@example.com>"');
    const ours = await verifyCommitForShow(repo, c2, { remote: "origin" });
    expect(formatShowSignatures(ours!)).toBe(real);

    // gpg-sign --delete, ours, as ostree counts it.
    expect(await deleteCommitSignatures(repo, c2, [other.keyId])).toBe(1);
    expect(showSignatures(repoPath, c2, ["--gpg-verify-remote=origin"])).toMatch(/^Found 1 signature:\n\n {2}Signature made .* key ID [0-9A-F]{16}\n {2}Good signature from "Test Key/);
  });

  it("a signature moved to another commit is BAD for both", async () => {
    const sigOfC1 = await repo.readCommitMeta(c1);
    const tampered = join(dir, "tampered");
    ostree(["init", `--repo=${tampered}`, "--mode=archive"]);
    ostree(["pull-local", `--repo=${tampered}`, repoPath, c2]);
    writeFileSync(join(tampered, "origin.trustedkeys.gpg"), readFileSync(join(repoPath, "origin.trustedkeys.gpg")));
    ostree(["remote", "add", `--repo=${tampered}`, "origin", "http://127.0.0.1:1/"]);
    const t = await Repo.open(tampered);
    await t.writeCommitMeta(c2, sigOfC1);
    const real = showSignatures(tampered, c2, ["--gpg-verify-remote=origin"]);
    expect(real).toContain('BAD signature from "Test Key <test@example.com>"');
    const ours = await verifyCommitForShow(t, c2, { remote: "origin" });
    expect(ours!.countValid).toBe(0);
    expect(formatShowSignatures(ours!)).toBe(real);
    expect(() => ours!.requireValidSignature()).toThrow(/BAD signature/);
  });

  it("summary.sig both ways", async () => {
    ostree(["summary", "-u", `--repo=${repoPath}`, `--gpg-sign=${key.keyId}`, `--gpg-homedir=${key.homedir}`]);
    const keyring = new Keyring();
    await keyring.addData(key.publicKey);
    expect((await verifySummary(repo, keyring)).countValid).toBe(1);
    const wrong = new Keyring();
    await wrong.addData(other.publicKey);
    expect((await verifySummary(repo, wrong)).signatures[0]!.keyMissing).toBe(true);

    ostree(["summary", "-u", `--repo=${repoPath}`]);
    await signSummary(repo, { privateKey: other.secretKeyArmored });
    const sig = readFileSync(join(repoPath, "summary.sig"));
    const sigs = (await import("@ostree-ts/gvariant")).decode("a{sv}", new Uint8Array(sig)) as Array<[string, { value: Uint8Array[] }]>;
    const gpgsigs = sigs.find(([k]) => k === "ostree.gpgsigs")![1].value;
    writeFileSync(join(dir, "summary.sig.bin"), gpgsigs[0]!);
    // plain gnupg accepts the detached signature over the summary bytes
    const v = spawnSync("gpg", ["--homedir", other.homedir, "--batch", "--verify", join(dir, "summary.sig.bin"), join(repoPath, "summary")], { encoding: "utf8" });
    expect(v.status).toBe(0);
    expect(v.stderr).toContain("Good signature");
  });

  it("dummy signatures made by us verify with ostree sign --verify", async () => {
    process.env.OSTREE_DUMMY_SIGN_ENABLED = "1";
    try {
      const d = new DummyEngine();
      d.setSecretKey("mysecret");
      await signCommitWith(repo, c1, d);
      const r = runOstree(["sign", `--repo=${repoPath}`, "--verify", "-s", "dummy", c1, "mysecret"], { env: { OSTREE_DUMMY_SIGN_ENABLED: "1" } });
      expect(r.stdout).toBe("dummy: Signature verified\n");
      expect(r.status).toBe(0);
    } finally {
      delete process.env.OSTREE_DUMMY_SIGN_ENABLED;
    }
  });
});
