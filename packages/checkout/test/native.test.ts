import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeInterop, ostree, runOstree, tempDir } from "@ostree-ts/interop";
import { encodeCommit, encodeDirMeta, encodeDirTree, ObjectType, Repo, setRef, type DirTree, type FileMeta } from "@ostree-ts/objstore";
import { checkout, walk, type CheckoutOptions, type CheckoutStats } from "../src/index.js";
import { loadAddon } from "../src/native.js";
import { makeRichTree, optionsFromFlags, snapshot } from "./helpers.js";

/*
 * The C addon (native/) does bare-user `-U` hardlink checkouts and archive
 * `-U` checkouts through the uncompressed cache; everything it leaves goes
 * through the JavaScript walk. Both paths must give ostree's tree
 * and ostree's errors.
 */

/** Wide enough below the top levels (depth 4) that both threads get subtrees, with files that the addon must leave to the walk. */
function makeWideTree(dir: string): void {
  for (let a = 0; a < 3; a++)
    for (let b = 0; b < 3; b++)
      for (let c = 0; c < 3; c++)
        for (let d = 0; d < 4; d++) {
          const leaf = join(dir, `a${a}`, `b${b}`, `c${c}`, `d${d}`, "e");
          mkdirSync(leaf, { recursive: true });
          for (let f = 0; f < 4; f++) writeFileSync(join(leaf, `f${f}`), `${a}${b}${c}${d}${f}\n`.repeat(f + 1), { mode: f % 3 ? 0o644 : 0o755 });
          symlinkSync(d % 2 ? "f0" : "../../ünïcödé-target", join(leaf, "link"));
          writeFileSync(join(leaf, "empty"), "");
        }
  writeFileSync(join(dir, "a0", "top"), "spine file\n");
  writeFileSync(join(dir, "a1", "b1", "noread"), "x", { mode: 0o200 });
  // A subtree with nothing to defer, so the addon gives its directories their modes: read-only, sticky, setgid.
  const odd = join(dir, "a0", "b0", "c0", "odd");
  mkdirSync(join(odd, "ro", "sticky", "sgid"), { recursive: true });
  writeFileSync(join(odd, "ro", "sticky", "sgid", "f"), "odd\n");
  writeFileSync(join(odd, "ro", "g"), "g\n");
  chmodSync(join(odd, "ro", "sticky", "sgid"), 0o2775);
  chmodSync(join(odd, "ro", "sticky"), 0o1777);
  chmodSync(join(odd, "ro"), 0o555);
}

const stats = (s: CheckoutStats) => ({ hardlinked: s.hardlinked, copied: s.copied, directories: s.directories });

it("the addon is built at install and loads", () => {
  expect(loadAddon()).toBeDefined();
});

/** Commits of the rich and the wide tree (refs `rich`, `wide`) by real ostree into a new repo of `mode`. */
function richAndWideRepo(dir: string, repoPath: string, mode: string): void {
  makeRichTree(dir);
  makeWideTree(join(dir, "wide"));
  ostree(["init", `--repo=${repoPath}`, `--mode=${mode}`]);
  ostree(["commit", `--repo=${repoPath}`, "-b", "rich", "-s", "rich", join(dir, "rich")]);
  ostree(["commit", `--repo=${repoPath}`, "-b", "wide", "-s", "wide", join(dir, "wide")]);
}

describeInterop("native bare-user checkout matches ostree and the JavaScript walk", () => {
  const tmp = tempDir("ostree-ts-native-");
  let n = 0;
  const fresh = () => join(tmp.path, `co-${n++}`);
  const repoPath = join(tmp.path, "repo");

  beforeAll(() => richAndWideRepo(tmp.path, repoPath, "bare-user"), 60_000);
  afterAll(() => tmp.cleanup());

  for (const ref of ["rich", "wide"]) {
    for (const flags of [["-U"], ["-U", "-H"], ["-U", "-M"]]) {
      it(`${ref} ${flags.join(" ")}`, async () => {
        const theirs = fresh();
        ostree(["checkout", `--repo=${repoPath}`, ...flags, ref, theirs]);
        const expected = snapshot(theirs, repoPath);
        const base = optionsFromFlags(flags);
        const repo = await Repo.open(repoPath);
        const results = [];
        for (const extra of [{ native: false, threads: 1 }, { threads: 1 }, { threads: 2 }] as CheckoutOptions[]) {
          const ours = fresh();
          const s = await checkout(repo, ref, ours, { ...base, ...extra });
          expect(snapshot(ours, repoPath), JSON.stringify(extra)).toEqual(expected);
          results.push(s);
        }
        expect(stats(results[1]!)).toEqual(stats(results[0]!));
        expect(stats(results[2]!)).toEqual(stats(results[0]!));
        expect(results[2]!.threads).toBe(2);
        expect(results[1]!.threads).toBe(1);
      });
    }
  }

  it("an existing destination fails as ostree's does", async () => {
    const dest = fresh();
    mkdirSync(dest);
    const r = runOstree(["checkout", `--repo=${repoPath}`, "-U", "-H", "wide", dest]);
    expect(r.status).not.toBe(0);
    const repo = await Repo.open(repoPath);
    await expect(checkout(repo, "wide", dest, { userMode: true, requireHardlinks: true })).rejects.toThrow("mkdirat: File exists");
    expect(readdirSync(dest)).toEqual([]);
  });
});

describe("native checkout failures", () => {
  const tmp = tempDir("ostree-ts-native-bad-");
  afterAll(() => tmp.cleanup());
  const DIRMETA = encodeDirMeta({ uid: 0, gid: 0, mode: 0o40755, xattrs: [] });
  const file: FileMeta = { uid: 0, gid: 0, mode: 0o100644, symlinkTarget: "", xattrs: [] };

  /** A commit whose tree nests `tree` under `depth` directories named d0, d1, … */
  async function commitNested(repo: Repo, ref: string, depth: number, tree: DirTree): Promise<void> {
    const meta = await repo.writeMetadata(ObjectType.DirMeta, DIRMETA);
    let root = await repo.writeMetadata(ObjectType.DirTree, encodeDirTree(tree));
    for (let i = depth - 1; i >= 0; i--) root = await repo.writeMetadata(ObjectType.DirTree, encodeDirTree({ files: [], dirs: [{ name: `d${i}`, tree: root, meta }] }));
    const c = encodeCommit({ metadata: [], parent: null, related: [], subject: "", body: "", timestamp: 0, rootTree: root, rootMeta: meta });
    await setRef(repo, { kind: "heads" }, ref, await repo.writeMetadata(ObjectType.Commit, c));
  }

  /** Both paths fail with the same message; returns it. */
  async function sameFailure(repo: Repo, ref: string): Promise<string> {
    const messages: string[] = [];
    for (const native of [false, true]) {
      const dest = join(tmp.path, `${ref}-${native}`);
      const e = await checkout(repo, ref, dest, { userMode: true, requireHardlinks: true, native, threads: 2 }).then(
        () => undefined,
        (err: unknown) => err as Error,
      );
      expect(e, `native: ${native}`).toBeInstanceOf(Error);
      messages.push(e!.message);
    }
    expect(messages[1]).toBe(messages[0]);
    return messages[0]!;
  }

  it("a directory name the filesystem refuses, in the top levels and inside a subtree", async () => {
    const repo = await Repo.init(join(tmp.path, "repo-long"), { mode: "bare-user" });
    const meta = await repo.writeMetadata(ObjectType.DirMeta, DIRMETA);
    const empty = await repo.writeMetadata(ObjectType.DirTree, encodeDirTree({ files: [], dirs: [] }));
    const long = { files: [], dirs: [{ name: "x".repeat(300), tree: empty, meta }] };
    await commitNested(repo, "shallow", 1, long);
    await commitNested(repo, "deep", 5, long);
    expect(await sameFailure(repo, "shallow")).toBe("mkdirat: ENAMETOOLONG");
    expect(await sameFailure(repo, "deep")).toBe("mkdirat: ENAMETOOLONG");
  });

  it("a content object that is a directory is refused and nothing is linked in its place", async () => {
    const repo = await Repo.init(join(tmp.path, "repo-objdir"), { mode: "bare-user" });
    const f = await repo.writeContent(file, { data: new TextEncoder().encode("victim\n") });
    const g = await repo.writeContent(file, { data: new TextEncoder().encode("fine\n") });
    await commitNested(repo, "objdir", 6, { files: [{ name: "f", checksum: f }, { name: "g", checksum: g }], dirs: [] });
    const obj = repo.objectPath(f, ObjectType.File);
    rmSync(obj);
    mkdirSync(obj);
    expect(await sameFailure(repo, "objdir")).toMatch(/is a directory/);
    expect(existsSync(join(tmp.path, "objdir-true", "d0/d1/d2/d3/d4/d5/f"))).toBe(false);
  });
});

/** `cp -a`: a repo (and its uncompressed cache) to check out from without touching the original. */
function copyRepo(from: string, to: string): string {
  execFileSync("cp", ["-a", from, to]);
  return to;
}

describeInterop("native archive -U checkout through the uncompressed cache matches ostree and the JavaScript walk", () => {
  const tmp = tempDir("ostree-ts-native-archive-");
  let n = 0;
  const fresh = () => join(tmp.path, `co-${n++}`);
  const repoPath = join(tmp.path, "repo");

  beforeAll(() => richAndWideRepo(tmp.path, repoPath, "archive"), 60_000);
  afterAll(() => tmp.cleanup());

  /** How the cache is filled (by ostree) before the checkout under test. */
  const warmers: Record<string, (repo: string, ref: string) => void> = {
    cold: () => {},
    warm: (repo, ref) => ostree(["checkout", `--repo=${repo}`, "-U", ref, fresh()]),
    partial: (repo, ref) => ostree(["checkout", `--repo=${repo}`, "-U", `--subpath=${ref === "rich" ? "/a" : "/a0"}`, ref, fresh()]),
  };

  for (const ref of ["rich", "wide"]) {
    for (const [state, warm] of Object.entries(warmers)) {
      it(`${ref} -U, ${state} cache`, async () => {
        const theirRepo = copyRepo(repoPath, `${fresh()}-repo`);
        warm(theirRepo, ref);
        const theirs = fresh();
        ostree(["checkout", `--repo=${theirRepo}`, "-U", ref, theirs]);
        const expected = snapshot(theirs, theirRepo);
        const expectedCache = snapshot(join(theirRepo, "uncompressed-objects-cache"), theirRepo);
        const results = [];
        for (const extra of [{ native: false, threads: 1 }, { threads: 1 }, { threads: 2 }] as CheckoutOptions[]) {
          const ourRepo = copyRepo(repoPath, `${fresh()}-repo`);
          warm(ourRepo, ref);
          const ours = fresh();
          const s = await checkout(await Repo.open(ourRepo), ref, ours, { ...optionsFromFlags(["-U"]), ...extra });
          expect(snapshot(ours, ourRepo), JSON.stringify(extra)).toEqual(expected);
          expect(snapshot(join(ourRepo, "uncompressed-objects-cache"), ourRepo), JSON.stringify(extra)).toEqual(expectedCache);
          results.push(s);
        }
        expect(stats(results[1]!)).toEqual(stats(results[0]!));
        expect(stats(results[2]!)).toEqual(stats(results[0]!));
        expect(results[2]!.threads).toBe(2);
        expect(results[1]!.threads).toBe(1);
      });
    }
  }

  it("the addon links cached regular files and makes ASCII symlinks, and leaves the rest to the walk", async () => {
    const native = loadAddon()!;
    const repo = await Repo.open(copyRepo(repoPath, `${fresh()}-repo`));
    // Half the cache: the subpath /a of rich.
    warmers.partial!(repo.path, "rich");
    const tree = new Map<string, string>();
    for await (const e of walk(repo, "rich", { recursive: true })) if (e.type !== "dir") tree.set(e.path, e.checksum);
    const dest = fresh();
    mkdirSync(dest);
    const names = ["/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/leaf", "/hello.txt", "/rel-link", "/abs-link", "/xattr-file", "/empty1", "/noread", "/suid"];
    const task = names.flatMap((p, i) => ["f", tree.get(p)!, join(dest, String(i))]);
    const session = native.start(1, join(repo.path, "objects"), join(repo.path, "uncompressed-objects-cache"));
    native.push(session, [...task, ""].join("\0"));
    const r = native.finish(session, false);
    // The leaf is in the cache; hello.txt and suid are not yet; xattrs, empty and unreadable files are the walk's.
    expect({ linked: r.linked, symlinked: r.symlinked, errno: r.errno }).toEqual({ linked: 1, symlinked: 2, errno: 0 });
    expect(r.deferred.filter((_, i) => i % 2 === 1).map((d) => names[Number(d.slice(dest.length + 1))])).toEqual([
      "/hello.txt",
      "/xattr-file",
      "/empty1",
      "/noread",
      "/suid",
    ]);
    expect(readlinkSync(join(dest, "2"))).toBe("hello.txt");
  });
});
