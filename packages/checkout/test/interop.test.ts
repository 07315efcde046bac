import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeInterop, ostree, runOstree, sh, SPEC_DIR, tempDir } from "@ostree-ts/interop";
import { Repo, type RepoMode } from "@ostree-ts/objstore";
import { checkout, DevInoCache } from "../src/index.js";
import { makeRichTree, optionsFromFlags, snapshot } from "./helpers.js";

const MODES: RepoMode[] = ["bare", "bare-user", "bare-user-only", "archive"];
const FLAG_SETS: string[][] = [
  [],
  ["-U"],
  ["-C"],
  ["-H"],
  ["-U", "-H"],
  ["-U", "-C"],
  ["-M"],
  ["-U", "--disable-cache"],
  ["-z"],
  ["--subpath=/ünïcödé"],
  ["--subpath=a/b/c"],
  ["--subpath=/hello.txt"],
  ["--subpath=/suid", "-U"],
];

describeInterop("checkout matches ostree checkout", () => {
  const tmp = tempDir("ostree-ts-checkout-");
  let n = 0;
  const fresh = () => join(tmp.path, `co-${n++}`);

  beforeAll(() => {
    sh(join(SPEC_DIR, "vectors/mktree.sh"), ["tree"], tmp.path);
    makeRichTree(tmp.path);
    for (const mode of MODES) {
      const repo = join(tmp.path, `repo-${mode}`);
      ostree(["init", `--repo=${repo}`, `--mode=${mode}`]);
      const extra = mode === "bare-user-only" ? ["--canonical-permissions"] : [];
      ostree(["commit", `--repo=${repo}`, "-b", "vec", "--timestamp=2020-01-01T00:00:00Z", "-s", "v", "--no-xattrs", join(tmp.path, "tree")]);
      ostree(["commit", `--repo=${repo}`, "-b", "rich", "-s", "rich", ...extra, join(tmp.path, "rich")]);
    }
  });
  afterAll(() => tmp.cleanup());

  /** Run both checkouts; they must both fail, or produce identical trees. */
  async function compare(mode: RepoMode, ref: string, flags: string[], prepare?: (dest: string) => void): Promise<string[] | null> {
    const repoPath = join(tmp.path, `repo-${mode}`);
    const theirs = fresh();
    const ours = fresh();
    prepare?.(theirs);
    prepare?.(ours);
    const r = runOstree(["checkout", `--repo=${repoPath}`, ...flags, ref, theirs]);
    let ourError: unknown;
    try {
      await checkout(await Repo.open(repoPath), ref, ours, optionsFromFlags(flags));
    } catch (e) {
      ourError = e;
    }
    if (r.status !== 0) {
      expect(ourError, `ostree failed (${r.stderr.trim()}) but we succeeded`).toBeDefined();
      return null;
    }
    if (ourError) throw ourError;
    const a = snapshot(theirs, repoPath);
    const b = snapshot(ours, repoPath);
    expect(b).toEqual(a);
    return a;
  }

  for (const mode of MODES) {
    for (const flags of FLAG_SETS) {
      it(`${mode} ${flags.join(" ") || "(no flags)"}`, async () => {
        await compare(mode, "vec", flags);
        await compare(mode, "rich", flags);
      });
    }

    it(`${mode}: hardlinks share inodes with the object store where ostree's do`, async () => {
      const snap = await compare(mode, "rich", mode === "bare" ? [] : ["-U"]);
      expect(snap).not.toBeNull();
      const linked = snap!.filter((l) => l.includes(" link=objects/") || l.includes(" link=uncompressed-objects-cache/"));
      expect(linked.length).toBeGreaterThan(5);
    });

    it(`${mode}: union over an existing checkout, union-add, union-identical`, async () => {
      const pre = (dest: string) => {
        mkdirSync(dest);
        mkdirSync(join(dest, "sub"));
        writeFileSync(join(dest, "hello.txt"), "old\n");
        writeFileSync(join(dest, "extra"), "keep\n");
        writeFileSync(join(dest, "sub", "nested.txt"), "nested\n");
      };
      for (const flags of [["--union"], ["--union", "-U"], ["--union-add"], ["--union-add", "-U"], ["--union-identical", "-H"], ["--union-identical", "-H", "-U"]]) {
        await compare(mode, "vec", flags, pre);
      }
      // Identical content laid twice: union-identical accepts it.
      const twice = (dest: string) => {
        const repoPath = join(tmp.path, `repo-${mode}`);
        ostree(["checkout", `--repo=${repoPath}`, ...(mode === "bare" ? [] : ["-U"]), "vec", dest]);
      };
      await compare(mode, "vec", ["--union-identical", "-H", ...(mode === "bare" ? [] : ["-U"])], twice);
      await compare(mode, "vec", ["--union", ...(mode === "bare" ? [] : ["-U"])], twice);
    });

    it(`${mode}: existing destination without union fails like ostree`, async () => {
      await compare(mode, "vec", [], (d) => mkdirSync(d));
    });
  }

  it("skip-list uses ostree's path form", async () => {
    const list = join(tmp.path, "skip");
    writeFileSync(list, "/hello.txt\n/sub/\n/a/b\n/ünïcödé\n/owneddir/f\n");
    await compare("bare", "rich", [`--skip-list=${list}`]);
    await compare("bare", "vec", [`--skip-list=${list}`]);
  });

  it("whiteouts remove lower-layer entries", async () => {
    const layer = join(tmp.path, "layer");
    mkdirSync(join(layer, "sub"), { recursive: true });
    writeFileSync(join(layer, ".wh.hello.txt"), "");
    writeFileSync(join(layer, "sub", ".wh..wh..opq"), "");
    writeFileSync(join(layer, "sub", "new"), "new\n");
    writeFileSync(join(layer, ".wh.link"), "");
    const repoPath = join(tmp.path, "repo-bare");
    ostree(["commit", `--repo=${repoPath}`, "-b", "layer", "--no-xattrs", layer]);
    const lower = (dest: string) => ostree(["checkout", `--repo=${repoPath}`, "vec", dest]);
    const snap = await compare("bare", "layer", ["--union", "--whiteouts"], lower);
    expect(snap!.some((l) => l.includes("/hello.txt"))).toBe(false);
    expect(snap!.some((l) => l.includes("/sub/nested.txt"))).toBe(false);
  });

  it("fills the devino cache for every hardlinked file", async () => {
    const repo = await Repo.open(join(tmp.path, "repo-bare"));
    const cache = new DevInoCache();
    const stats = await checkout(repo, "rich", fresh(), { devinoCache: cache });
    expect(cache.size).toBeGreaterThan(0);
    expect(stats.hardlinked).toBeGreaterThanOrEqual(cache.size);
  });
});
