import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { importRemoteKeys, signCommit, signSummary } from "@ostree-ts/gpg";
import { describeInterop, makeGnupgKey, ostree, runOstreeAsync, tempDir, type GnupgKey } from "@ostree-ts/interop";
import { listRefs, Repo } from "@ostree-ts/objstore";
import { afterAll, beforeAll, expect, test } from "vitest";
import { pull, Remotes } from "../src/index.js";
import { staticServer, type StaticServer } from "./helpers.js";

let tmp: { path: string; cleanup: () => void };
let src: string;
let srv: StaticServer;
let key: GnupgKey;
let stranger: GnupgKey;

describeInterop("pull with gpg-verify / gpg-verify-summary", () => {
  beforeAll(async () => {
    if (spawnSync("gpg", ["--version"]).status !== 0) throw new Error("gnupg (gpg) is required: apt-get install gnupg");
    tmp = tempDir("fetch-gpg-");
    key = makeGnupgKey(join(tmp.path, "k"), "Repo Key <repo@example.com>");
    stranger = makeGnupgKey(join(tmp.path, "s"), "Stranger <s@example.com>");
    writeFileSync(join(tmp.path, "key.gpg"), key.publicKey);
    src = join(tmp.path, "src");
    ostree(["init", `--repo=${src}`, "--mode=archive"]);
    mkdirSync(join(tmp.path, "t"));
    writeFileSync(join(tmp.path, "t", "f"), "one\n");
    srv = await staticServer(src);
  }, 120_000);
  afterAll(async () => {
    await srv?.close();
    for (const k of [key, stranger]) k?.cleanup();
    tmp?.cleanup();
  });

  async function client(name: string, keys: Uint8Array | null, verifySummary: boolean): Promise<Repo> {
    const repo = await Repo.init(join(tmp.path, name), { mode: "archive" });
    await new Remotes(repo).add("origin", srv.url, { set: verifySummary ? [["gpg-verify-summary", "true"]] : [] });
    if (keys) await importRemoteKeys(repo, "origin", keys);
    return repo;
  }

  test("ostree-signed commit and summary: our pull verifies both; a stranger's keyring is refused", async () => {
    const c = ostree(["commit", `--repo=${src}`, "-b", "main", "--no-xattrs", "-s", "one", join(tmp.path, "t")]).trim();
    ostree(["gpg-sign", `--repo=${src}`, `--gpg-homedir=${key.homedir}`, c, key.keyId]);
    ostree(["summary", "-u", `--repo=${src}`, `--gpg-sign=${key.keyId}`, `--gpg-homedir=${key.homedir}`]);

    const good = await client("ours-good", key.publicKey, true);
    await pull(good, "origin", { refs: ["main"] });
    expect((await listRefs(good)).map((r) => r.checksum)).toEqual([c]);

    const bad = await client("ours-bad", stranger.publicKey, false);
    await expect(pull(bad, "origin", { refs: ["main"] })).rejects.toThrow(new RegExp(`Commit ${c}: Signature made .* key ID ${key.keyId}\\nCan't check signature: public key not found`));
    expect(await listRefs(bad)).toEqual([]);

    const badSummary = await client("ours-bad-summary", stranger.publicKey, true);
    await expect(pull(badSummary, "origin", { refs: ["main"] })).rejects.toThrow(/public key not found/);
  });

  test("commit and summary signed by ostree-ts: real ostree pulls with gpg-verify and gpg-verify-summary", async () => {
    writeFileSync(join(tmp.path, "t", "f"), "two\n");
    const c = ostree(["commit", `--repo=${src}`, "-b", "main", "--no-xattrs", "-s", "two", join(tmp.path, "t")]).trim();
    const repo = await Repo.open(src);
    await signCommit(repo, c, { privateKey: key.secretKeyArmored });
    ostree(["summary", "-u", `--repo=${src}`]);
    await signSummary(repo, { privateKey: key.secretKeyArmored });

    const dest = join(tmp.path, "real");
    ostree(["init", `--repo=${dest}`, "--mode=archive"]);
    ostree(["remote", "add", `--repo=${dest}`, "--set=gpg-verify-summary=true", `--gpg-import=${join(tmp.path, "key.gpg")}`, "origin", srv.url]);
    const r = await runOstreeAsync(["pull", `--repo=${dest}`, "origin", "main"]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(ostree(["rev-parse", `--repo=${dest}`, "origin:main"]).trim()).toBe(c);
    expect(ostree(["show", `--repo=${dest}`, "--gpg-verify-remote=origin", c])).toContain('Good signature from "Repo Key <repo@example.com>"');

    // The same files with the stranger's key in the keyring: refused by ostree too.
    const dest2 = join(tmp.path, "real-bad");
    writeFileSync(join(tmp.path, "stranger.gpg"), stranger.publicKey);
    ostree(["init", `--repo=${dest2}`, "--mode=archive"]);
    ostree(["remote", "add", `--repo=${dest2}`, `--gpg-import=${join(tmp.path, "stranger.gpg")}`, "origin", srv.url]);
    const r2 = await runOstreeAsync(["pull", `--repo=${dest2}`, "origin", "main"]);
    expect(r2.status).not.toBe(0);
    expect(r2.stderr).toContain("public key not found");
  });
});
