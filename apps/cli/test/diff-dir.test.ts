/**
 * `diff` with a directory on either side (REV DIR, DIR REV, DIR DIR) beside
 * the real ostree: a checkout changed by adding, removing and rewriting files,
 * chmod of a file and of a directory, type changes, a retargeted symlink and a
 * fifo must print the same lines in the same order, and errors (missing
 * path, a file where a directory belongs) the same text and exit code.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeInterop, ostree, runOstree, tempDir, type RunResult } from "@ostree-ts/interop";

const CLI = fileURLToPath(new URL("../dist/ostree-ts.mjs", import.meta.url));

function ours(args: string[], cwd: string): RunResult {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, env: { ...process.env, OSTREE_TS_PRGNAME: "ostree" }, encoding: "utf8" });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

describeInterop("ostree-ts diff against a directory matches ostree 2022.7", () => {
  let dir: { path: string; cleanup: () => void };

  beforeAll(() => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`node apps/cli/scripts/build.mjs\``);
    dir = tempDir("ostree-ts-diffdir-");
    const tree = join(dir.path, "tree");
    for (const d of ["a/b", "gone/deep", "keep", "retype-dir"]) mkdirSync(join(tree, d), { recursive: true });
    writeFileSync(join(tree, "a/f1"), "1\n");
    writeFileSync(join(tree, "a/b/f2"), "2\n");
    writeFileSync(join(tree, "gone/deep/x"), "x\n");
    writeFileSync(join(tree, "mod"), "m\n");
    writeFileSync(join(tree, "chm"), "c\n");
    writeFileSync(join(tree, "totype"), "t\n");
    writeFileSync(join(tree, "retype-dir/inner"), "i\n");
    writeFileSync(join(tree, "keep/k"), "k\n");
    symlinkSync("a", join(tree, "sl"));
    for (const mode of ["archive", "bare-user-only"]) {
      const repo = join(dir.path, `repo-${mode}`);
      ostree(["init", `--repo=${repo}`, `--mode=${mode}`]);
      ostree(["commit", `--repo=${repo}`, "-b", "main", "-s", "s", "--no-xattrs", tree]);
    }
    const work = join(dir.path, "work");
    ostree(["checkout", `--repo=${join(dir.path, "repo-archive")}`, "-U", "main", work]);
    writeFileSync(join(work, "added"), "new\n");
    mkdirSync(join(work, "newdir/sub"), { recursive: true });
    writeFileSync(join(work, "newdir/sub/n"), "n\n");
    rmSync(join(work, "gone"), { recursive: true });
    writeFileSync(join(work, "mod"), "changed\n");
    chmodSync(join(work, "chm"), 0o700);
    chmodSync(join(work, "keep"), 0o700);
    unlinkSync(join(work, "totype"));
    mkdirSync(join(work, "totype"));
    rmSync(join(work, "retype-dir"), { recursive: true });
    writeFileSync(join(work, "retype-dir"), "now a file\n");
    unlinkSync(join(work, "sl"));
    symlinkSync("a/b", join(work, "sl"));
    spawnSync("mkfifo", [join(work, "a/fifo")]);
  });
  afterAll(() => dir?.cleanup());

  const cases = [
    ["main", "./work"],
    ["./work", "main"],
    ["./work", "./tree"],
    ["./tree", "./work"],
    ["main", "./tree"],
    ["./tree", "main"],
    ["--no-xattrs", "main", "./work"],
    ["--owner-uid=4242", "--owner-gid=4242", "main", "./work"],
    ["--owner-uid=4242", "./work", "main"],
    ["--owner-uid=4242", "./tree", "./work"],
    ["--stats", "--fs-diff", "main", "./work"],
    ["main", "./missing"],
    ["./missing", "main"],
    ["main", "./work/mod"],
    ["./work/mod", "main"],
    ["./tree", "./work/mod"],
    ["./work/../work/", "main"],
  ];
  for (const mode of ["archive", "bare-user-only"]) {
    for (const args of cases) {
      it(`${mode}: diff ${args.join(" ")}`, () => {
        const full = ["diff", `--repo=${join(dir.path, `repo-${mode}`)}`, ...args];
        const theirs = runOstree(full, { cwd: dir.path });
        expect(ours(full, dir.path)).toEqual(theirs);
      });
    }
  }

  it("the changed checkout really differs (the cases above are not all empty)", () => {
    const r = runOstree(["diff", `--repo=${join(dir.path, "repo-archive")}`, "./work", "main"], { cwd: dir.path });
    expect(r.stdout.split("\n").filter(Boolean).length).toBeGreaterThan(10);
  });
});
