import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, expect, it } from "vitest";
import { bundleLikeCli, describeInterop, ostree, runOstree, tempDir } from "@ostree-ts/interop";
import { encodeCommit, encodeDirMeta, encodeDirTree, ObjectType, Repo, setRef, type DirTree, type RepoMode } from "@ostree-ts/objstore";
import type * as CheckoutModule from "../src/index.js";
import { makeRichTree, optionsFromFlags, snapshot } from "./helpers.js";

/*
 * The worker thread runs JavaScript, so these tests bundle the package the
 * way the CLI does (esbuild, code splitting) and check out through that
 * bundle. Inside node_modules/ so the bundle resolves @napi-rs/xattr.
 */
const PKG = fileURLToPath(new URL("..", import.meta.url));
const OUT = join(PKG, "node_modules", ".cache", `parallel-test-${process.pid}`);

/** A tree wide enough below the spine (depth 4) that both threads get work: 3·4·4·4 leaf directories. */
function makeWideTree(dir: string): void {
  for (let a = 0; a < 3; a++)
    for (let b = 0; b < 4; b++)
      for (let c = 0; c < 4; c++)
        for (let d = 0; d < 4; d++) {
          const leaf = join(dir, `a${a}`, `b${b}`, `c${c}`, `d${d}`, "e");
          mkdirSync(leaf, { recursive: true });
          for (let f = 0; f < 6; f++) writeFileSync(join(leaf, `f${f}`), `${a}${b}${c}${d}${f}\n`.repeat(f + 1), { mode: f % 3 ? 0o644 : 0o755 });
        }
  writeFileSync(join(dir, "a0", "top"), "spine file\n");
  writeFileSync(join(dir, "a1", "b1", "empty"), "");
}

describeInterop("checkout split across a worker thread matches ostree checkout", () => {
  const tmp = tempDir("ostree-ts-parallel-");
  let mod: typeof CheckoutModule;
  let n = 0;
  const fresh = () => join(tmp.path, `co-${n++}`);

  beforeAll(async () => {
    await bundleLikeCli({ entryPoints: { index: join(PKG, "src/index.ts") }, outdir: OUT, external: ["@napi-rs/xattr"] });
    mod = (await import(pathToFileURL(join(OUT, "index.mjs")).href)) as typeof CheckoutModule;
    const tree = join(tmp.path, "tree");
    makeWideTree(tree);
    makeRichTree(join(tree, "a2", "b2", "c2"));
    for (const mode of ["bare", "bare-user", "archive"] as RepoMode[]) {
      const repo = join(tmp.path, `repo-${mode}`);
      ostree(["init", `--repo=${repo}`, `--mode=${mode}`]);
      ostree(["commit", `--repo=${repo}`, "--fsync=false", "-b", "wide", "-s", "wide", tree]);
    }
  }, 120_000);
  afterAll(() => {
    rmSync(OUT, { recursive: true, force: true });
    tmp.cleanup();
  });

  const CASES: Array<[RepoMode, string[]]> = [
    ["bare-user", ["-U", "-H"]],
    ["bare-user", ["-U", "-C"]],
    ["archive", ["-U"]],
    ["archive", ["-U", "--disable-cache"]],
    ["bare", []],
    ["bare-user", []],
  ];
  for (const [mode, flags] of CASES) {
    it(`${mode} ${flags.join(" ") || "(no flags)"}`, async () => {
      const repoPath = join(tmp.path, `repo-${mode}`);
      const theirs = fresh();
      const ours = fresh();
      // No fsync of the uncompressed cache (archive -U), on either side: it only slows the test.
      const r = runOstree(["checkout", `--repo=${repoPath}`, "--fsync=false", ...flags, "wide", theirs]);
      expect(r.status, r.stderr).toBe(0);
      const stats = await mod.checkout(await Repo.open(repoPath), "wide", ours, { ...optionsFromFlags(flags), disableFsync: true, threads: 2 });
      expect(snapshot(ours, repoPath)).toEqual(snapshot(theirs, repoPath));
      expect(stats.hardlinked + stats.copied).toBeGreaterThan(1000);
      // threads: 2 waits for the worker, so both threads took part.
      expect(stats.threads).toBe(2);
    }, 60_000);
  }

  it("reports a failure in either thread as the one-thread walk does, and leaves no thread writing", async () => {
    const repoPath = join(tmp.path, "repo-broken");
    ostree(["init", `--repo=${repoPath}`, "--mode=bare-user"]);
    ostree(["pull-local", `--repo=${repoPath}`, "--disable-fsync", join(tmp.path, "repo-bare-user"), "wide"]);
    // Remove every object whose name sorts last in its fan-out directory: failures land in many subtrees.
    for (const d of readdirSync(join(repoPath, "objects"))) {
      const files = readdirSync(join(repoPath, "objects", d)).filter((f) => f.endsWith(".file")).sort();
      if (files.length) rmSync(join(repoPath, "objects", d, files[files.length - 1]!));
    }
    const repo = await Repo.open(repoPath);
    const one = await mod.checkout(repo, "wide", fresh(), { userMode: true, threads: 1 }).then(
      () => undefined,
      (e: Error) => e,
    );
    const two = await mod.checkout(repo, "wide", fresh(), { userMode: true, threads: 2 }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(one).toBeInstanceOf(Error);
    expect(two).toBeInstanceOf(Error);
    // Which missing object is met first depends on the threads' pace; the wording does not.
    const shape = (e: Error) => e.message.replace(/[0-9a-f]{64}/g, "CSUM");
    expect(shape(two!)).toBe(shape(one!));
  }, 60_000);

  it("refuses a hostile name deep in a subtree, whichever thread meets it, and writes nothing outside", async () => {
    const repoPath = join(tmp.path, "repo-hostile");
    const repo = await Repo.init(repoPath, { mode: "bare-user" });
    const meta = await repo.writeMetadata(ObjectType.DirMeta, encodeDirMeta({ uid: 0, gid: 0, mode: 0o40755, xattrs: [] }));
    const content = await repo.writeContent({ uid: 0, gid: 0, mode: 0o100644, symlinkTarget: "", xattrs: [] }, { data: new TextEncoder().encode("pwned\n") });
    const tree = async (t: DirTree) => repo.writeMetadata(ObjectType.DirTree, encodeDirTree(t));
    const dir = async (name: string, t: DirTree) => ({ name, tree: await tree(t), meta });
    // 24 ordinary subtrees below the spine, and one whose dirtree names ../../../../../x.
    const leaves = [];
    for (let i = 0; i < 24; i++) leaves.push(await dir(`s${String(i).padStart(2, "0")}`, { files: [{ name: "f", checksum: content }], dirs: [] }));
    leaves.splice(17, 0, await dir("s17x", { files: [{ name: "../../../../../x", checksum: content }], dirs: [] }));
    const c = await dir("c", { files: [], dirs: leaves });
    const b = await dir("b", { files: [], dirs: [c] });
    const a = await dir("a", { files: [], dirs: [b] });
    const root = await tree({ files: [], dirs: [a] });
    const commit = await repo.writeMetadata(
      ObjectType.Commit,
      encodeCommit({ metadata: [], parent: null, related: [], subject: "", body: "", timestamp: 0, rootTree: root, rootMeta: meta }),
    );
    await setRef(repo, { kind: "heads" }, "hostile", commit);
    const box = join(tmp.path, "box");
    mkdirSync(box);
    await expect(mod.checkout(repo, "hostile", join(box, "co"), { userMode: true, threads: 2 })).rejects.toThrow("Invalid / in filename ../../../../../x");
    expect(readdirSync(box)).toEqual(["co"]);
    expect(existsSync(join(tmp.path, "x"))).toBe(false);
    expect(existsSync(join(box, "co", "a", "b", "c", "s17x", "x"))).toBe(false);
  }, 60_000);
});
