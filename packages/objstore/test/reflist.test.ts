import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeInterop, ostree, tempDir } from "@ostree-ts/interop";
import { gStrHash, GStrHashMap, listRefsOrdered, Repo } from "../src/index.js";

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
