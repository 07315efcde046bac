import { execFileSync } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { setAttributeSync } from "@napi-rs/xattr";
import { SPEC_DIR, tempDir } from "@ostree-ts/interop";
import { commit, ObjectType, Repo, resolveRev, type RepoMode } from "../src/index.js";

// repo.md §12 vectors; these need no ostree binary.
const COMMIT = "9d64ba6fa68b45c9709558c5357d46a0057f8c26a7203698c5d40cee226a7ccb";
const ROOT_TREE = "8a835e985c586a2081b5094569ef5d641a1125e92ef5c22cd787f391ca7ec30d";
const DIRMETA = "446a0ef11b7cc167f3b603e585c7eeeeb675faa412d5ec73f62988eb0b6c5488";
const MODES: RepoMode[] = ["archive", "bare", "bare-user", "bare-user-only"];

describe("commit(): repo.md §12 vectors", () => {
  const tmp = tempDir();
  beforeAll(() => execFileSync("sh", [join(SPEC_DIR, "vectors/mktree.sh"), "tree"], { cwd: tmp.path }));
  afterAll(() => tmp.cleanup());

  for (const mode of MODES) {
    it(`commits the vector tree to ${COMMIT.slice(0, 8)} in a ${mode} repo`, async () => {
      const repo = await Repo.init(join(tmp.path, `repo-${mode}`), { mode });
      const r = await commit(repo, {
        tree: [{ dir: join(tmp.path, "tree") }],
        branch: "test/ref",
        timestamp: "2020-01-01T00:00:00Z",
        subject: "Test subject",
        body: "Test body",
        noXattrs: true,
      });
      expect(r).toMatchObject({ commit: COMMIT, skipped: false, rootTree: ROOT_TREE, rootMeta: DIRMETA });
      expect(await resolveRev(repo, "test/ref")).toBe(COMMIT);
      const objects: string[] = [];
      for await (const o of repo.listObjects()) objects.push(`${o.checksum}.${o.type}`);
      // 5 files (link, empty, hello, run.sh, nested), 2 dirtrees, 1 dirmeta, 1 commit.
      expect(objects).toHaveLength(9);
      for await (const o of repo.listObjects()) {
        if (o.type === ObjectType.File) expect(await repo.computeContentChecksum(o.checksum)).toBe(o.checksum);
      }
    });
  }

  it("xattr vector: user.alpha/user.zeta give file a3d35c55… (archive)", async () => {
    const dir = join(tmp.path, "xtree");
    mkdirSync(dir);
    chmodSync(dir, 0o755);
    writeFileSync(join(dir, "f"), "x");
    chmodSync(join(dir, "f"), 0o644);
    // Set in reverse order: the header must sort them by name.
    setAttributeSync(join(dir, "f"), "user.zeta", Buffer.from("1"));
    setAttributeSync(join(dir, "f"), "user.alpha", Buffer.from("hello"));
    const repo = await Repo.init(join(tmp.path, "repo-x"), { mode: "archive" });
    const r = await commit(repo, { tree: [{ dir }], orphan: true, noBindings: true, timestamp: 0 });
    const root = await repo.readDirTree(r.rootTree);
    expect(root.files).toEqual([{ name: "f", checksum: "a3d35c558f739c69ca982c17bed1e56eb1b2576caa32039d001afad1de033c62" }]);
    const obj = await repo.openContent(root.files[0]!.checksum);
    expect(obj.meta.xattrs.map(([n]) => n)).toEqual(["user.alpha", "user.zeta"]);
  });

  it("an orphan commit without bind refs still carries an empty ostree.ref-binding (as ostree does)", async () => {
    const repo = await Repo.init(join(tmp.path, "repo-orphan"), { mode: "bare-user" });
    const r = await commit(repo, { tree: [{ dir: join(tmp.path, "tree") }], orphan: true, timestamp: 0 });
    const c = await repo.readCommit(r.commit);
    expect(c.metadata).toEqual([["ostree.ref-binding", { type: "as", value: [] }]]);
  });

  it("canonical-permissions vector", async () => {
    const dir = join(tmp.path, "ctree");
    mkdirSync(join(dir, "emptydir"), { recursive: true });
    writeFileSync(join(dir, "suid"), "x\n");
    chownSync(join(dir, "suid"), 1000, 1000);
    chmodSync(join(dir, "suid"), 0o4775);
    chownSync(dir, 1000, 1000);
    chmodSync(dir, 0o775);
    chmodSync(join(dir, "emptydir"), 0o755);
    const repo = await Repo.init(join(tmp.path, "repo-c"), { mode: "archive" });
    const plain = await commit(repo, { tree: [{ dir }], orphan: true, noXattrs: true, timestamp: 0 });
    const rootMeta = await repo.readDirMeta(plain.rootMeta);
    expect(rootMeta).toMatchObject({ uid: 1000, gid: 1000, mode: 0o40775 });
    expect((await repo.readDirTree(plain.rootTree)).files[0]!.checksum).toBe("dfb0c4acad486e121b666cdc73fae62fd735fe09ef8e2d6640cbb456530e8488");
    const canon = await commit(repo, { tree: [{ dir }], orphan: true, canonicalPermissions: true, timestamp: 0 });
    expect(canon.rootTree).toBe("eb0088b902907eab668aee52f3ef472ea4a95f0634eea5ba6995e9cf9ed4d5fc");
    expect(canon.rootMeta).toBe(DIRMETA);
    expect((await repo.readDirTree(canon.rootTree)).files[0]!.checksum).toBe("d125cb0beb578a622260c0dab2a97ee85f3b1d8e67bf69f66ee9f88c928bf0d7");
  });
});
