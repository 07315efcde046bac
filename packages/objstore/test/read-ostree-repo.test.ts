import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeInterop, ostree, sh, SPEC_DIR, tempDir } from "@ostree-ts/interop";
import { listRefs, ObjectType, Repo, resolveRev, type RepoMode } from "../src/index.js";

// Vectors from shared/spec/repo.md §12.
const COMMIT = "9d64ba6fa68b45c9709558c5357d46a0057f8c26a7203698c5d40cee226a7ccb";
const ROOT_TREE = "8a835e985c586a2081b5094569ef5d641a1125e92ef5c22cd787f391ca7ec30d";
const DIRMETA = "446a0ef11b7cc167f3b603e585c7eeeeb675faa412d5ec73f62988eb0b6c5488";
const FILES: Record<string, string> = {
  empty: "cc700d46f407c6c5ab2d5dde474366a928b7398277e61162e7f8ec06f469f07e",
  "hello.txt": "81381808c56d4f3d643ec12f6a18fcf2993af8daba7c2a1b2cbfc315b39424c6",
  link: "f66efa496a72379413c44593de510dc344beb045294f1a543da87b2b6118db35",
  "run.sh": "89b350d278ff59ba4780bc377b8ebfee8ade6b55c99fab1ec84e133bc6ea52c5",
};

describeInterop("reading repos written by real ostree", () => {
  const tmp = tempDir();
  beforeAll(() => sh(join(SPEC_DIR, "vectors/mktree.sh"), ["tree"], tmp.path));
  afterAll(() => tmp.cleanup());

  for (const mode of ["archive", "bare", "bare-user", "bare-user-only"] as RepoMode[]) {
    it(`reads a ${mode} repo object by object`, async () => {
      const path = join(tmp.path, `repo-${mode}`);
      ostree(["init", `--repo=${path}`, `--mode=${mode}`]);
      ostree([
        "commit", `--repo=${path}`, "-b", "test/ref", "--timestamp=2020-01-01T00:00:00Z",
        "-s", "Test subject", "-m", "Test body", "--no-xattrs", join(tmp.path, "tree"),
      ]);
      const repo = await Repo.open(path);
      expect(repo.mode).toBe(mode);
      expect(await resolveRev(repo, "test/ref")).toBe(COMMIT);
      expect((await listRefs(repo)).map((r) => r.refspec)).toEqual(["test/ref"]);
      const commit = await repo.readCommit(COMMIT);
      expect(commit).toMatchObject({ parent: null, subject: "Test subject", body: "Test body", timestamp: 1577836800, rootTree: ROOT_TREE, rootMeta: DIRMETA });
      expect(commit.metadata.map(([k]) => k)).toEqual(["ostree.ref-binding"]);
      const root = await repo.readDirTree(ROOT_TREE);
      expect(root.files.map((f) => f.name)).toEqual(["empty", "hello.txt", "link", "run.sh"]);
      for (const f of root.files) {
        expect(f.checksum).toBe(FILES[f.name]);
        expect(await repo.computeContentChecksum(f.checksum)).toBe(f.checksum);
      }
      const link = await repo.readContentBytes(FILES.link!);
      expect(link.meta.symlinkTarget).toBe("hello.txt");
      const hello = await repo.readContentBytes(FILES["hello.txt"]!);
      expect(Buffer.from(hello.data).toString()).toBe("hello world\n");
      expect(hello.meta.mode).toBe(0o100644);
      const objects = [];
      for await (const o of repo.listObjects()) objects.push(o);
      expect(objects.filter((o) => o.type === ObjectType.File)).toHaveLength(5);
    });
  }
});
