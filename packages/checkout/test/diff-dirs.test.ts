import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeInterop, ostree, runOstree, tempDir } from "@ostree-ts/interop";
import { diffDirs, formatDiff } from "../src/index.js";
import { makeRichTree, mutateRichTree } from "./helpers.js";

describeInterop("diffDirs = ostree diff DIR DIR", () => {
  const tmp = tempDir("ostree-ts-diffdirs-");
  beforeAll(() => makeRichTree(tmp.path));
  afterAll(() => tmp.cleanup());

  it("same lines as ostree for equal trees, edits, type changes, ownership and xattrs", async () => {
    const repo = join(tmp.path, "repo");
    ostree(["init", `--repo=${repo}`, "--mode=bare-user"]);
    ostree(["commit", `--repo=${repo}`, "-b", "rich", join(tmp.path, "rich")]);
    const a = join(tmp.path, "a");
    const b = join(tmp.path, "b");
    for (const d of [a, b]) ostree(["checkout", `--repo=${repo}`, "-U", "-C", "rich", d]);
    const check = async (extra: string[] = [], opts = {}) => {
      const theirs = runOstree(["diff", `--repo=${repo}`, ...extra, a, b]);
      expect(theirs.status, theirs.stderr).toBe(0);
      expect(formatDiff(await diffDirs(a, b, opts))).toBe(theirs.stdout);
      return theirs.stdout;
    };
    expect(await check()).toBe("");
    mutateRichTree(b);
    const out = await check();
    expect(out).toContain("M    hello.txt");
    expect(out).toContain("A    newdir/deeper/f");
    expect(out).toContain("D    a/b");
    await check(["--no-xattrs"], { noXattrs: true });
    await check(["--owner-uid=7", "--owner-gid=7"], { ownerUid: 7, ownerGid: 7 });
  });
});
