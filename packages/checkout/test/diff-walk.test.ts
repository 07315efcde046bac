import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeInterop, ostree, runOstree, tempDir } from "@ostree-ts/interop";
import { Repo, type RepoMode } from "@ostree-ts/objstore";
import { diffCommitToDir, formatDiff, walk, type WalkEntry } from "../src/index.js";
import { makeRichTree, mutateRichTree } from "./helpers.js";

function lsLine(e: WalkEntry): string {
  const t = e.type === "dir" ? "d" : e.type === "symlink" ? "l" : "-";
  const mode = (e.mode & 0o7777).toString(8).padStart(5, "0");
  const tail = e.type === "symlink" ? ` -> ${e.symlinkTarget}` : "";
  return `${t}${mode} ${e.uid} ${e.gid} ${String(e.size).padStart(6)} ${e.path}${tail}`;
}

describeInterop("walk and diff match ostree ls -R and ostree diff", () => {
  const tmp = tempDir("ostree-ts-diff-");
  beforeAll(() => makeRichTree(tmp.path));
  afterAll(() => tmp.cleanup());

  for (const mode of ["bare", "bare-user", "bare-user-only", "archive"] as RepoMode[]) {
    it(`${mode}: walk = ostree ls -R`, async () => {
      const repoPath = join(tmp.path, `repo-${mode}`);
      ostree(["init", `--repo=${repoPath}`, `--mode=${mode}`]);
      ostree(["commit", `--repo=${repoPath}`, "-b", "rich", ...(mode === "bare-user-only" ? ["--canonical-permissions"] : []), join(tmp.path, "rich")]);
      const repo = await Repo.open(repoPath);
      for (const sub of [undefined, "/a/b", "/ünïcödé"]) {
        const lines: string[] = [];
        for await (const e of walk(repo, "rich", { subpath: sub })) lines.push(lsLine(e));
        const theirs = ostree(["ls", `--repo=${repoPath}`, "-R", "rich", ...(sub ? [sub] : [])]).trimEnd().split("\n");
        expect(lines).toEqual(theirs);
      }
    });

    it(`${mode}: diff commit vs directory = ostree diff`, async () => {
      const repoPath = join(tmp.path, `repo-${mode}`);
      const d = join(tmp.path, `diff-${mode}`);
      ostree(["checkout", `--repo=${repoPath}`, ...(mode === "bare" ? [] : ["-U"]), "rich", d]);
      const repo = await Repo.open(repoPath);
      const check = async (extra: string[] = [], opts = {}) => {
        const theirs = runOstree(["diff", `--repo=${repoPath}`, ...extra, "rich", d]);
        expect(theirs.status).toBe(0);
        expect(formatDiff(await diffCommitToDir(repo, "rich", d, opts))).toBe(theirs.stdout);
        return theirs.stdout;
      };
      await check();
      mutateRichTree(d);
      writeFileSync(join(d, "added"), "a");
      const out = await check();
      expect(out).toContain("M    /hello.txt");
      expect(out).toContain("A    newdir/deeper/f");
      await check(["--no-xattrs"], { noXattrs: true });
      await check(["--owner-uid=7", "--owner-gid=7"], { ownerUid: 7, ownerGid: 7 });
    });
  }
});
