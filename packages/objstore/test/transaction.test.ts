/**
 * The commit transaction: objects are staged in tmp/staging-$BOOTID-XXXXXX and
 * renamed into objects/ before the ref moves; an interrupted transaction's
 * staging dir is reused by the next one of the same boot; other boots' staging
 * dirs and expired tmp entries are cleaned up. Checked against what ostree 2022.7 does.
 */
import { existsSync, mkdirSync, readdirSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { expectOstreeFsckClean, ostree, tempDir } from "@ostree-ts/interop";
import { describeInterop } from "@ostree-ts/interop";
import { commit, ObjectType, Repo, resolveRev, type RepoMode } from "../src/index.js";

const BOOT = "3072029c-8b10-60d1-d31b-8422eeff9b42";
const tmp = tempDir();
afterAll(() => tmp.cleanup());
const savedEnv = { boot: process.env.OSTREE_BOOTID, err: process.env.OSTREE_REPO_TEST_ERROR };
afterEach(() => {
  for (const [k, v] of [["OSTREE_BOOTID", savedEnv.boot], ["OSTREE_REPO_TEST_ERROR", savedEnv.err]] as const) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

function makeTree(name: string): string {
  const root = join(tmp.path, name);
  mkdirSync(join(root, "a/b"), { recursive: true });
  writeFileSync(join(root, "a/b/file"), "payload\n");
  writeFileSync(join(root, "top"), "x".repeat(70000));
  return root;
}

function stagingDirs(repo: Repo): string[] {
  return readdirSync(repo.tmpDir).filter((n) => n.startsWith("staging-"));
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => !e.isDirectory())
    .map((e) => e.name);
}

async function countLooseCommits(repo: Repo): Promise<number> {
  let n = 0;
  for await (const o of repo.listObjects()) if (o.type === ObjectType.Commit) n++;
  return n;
}

describe.each(["bare-user", "archive"] as RepoMode[])("commit transaction (%s)", (mode) => {
  it("pre-commit failure leaves the staging dir and no ref; the next commit of the same boot reuses it", async () => {
    process.env.OSTREE_BOOTID = BOOT;
    const path = join(tmp.path, `txn-${mode}`);
    const repo = await Repo.init(path, { mode });
    const src = makeTree(`tree-${mode}`);

    process.env.OSTREE_REPO_TEST_ERROR = "pre-commit";
    await expect(commit(repo, { tree: [{ dir: src }], branch: "main", timestamp: 1 })).rejects.toThrow("OSTREE_REPO_TEST_ERROR_PRE_COMMIT specified");
    expect(await resolveRev(repo, "main", true)).toBeNull();
    expect(await countLooseCommits(repo)).toBe(0);
    const [staged, ...more] = stagingDirs(repo);
    expect(more).toEqual([]);
    expect(staged).toMatch(new RegExp(`^staging-${BOOT}-[A-Za-z0-9]{6}$`));
    // Objects (the commit among them) are in the staging dir; its lock file is gone.
    const stagedFiles = filesUnder(join(repo.tmpDir, staged!));
    expect(stagedFiles.filter((f) => f.endsWith(".commit"))).toHaveLength(1);
    expect(stagedFiles.length).toBe(7);
    expect(existsSync(join(repo.tmpDir, `${staged}-lock`))).toBe(false);
    expect(repo.inTransaction).toBe(false);

    delete process.env.OSTREE_REPO_TEST_ERROR;
    const again = await Repo.open(path);
    // Staged objects count as present: nothing is written a second time.
    const r = await commit(again, { tree: [{ dir: src }], branch: "main", timestamp: 1 });
    expect(again.writeStats).toEqual({ metadataWritten: 0, contentWritten: 0, contentBytesWritten: 0 });
    expect(await resolveRev(again, "main")).toBe(r.commit);
    expect(stagingDirs(again)).toEqual([]);
    expect(await countLooseCommits(again)).toBe(1);
    if (existsSync("/usr/bin/ostree")) {
      expectOstreeFsckClean(path);
      expect(ostree(["rev-parse", `--repo=${path}`, "main"]).trim()).toBe(r.commit);
    }
  });
});

describe("transaction staging dirs", () => {
  it("an interrupted transaction's dir is reused (prepareTransaction says so) and other boots' dirs go", async () => {
    process.env.OSTREE_BOOTID = BOOT;
    const repo = await Repo.init(join(tmp.path, "reuse"), { mode: "bare-user" });
    expect(await repo.prepareTransaction()).toBe(false);
    const first = repo.transactionDirName!;
    expect(existsSync(join(repo.tmpDir, `${first}-lock`))).toBe(true);
    await repo.writeMetadata(ObjectType.DirMeta, new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
    await repo.abortTransaction();
    expect(stagingDirs(repo)).toEqual([first]);

    mkdirSync(join(repo.tmpDir, "staging-other-boot-abcdef/ab"), { recursive: true });
    writeFileSync(join(repo.tmpDir, "staging-other-boot-abcdef/ab/x.file"), "");
    expect(await repo.prepareTransaction()).toBe(true);
    expect(repo.transactionDirName).toBe(first);
    await expect(repo.prepareTransaction()).rejects.toThrow("another transaction is in progress");
    await repo.commitTransaction();
    expect(stagingDirs(repo)).toEqual([]);
    expect(filesUnder(join(repo.path, "objects")).filter((f) => f.endsWith(".dirmeta"))).toHaveLength(1);
  });

  it("with fsync off objects go straight to objects/ (as ostree), and tmp/ is cleaned by age, sparing cache", async () => {
    process.env.OSTREE_BOOTID = BOOT;
    const repo = await Repo.init(join(tmp.path, "nofsync"), { mode: "bare-user" });
    expect(existsSync(join(repo.tmpDir, "cache"))).toBe(true);
    const old = new Date(Date.now() - 2 * 86400 * 1000);
    writeFileSync(join(repo.tmpDir, "old-file"), "");
    utimesSync(join(repo.tmpDir, "old-file"), old, old);
    utimesSync(join(repo.tmpDir, "cache"), old, old);
    writeFileSync(join(repo.tmpDir, "young-file"), "");
    process.env.OSTREE_REPO_TEST_ERROR = "pre-commit";
    await expect(commit(repo, { tree: [{ dir: makeTree("tree-nofsync") }], branch: "main", fsync: false })).rejects.toThrow("PRE_COMMIT");
    expect(await countLooseCommits(repo)).toBe(1);
    expect(await resolveRev(repo, "main", true)).toBeNull();
    const [staged] = stagingDirs(repo);
    expect(filesUnder(join(repo.tmpDir, staged!))).toEqual([]);
    expect(readdirSync(repo.tmpDir).sort()).toEqual(["cache", staged!, "young-file"]);
  });
});

describeInterop("transaction interop", () => {
  it("a staging dir left by ostree is reused by our commit, and ours by ostree's", async () => {
    process.env.OSTREE_BOOTID = BOOT;
    const path = join(tmp.path, "interop");
    ostree(["init", `--repo=${path}`, "--mode=bare-user"]);
    const src = makeTree("tree-interop");
    const env = { ...process.env, OSTREE_BOOTID: BOOT, OSTREE_REPO_TEST_ERROR: "pre-commit" };
    expect(() => ostree(["commit", `--repo=${path}`, "-b", "main", "--timestamp=@1", src], { env })).toThrow();
    const [theirs] = stagingDirs(await Repo.open(path));
    const repo = await Repo.open(path);
    const r = await commit(repo, { tree: [{ dir: src }], branch: "main", timestamp: 1 });
    expect(repo.writeStats.contentWritten).toBe(0);
    expect(theirs).toBeDefined();
    expect(stagingDirs(repo)).toEqual([]);
    expectOstreeFsckClean(path);

    process.env.OSTREE_REPO_TEST_ERROR = "pre-commit";
    writeFileSync(join(src, "new"), "new\n");
    await expect(commit(await Repo.open(path), { tree: [{ dir: src }], branch: "main", timestamp: 2 })).rejects.toThrow("PRE_COMMIT");
    const out = ostree(["commit", `--repo=${path}`, "-b", "main", "--timestamp=@2", "--table-output", src], { env: { ...process.env, OSTREE_REPO_TEST_ERROR: "" } });
    expect(out).toContain("Content Written: 0");
    expect(out).toContain(`Commit: `);
    expect(ostree(["rev-parse", `--repo=${path}`, "main"]).trim()).not.toBe(r.commit);
    expect(stagingDirs(repo)).toEqual([]);
    expectOstreeFsckClean(path);
  });
});
