import { statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeInterop, ostree, runOstree, tempDir } from "@ostree-ts/interop";
import { Repo } from "@ostree-ts/objstore";
import { checkout, diffDirs } from "../src/index.js";
import { makeRichTree } from "./helpers.js";

describeInterop("checkout through core.parent", () => {
  const tmp = tempDir("ostree-ts-parent-");
  beforeAll(() => makeRichTree(tmp.path));
  afterAll(() => tmp.cleanup());

  it("a bare shadow repo checks out its bare-user parent's commit like ostree (-U hardlinks into the parent, by its mode)", async () => {
    const parent = join(tmp.path, "repo");
    const shadow = join(tmp.path, "shadow");
    ostree(["init", `--repo=${parent}`, "--mode=bare-user"]);
    const rev = ostree(["commit", `--repo=${parent}`, "-b", "rich", join(tmp.path, "rich")]).trim();
    ostree(["init", `--repo=${shadow}`]);
    ostree(["config", `--repo=${shadow}`, "set", "core.parent", parent]);
    ostree(["checkout", `--repo=${shadow}`, "-U", rev, join(tmp.path, "theirs")]);
    await checkout(await Repo.open(shadow), rev, join(tmp.path, "ours"), { userMode: true });
    const d = await diffDirs(join(tmp.path, "theirs"), join(tmp.path, "ours"));
    expect(d).toEqual({ modified: [], removed: [], added: [] });
    expect(statSync(join(tmp.path, "theirs", "hello.txt")).nlink).toBeGreaterThan(1);
    expect(statSync(join(tmp.path, "ours", "hello.txt")).nlink).toBe(statSync(join(tmp.path, "theirs", "hello.txt")).nlink);
    // Without a parent the same checkout has nothing to read.
    ostree(["config", `--repo=${shadow}`, "unset", "core.parent"]);
    await expect(checkout(await Repo.open(shadow), rev, join(tmp.path, "none"), { userMode: true })).rejects.toThrow(/No such metadata object|not found/i);
    expect(runOstree(["checkout", `--repo=${shadow}`, "-U", rev, join(tmp.path, "none2")]).status).not.toBe(0);
  });
});
