/**
 * `find-remotes` through the built CLI beside the real ostree on the same
 * repos: identical stdout, stderr and exit status, with and without --pull.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeInterop, makeGnupgKey, ostree, runOstree, tempDir } from "@ostree-ts/interop";

const CLI = fileURLToPath(new URL("../dist/ostree-ts.mjs", import.meta.url));

function ours(args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { env: { ...process.env, OSTREE_TS_PRGNAME: "ostree" }, encoding: "utf8" });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

describeInterop("find-remotes through the CLI, beside ostree", () => {
  const dir = tempDir("cli-find-remotes-");
  const p = (n: string) => join(dir.path, n);
  let gpgHome = "";
  beforeAll(() => {
    const key = makeGnupgKey(dir.path, "CLI Finder <f@example.com>");
    gpgHome = key.homedir;
    const keyId = key.keyId;
    writeFileSync(p("key.gpg"), key.publicKey);
    mkdirSync(p("tree"));
    writeFileSync(p("tree/f"), "x");
    for (const [repo, cid, refs] of [
      ["apps", "org.example.Apps", ["app1", "app2"]],
      ["os", "org.example.Os", ["os/amd64/main"]],
    ] as const) {
      ostree(["init", `--repo=${p(repo)}`, "--mode=archive", `--collection-id=${cid}`]);
      for (const ref of refs) ostree(["commit", `--repo=${p(repo)}`, "-b", ref, "--no-xattrs", `--gpg-homedir=${gpgHome}`, `--gpg-sign=${keyId}`, p("tree")]);
      ostree(["summary", "-u", `--repo=${p(repo)}`, `--gpg-homedir=${gpgHome}`, `--gpg-sign=${keyId}`]);
    }
    for (const local of ["theirs", "ours"]) {
      ostree(["init", `--repo=${p(local)}`, "--mode=bare-user"]);
      ostree(["remote", "add", `--repo=${p(local)}`, "--collection-id=org.example.Apps", `--gpg-import=${p("key.gpg")}`, "apps-remote", `file://${p("apps")}`]);
      ostree(["remote", "add", `--repo=${p(local)}`, "--collection-id=org.example.Os", `--gpg-import=${p("key.gpg")}`, "os-remote", `file://${p("os")}`]);
    }
  });
  afterAll(() => {
    spawnSync("gpgconf", ["--homedir", gpgHome, "--kill", "gpg-agent"]);
    dir.cleanup();
  });

  const cases: string[][] = [
    ["--finders=config", "org.example.Apps", "app1"],
    ["--finders=config", "org.example.Apps", "app1", "org.example.Apps", "app2", "org.example.Os", "os/amd64/main", "org.example.Apps", "not-an-app"],
    ["org.example.Nowhere", "ref"],
    ["--finders=mount", "org.example.Apps", "app1"],
    ["org.example.Apps"],
    ["org.example.Apps", "app1", "org.example.Os"],
    ["--finders=foo", "org.example.Apps", "app1"],
    ["--finders=config,mount,config", "org.example.Apps", "app1"],
    ["--finders=", "org.example.Apps", "app1"],
    ["--mirror", "org.example.Apps", "app1"],
    ["bad", "app1"],
    ["org.example.Apps", "bad..ref"],
  ];
  it.each(cases)("find-remotes %s … prints what ostree prints", (...args) => {
    const theirs = runOstree([`--repo=${p("theirs")}`, "find-remotes", ...args]);
    expect(ours([`--repo=${p("ours")}`, "find-remotes", ...args])).toEqual(theirs);
  });

  it("--pull: same output, same refs written, fsck clean", () => {
    const args = ["find-remotes", "--finders=config", "--pull", "org.example.Apps", "app2", "org.example.Os", "os/amd64/main", "org.example.Apps", "gone"];
    const theirs = runOstree([`--repo=${p("theirs")}`, ...args]);
    expect(theirs.status).toBe(0);
    expect(theirs.stdout).toContain("Pulled 3/3 refs successfully.\n");
    expect(ours([`--repo=${p("ours")}`, ...args])).toEqual(theirs);
    expect(ostree(["refs", `--repo=${p("ours")}`])).toBe(ostree(["refs", `--repo=${p("theirs")}`]));
    expect(ostree(["fsck", `--repo=${p("ours")}`])).toContain("Verifying content integrity of 2 commit objects");
  });

  it("--finders=lan: refused clearly (no Avahi)", () => {
    const r = ours([`--repo=${p("ours")}`, "find-remotes", "--finders=lan", "org.example.Apps", "app1"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/error: LAN repo finder requested but ostree-ts was compiled without Avahi support\n$/);
  });
});
