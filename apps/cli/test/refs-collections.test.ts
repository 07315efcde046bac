/**
 * `refs --collections` through the built CLI beside the real ostree, each on
 * its own copy of one repo: same stdout, stderr, exit status and ref files
 * after listing, --create and --delete (including a repo without refs/mirrors).
 */
import { cpSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { spawnSync } from "node:child_process";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeInterop, ostree, runOstree, tempDir } from "@ostree-ts/interop";

const CLI = fileURLToPath(new URL("../dist/ostree-ts.mjs", import.meta.url));

function ours(args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { env: { ...process.env, OSTREE_TS_PRGNAME: "ostree" }, encoding: "utf8" });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Ref files only: ostree leaves emptied directories behind on delete, objstore's setRef removes them. */
function refFiles(repo: string): string[] {
  return readdirSync(join(repo, "refs"), { recursive: true, withFileTypes: true })
    .filter((e) => !e.isDirectory())
    .map((e) => join(e.parentPath, e.name).slice(repo.length + 1))
    .sort();
}

describeInterop("refs --collections through the CLI, beside ostree", () => {
  const dir = tempDir("cli-refs-collections-");
  const p = (n: string) => join(dir.path, n);
  beforeAll(() => {
    mkdirSync(p("tree"));
    writeFileSync(p("tree/f"), "x");
    ostree(["init", `--repo=${p("src")}`, "--collection-id=org.example.Remote"]);
    ostree(["commit", `--repo=${p("src")}`, "-b", "r1", p("tree")]);
    ostree(["init", `--repo=${p("base")}`, "--collection-id=org.example.Collection"]);
    for (const b of ["main", "other", "test-1", "d/e"]) ostree(["commit", `--repo=${p("base")}`, "-b", b, p("tree")]);
    ostree(["refs", `--repo=${p("base")}`, "--collections", "--create=org.example.Mirror:m1", "main"]);
    ostree(["remote", "add", `--repo=${p("base")}`, "--no-sign-verify", "--collection-id=org.example.Remote", "rem", `file://${p("src")}`]);
    ostree(["pull", `--repo=${p("base")}`, "rem", "r1"]);
  });
  afterAll(() => dir.cleanup());

  const cases: Array<{ args: string[]; noMirrors?: boolean }> = [
    { args: ["--collections"] },
    { args: ["--collections", "org.example.Collection"] },
    { args: ["--collections", "--list", "org.example.Collection"] },
    { args: ["--collections", "org.example"] },
    { args: ["--collections", "test"] },
    { args: ["--collections", "--delete", "org.example.Collection"] },
    { args: ["--collections", "--delete", "org.example.Mirror"] },
    // A remote's refs are listed under its collection ID, but deleting that ID only touches refs/mirrors.
    { args: ["--collections", "--delete", "org.example.Remote"] },
    { args: ["--collections", "--delete", "test"] },
    { args: ["--collections", "--delete", "org.example.Nonexistent"], noMirrors: true },
    { args: ["--collections", "--create=org.example.New:ctest-mirror", "main"] },
    { args: ["--collections", "--create=org.example.New:ctest-mirror", "main"], noMirrors: true },
    { args: ["--collections", "--create=org.example.Collection:c2", "main"] },
    { args: ["--collections", "--create=org.example.Mirror:m1", "main"] },
    { args: ["--collections", "--create=nocolon", "main"] },
    { args: ["--collections", "--create=org.example.X:", "main"] },
    { args: ["--collections", "--create=org.example.X:bad/", "main"] },
    { args: ["--collections", "--create=org.example.X:x", "missing"] },
  ];
  for (const [i, c] of cases.entries()) {
    it(`refs ${c.args.join(" ")}${c.noMirrors ? " (no refs/mirrors)" : ""}`, () => {
      const run = (who: string) => {
        const repo = p(`${who}-${i}`);
        cpSync(p("base"), repo, { recursive: true, verbatimSymlinks: true });
        if (c.noMirrors) rmSync(join(repo, "refs/mirrors"), { recursive: true });
        const args = [`--repo=${repo}`, "refs", ...c.args];
        const r = who === "ours" ? ours(args) : runOstree(args);
        return { status: r.status, stdout: r.stdout, stderr: r.stderr.replaceAll(repo, "REPO"), refs: refFiles(repo) };
      };
      const theirs = run("theirs");
      expect(run("ours")).toEqual(theirs);
    });
  }

  it("refs --collections --create without a colon fails on the missing ref name, as ostree does", () => {
    const args = [`--repo=${p("base")}`, "refs", "--collections", "--create=org.example.X", "main"];
    const theirs = runOstree(args);
    const r = ours(args);
    expect(r.status).toBe(theirs.status);
    expect(r.status).not.toBe(0);
    // ostree also prints a GLib-CRITICAL from validating a NULL ref name; the error line is the same.
    expect(r.stderr).toBe(`${theirs.stderr.trimEnd().split("\n").at(-1)}\n`);
    expect(refFiles(p("base")).filter((f) => f.includes("org.example.X"))).toEqual([]);
    expect(refFiles(p("base"))).toContain("refs/mirrors/org.example.Mirror/m1");
  });
});
