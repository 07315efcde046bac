import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeInterop, ostree, tempDir } from "@ostree-ts/interop";
import { gStrHash, GStrHashMap, listCollectionRefsOrdered, listRefsOrdered, Repo } from "../src/index.js";

// djb2 (g_str_hash) of these is 1 and 0: GLib stores hashes < 2 as 2 (0 and 1 mark empty/tombstone buckets).
const HASH_ONE = "KbZ--.kb";
const HASH_ZERO = "KbZ--.ka";

it("maps g_str_hash values below 2 to 2, as GHashTable does", () => {
  expect(gStrHash(HASH_ONE)).toBe(2);
  expect(gStrHash(HASH_ZERO)).toBe(2);
  const m = new GStrHashMap<number>();
  m.set(HASH_ONE, 1).set(HASH_ZERO, 0).set("x", 9);
  expect(m.size).toBe(3);
  expect(m.get(HASH_ONE)).toBe(1);
  expect(m.get(HASH_ZERO)).toBe(0);
  expect(m.has("y")).toBe(false);
  expect(m.entries().map(([k]) => k).sort()).toEqual([HASH_ZERO, HASH_ONE, "x"].sort());
});

describeInterop("ref listing order against ostree refs", () => {
  const tmp = tempDir();
  let repoPath: string;
  let commit: string;
  beforeAll(async () => {
    repoPath = join(tmp.path, "repo");
    ostree(["init", `--repo=${repoPath}`, "--mode=archive"]);
    mkdirSync(join(tmp.path, "tree"));
    writeFileSync(join(tmp.path, "tree/f"), "x");
    commit = ostree(["commit", `--repo=${repoPath}`, "--orphan", "--timestamp=2020-01-01T00:00:00Z", join(tmp.path, "tree")]).trim();
    await Repo.open(repoPath);
  });
  afterAll(() => tmp.cleanup());

  it("replays GHashTable order over hundreds of refs, including hashes 0 and 1", () => {
    const names = [HASH_ONE, HASH_ZERO];
    for (let i = 0; i < 300; i++) names.push(i % 7 === 0 ? `dir${i % 5}/sub/r${i}` : `ref-${(i * 2654435761) % 100000}`);
    // Ref files written directly (ostree reads whatever readdir gives, as we do); one ostree-made ref too.
    for (const n of names) {
      mkdirSync(join(repoPath, "refs/heads", n, ".."), { recursive: true });
      writeFileSync(join(repoPath, "refs/heads", n), `${commit}\n`);
    }
    ostree(["refs", `--repo=${repoPath}`, commit, "--create=origin:remote-a"]);
    const theirs = ostree(["refs", `--repo=${repoPath}`]);
    const ours = listRefsOrdered(repoPath, null, { cutPrefix: true })
      .entries()
      .map(([k]) => `${k}\n`)
      .join("");
    expect(ours).toBe(theirs);
    const theirsDir = ostree(["refs", `--repo=${repoPath}`, "--list", "dir1"]);
    const oursDir = listRefsOrdered(repoPath, "dir1", { cutPrefix: false })
      .entries()
      .map(([k]) => `${k}\n`)
      .join("");
    expect(oursDir).toBe(theirsDir);
  });
});

describeInterop("collection ref listing against ostree refs --collections", () => {
  const tmp = tempDir();
  const repoPath = () => join(tmp.path, "repo");
  beforeAll(() => {
    const src = join(tmp.path, "src");
    mkdirSync(join(tmp.path, "tree"));
    writeFileSync(join(tmp.path, "tree/f"), "x");
    ostree(["init", `--repo=${src}`, "--collection-id=org.example.Remote"]);
    for (const b of ["r1", "r2/x"]) ostree(["commit", `--repo=${src}`, "-b", b, join(tmp.path, "tree")]);
    ostree(["init", `--repo=${repoPath()}`, "--collection-id=org.example.Collection"]);
    for (let i = 0; i < 40; i++) ostree(["commit", `--repo=${repoPath()}`, "-b", i % 9 === 0 ? `d${i}/s` : `h${i}`, join(tmp.path, "tree")]);
    for (const m of ["org.example.Mirror:m1", "org.example.Mirror:m2/q", "org.example.Other:h1"]) ostree(["refs", `--repo=${repoPath()}`, "--collections", `--create=${m}`, "h1"]);
    ostree(["remote", "add", `--repo=${repoPath()}`, "--no-sign-verify", "--collection-id=org.example.Remote", "rem", `file://${src}`]);
    ostree(["remote", "add", `--repo=${repoPath()}`, "--no-sign-verify", "plain", `file://${src}`]);
    ostree(["pull", `--repo=${repoPath()}`, "rem", "r1", "r2/x"]);
    // A remote without a collection ID: its refs are never listed.
    ostree(["refs", `--repo=${repoPath()}`, "--create=plain:r1", "h1"]);
  });
  afterAll(() => tmp.cleanup());

  const remotes = new Map([["rem", "org.example.Remote"]]);
  for (const match of [null, "org.example.Collection", "org.example.Mirror", "org.example.Remote", "org.example.None"]) {
    it(`lists ${match ?? "every collection"} in ostree's order`, () => {
      const theirs = ostree(["refs", `--repo=${repoPath()}`, "--collections", ...(match ? [match] : [])]);
      const ours = listCollectionRefsOrdered(repoPath(), "org.example.Collection", remotes, match)
        .map((e) => `(${e.collectionId}, ${e.ref})\n`)
        .join("");
      expect(ours).toBe(theirs);
      if (match !== "org.example.None") expect(ours).not.toBe("");
    });
  }

  it("matches the collection ID exactly, and rejects one that is not valid", () => {
    expect(listCollectionRefsOrdered(repoPath(), "org.example.Collection", remotes, "org.example")).toEqual([]);
    expect(() => listCollectionRefsOrdered(repoPath(), "org.example.Collection", remotes, "h1")).toThrow("Listing refs: Invalid collection ID h1");
  });

  it("lists no refs/heads without a collection ID of the repo's own", () => {
    const refs = listCollectionRefsOrdered(repoPath(), undefined, remotes, null);
    expect(refs.map((e) => e.collectionId).sort()).toEqual(["org.example.Mirror", "org.example.Mirror", "org.example.Other", "org.example.Remote", "org.example.Remote"]);
  });
});
