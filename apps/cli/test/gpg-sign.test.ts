/**
 * `commit --gpg-sign` and `summary -u --gpg-sign` through the built CLI,
 * checked by the real ostree: its `show` must find our signatures good and
 * print what ours prints.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeInterop, makeGnupgKey, ostree, runOstree, tempDir, type GnupgKey } from "@ostree-ts/interop";

const CLI = fileURLToPath(new URL("../dist/ostree-ts.mjs", import.meta.url));
const gpgAvailable = spawnSync("gpg", ["--version"]).status === 0;

function ours(args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { env: { ...process.env, OSTREE_TS_PRGNAME: "ostree" }, encoding: "utf8" });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

describeInterop("GPG signing through the CLI, checked by ostree", () => {
  const dir = tempDir();
  let key: GnupgKey | undefined;
  let homedir = "";
  let keyId = "";
  let tree = "";
  beforeAll(() => {
    key = makeGnupgKey(dir.path, "CLI Tester <cli@example.com>");
    ({ homedir, keyId } = key);
    // `show --gpg-homedir` reads *.gpg keyrings there (not pubring.kbx), as ostree does.
    writeFileSync(join(homedir, "trusted.gpg"), key.publicKey);
    tree = join(dir.path, "tree");
    mkdirSync(tree);
    writeFileSync(join(tree, "a"), "hello\n");
  });
  afterAll(() => {
    key?.cleanup();
    dir.cleanup();
  });

  it.skipIf(!gpgAvailable)("commit --gpg-sign: ostree show finds the signature good, output identical", () => {
    const repo = join(dir.path, "repo");
    ostree(["init", `--repo=${repo}`, "--mode=archive"]);
    const r = ours([`--repo=${repo}`, "commit", "-b", "main", "-s", "signed", `--gpg-sign=${keyId}`, `--gpg-homedir=${homedir}`, tree]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const show = [`--repo=${repo}`, "show", "main", `--gpg-homedir=${homedir}`];
    const theirs = runOstree(show);
    expect(theirs.stdout).toMatch(/Found 1 signature:\n\n {2}Signature made .* using RSA key ID [0-9A-F]{16}\n {2}Good signature from "CLI Tester <cli@example.com>"\n$/);
    expect(ours(show)).toEqual(theirs);
  });

  it.skipIf(!gpgAvailable)("a key that cannot sign fails the commit and leaves the branch alone, as ostree", () => {
    const repo = join(dir.path, "repo-fail");
    ostree(["init", `--repo=${repo}`, "--mode=archive"]);
    const first = ours([`--repo=${repo}`, "commit", "-b", "main", tree]).stdout.trim();
    const args = ["commit", "-b", "main", "--gpg-sign=DEADBEEFDEADBEEF", `--gpg-homedir=${homedir}`, tree];
    const mine = ours([`--repo=${repo}`, ...args]);
    const theirs = runOstree([`--repo=${repo}`, ...args]);
    expect(mine.status).toBe(theirs.status);
    expect(mine.stderr).toBe(theirs.stderr);
    expect(ostree(["rev-parse", `--repo=${repo}`, "main"]).trim()).toBe(first);
  });

  it.skipIf(!gpgAvailable)("summary -u --gpg-sign with a collection ID: the ostree-metadata commit is signed", () => {
    const repo = join(dir.path, "repo-coll");
    ostree(["init", `--repo=${repo}`, "--mode=archive", "--collection-id=org.example.Cli"]);
    ostree(["commit", `--repo=${repo}`, "-b", "main", tree]);
    const r = ours([`--repo=${repo}`, "summary", "-u", `--gpg-sign=${keyId}`, `--gpg-homedir=${homedir}`]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(ostree(["show", `--repo=${repo}`, "ostree-metadata", `--gpg-homedir=${homedir}`])).toMatch(/Good signature from "CLI Tester <cli@example.com>"/);
    expect(ostree(["summary", "--view", `--repo=${repo}`])).toMatch(/^\* \(org\.example\.Cli, ostree-metadata\)$/m);
  });
});
