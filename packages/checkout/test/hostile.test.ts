import { existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { tempDir } from "@ostree-ts/interop";
import {
  CorruptObjectError,
  encodeCommit,
  encodeDirMeta,
  encodeDirTree,
  ObjectType,
  Repo,
  setRef,
  type DirTree,
  type FileMeta,
  type RepoMode,
} from "@ostree-ts/objstore";
import { checkout, CheckoutError, UnsafePathError } from "../src/index.js";

const DIRMETA = encodeDirMeta({ uid: 0, gid: 0, mode: 0o40755, xattrs: [] });
const file = (mode = 0o100644): FileMeta => ({ uid: 0, gid: 0, mode, symlinkTarget: "", xattrs: [] });
const link = (target: string): FileMeta => ({ uid: 0, gid: 0, mode: 0o120777, symlinkTarget: target, xattrs: [] });

async function commitTree(repo: Repo, ref: string, tree: DirTree): Promise<string> {
  const meta = await repo.writeMetadata(ObjectType.DirMeta, DIRMETA);
  const root = await repo.writeMetadata(ObjectType.DirTree, encodeDirTree(tree));
  const c = encodeCommit({ metadata: [], parent: null, related: [], subject: "", body: "", timestamp: 0, rootTree: root, rootMeta: meta });
  const csum = await repo.writeMetadata(ObjectType.Commit, c);
  await setRef(repo, { kind: "heads" }, ref, csum);
  return csum;
}

describe("hostile repositories", () => {
  const tmp = tempDir("ostree-ts-hostile-");
  afterAll(() => tmp.cleanup());
  const outside = join(tmp.path, "outside");
  mkdirSync(outside);

  for (const mode of ["bare", "bare-user", "archive"] as RepoMode[]) {
    describe(mode, () => {
      const repoPath = join(tmp.path, `repo-${mode}`);
      let repo: Repo;
      const dest = (name: string) => join(tmp.path, `${mode}-${name}`);

      it("a dirtree naming ../x is refused before anything is written", async () => {
        repo = await Repo.init(repoPath, { mode });
        const f = await repo.writeContent(file(), { data: new TextEncoder().encode("pwned\n") });
        await commitTree(repo, "dotdot", { files: [{ name: "../x", checksum: f }], dirs: [] });
        const d = dest("dotdot");
        await expect(checkout(repo, "dotdot", d)).rejects.toThrow("Invalid / in filename ../x");
        expect(existsSync(join(tmp.path, "x"))).toBe(false);
        expect(existsSync(d)).toBe(false);
      });

      it("a symlink and a directory of the same name in one dirtree is refused", async () => {
        const l = await repo.writeContent(link(outside), { data: new Uint8Array() });
        const pw = await repo.writeContent(file(), { data: new TextEncoder().encode("root::0:0::/:/bin/sh\n") });
        const inner = await repo.writeMetadata(ObjectType.DirTree, encodeDirTree({ files: [{ name: "passwd", checksum: pw }], dirs: [] }));
        const meta = await repo.writeMetadata(ObjectType.DirMeta, DIRMETA);
        await commitTree(repo, "both", { files: [{ name: "a", checksum: l }], dirs: [{ name: "a", tree: inner, meta }] });
        for (const opts of [{}, { union: true }, { unionAdd: true }]) {
          const d = dest(`both-${Object.keys(opts).join("") || "plain"}`);
          await expect(checkout(repo, "both", d, opts)).rejects.toThrow(UnsafePathError);
          expect(readdirSync(outside)).toEqual([]);
        }
      });

      it("union over a symlink a -> outside never writes through it", async () => {
        const l = await repo.writeContent(link(outside), { data: new Uint8Array() });
        await commitTree(repo, "layer1", { files: [{ name: "a", checksum: l }], dirs: [] });
        const pw = await repo.writeContent(file(), { data: new TextEncoder().encode("root::0:0::/:/bin/sh\n") });
        const inner = await repo.writeMetadata(ObjectType.DirTree, encodeDirTree({ files: [{ name: "passwd", checksum: pw }], dirs: [] }));
        const meta = await repo.writeMetadata(ObjectType.DirMeta, DIRMETA);
        await commitTree(repo, "layer2", { files: [], dirs: [{ name: "a", tree: inner, meta }] });
        for (const opts of [{ union: true }, { unionAdd: true }, { union: true, userMode: true }, { union: true, forceCopy: true }]) {
          const d = dest(`layers-${Object.keys(opts).join("-")}`);
          await checkout(repo, "layer1", d);
          await expect(checkout(repo, "layer2", d, opts)).rejects.toThrow(/symbolic link/);
          expect(readdirSync(outside)).toEqual([]);
        }
      });

      it("whiteouts cannot name . or ..", async () => {
        const e = await repo.writeContent(file(), { data: new Uint8Array() });
        await commitTree(repo, "wh", { files: [{ name: ".wh...", checksum: e }], dirs: [] });
        const d = dest("wh");
        mkdirSync(d);
        await expect(checkout(repo, "wh", d, { union: true, whiteouts: true })).rejects.toThrow(/uplink/);
        expect(existsSync(d)).toBe(true);
      });

      it("a content object that is a directory is refused", async () => {
        const f = await repo.writeContent(file(), { data: new TextEncoder().encode("victim\n") });
        await commitTree(repo, "objdir", { files: [{ name: "f", checksum: f }], dirs: [] });
        const obj = repo.objectPath(f, ObjectType.File);
        rmSync(obj);
        mkdirSync(obj);
        const d = dest("objdir");
        await expect(checkout(repo, "objdir", d)).rejects.toThrow(CorruptObjectError);
        await expect(checkout(repo, "objdir", d, { union: true })).rejects.toThrow(/is a directory/);
        expect(existsSync(join(d, "f"))).toBe(false);
      });
    });
  }

  it("flag conflicts are refused with ostree's messages", async () => {
    const repo = await Repo.open(join(tmp.path, "repo-bare"));
    await expect(checkout(repo, "dotdot", join(tmp.path, "x1"), { requireHardlinks: true, forceCopy: true })).rejects.toThrow(
      "Cannot specify both --require-hardlinks and --force-copy",
    );
    await expect(checkout(repo, "dotdot", join(tmp.path, "x2"), { unionIdentical: true })).rejects.toThrow("--union-identical requires --require-hardlinks");
    await expect(checkout(repo, "dotdot", join(tmp.path, "x3"), { union: true, unionAdd: true })).rejects.toThrow(CheckoutError);
  });
});
