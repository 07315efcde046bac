/**
 * commit() flags beyond the basic tree walk, each checked against the real
 * `ostree commit` on the same input: --bootable, --base, --consume adoption,
 * --link-checkout-speedup / -I, remote:ref branches, SOURCE_DATE_EPOCH, a tree
 * that contains the repo, and reads through `core.parent`.
 */
import { linkSync, mkdirSync, statSync, writeFileSync, existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { variant } from "@ostree-ts/gvariant";
import { describeInterop, ostree, runOstree, tempDir } from "@ostree-ts/interop";
import { commit, ObjectType, parseTimestamp, Repo, resolveRev, scanHardlinks, type RepoMode } from "../src/index.js";

const TS = "@1600000000";

function tree(root: string, files: Record<string, string>): string {
  for (const [rel, content] of Object.entries(files)) {
    mkdirSync(join(root, rel, ".."), { recursive: true });
    writeFileSync(join(root, rel), content);
  }
  return root;
}

async function pair(dir: string, name: string, mode: RepoMode): Promise<{ theirs: string; ours: string; repo: Repo }> {
  const theirs = join(dir, `${name}-theirs`);
  const ours = join(dir, `${name}-ours`);
  ostree(["init", `--repo=${theirs}`, `--mode=${mode}`]);
  ostree(["config", `--repo=${theirs}`, "set", "core.fsync", "false"]);
  const repo = await Repo.init(ours, { mode });
  repo.config.setString("core", "fsync", "false");
  await repo.saveConfig();
  return { theirs, ours, repo };
}

describe("parseTimestamp: gnulib's relative items", () => {
  const now = new Date(Date.UTC(2024, 5, 15, 12, 0, 0));
  it.each([
    ["now", now.getTime() / 1000],
    ["2 days ago", now.getTime() / 1000 - 2 * 86400],
    ["1 hour", now.getTime() / 1000 + 3600],
  ])("%s", (text, want) => expect(parseTimestamp(text, now)).toBe(want));
  it("today/yesterday are local midnights; month names still parse", () => {
    const midnight = new Date(now);
    midnight.setHours(0, 0, 0, 0);
    expect(parseTimestamp("yesterday", now)).toBe(midnight.getTime() / 1000 - 86400);
    expect(parseTimestamp("1 Jan 2020 00:00 UTC")).toBe(1577836800);
  });
});

describeInterop("commit() extras: same results as ostree commit", () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());

  it("--bootable adds ostree.linux/ostree.bootable in GVariantDict order, and fails like ostree without one kernel", async () => {
    const { theirs, repo } = await pair(tmp.path, "boot", "archive");
    const src = tree(join(tmp.path, "boot-tree"), { "usr/lib/modules/5.10.0-1/vmlinuz": "k\n", "usr/lib/modules/extra/readme": "x\n", "etc/os-release": "ID=x\n" });
    const args = ["--add-metadata-string=version=1", "--add-metadata-string=aaa=2", "--bind-ref=zz"];
    const expected = ostree(["commit", `--repo=${theirs}`, "-b", "b", "--bootable", `--timestamp=${TS}`, ...args, src]).trim();
    const r = await commit(repo, {
      tree: [{ dir: src }],
      branch: "b",
      bootable: true,
      timestamp: TS,
      bindRefs: ["zz"],
      metadata: [
        ["version", variant("s", "1")],
        ["aaa", variant("s", "2")],
      ],
    });
    expect(r.commit).toBe(expected);
    expect((await repo.readCommit(r.commit)).metadata.map(([k]) => k)).toEqual(
      ostree(["show", `--repo=${theirs}`, "--raw", expected]).match(/'([\w.-]+)': </g)!.map((m) => m.slice(1, -4)),
    );

    const noUsr = tree(join(tmp.path, "boot-none"), { "etc/x": "x\n", "usr/share/y": "y\n" });
    expect(runOstree(["commit", `--repo=${theirs}`, "-b", "n", "--bootable", noUsr]).stderr).toContain("No such file or directory: /usr/lib");
    await expect(commit(repo, { tree: [{ dir: noUsr }], branch: "n", bootable: true })).rejects.toThrow("No such file or directory: /usr/lib");
    const two = tree(join(tmp.path, "boot-two"), { "usr/lib/modules/a/vmlinuz": "", "usr/lib/modules/b/vmlinuz": "" });
    await expect(commit(repo, { tree: [{ dir: two }], branch: "n", bootable: true })).rejects.toThrow("Multiple kernels found in /usr/lib/modules");
    const none = tree(join(tmp.path, "boot-zero"), { "usr/lib/modules/a/config": "" });
    await expect(commit(repo, { tree: [{ dir: none }], branch: "n", bootable: true })).rejects.toThrow("No kernel found in /usr/lib/modules");
    expect(await resolveRev(repo, "n", true)).toBeNull();
  });

  it("--base loads the commit unmodified under sources that the modifier changes", async () => {
    const { theirs, ours, repo } = await pair(tmp.path, "base", "archive");
    const first = tree(join(tmp.path, "base-1"), { "a/one": "1\n", "b/two": "2\n" });
    const overlay = tree(join(tmp.path, "base-2"), { "a/three": "3\n" });
    ostree(["commit", `--repo=${theirs}`, "-b", "first", `--timestamp=${TS}`, first]);
    await commit(repo, { tree: [{ dir: first }], branch: "first", timestamp: TS });
    const expected = ostree(["commit", `--repo=${theirs}`, "-b", "based", "--base", "first", "--owner-uid=42", "--owner-gid=42", `--timestamp=${TS}`, overlay]).trim();
    const r = await commit(repo, { base: "first", tree: [{ dir: overlay }], branch: "based", ownerUid: 42, ownerGid: 42, timestamp: TS });
    expect(r.commit).toBe(expected);
    expect(ostree(["ls", `--repo=${ours}`, "-R", r.commit])).toBe(ostree(["ls", `--repo=${theirs}`, "-R", expected]));
  });

  it("--consume in bare-user-only renames the file into the repo (hardlinks keep pointing at the object)", async () => {
    const { theirs, ours, repo } = await pair(tmp.path, "consume", "bare-user-only");
    const files = { "eatme.txt": "eat me\n", "sub/other": "other\n", "sub/deeper/x": "x\n" };
    const reference = tree(join(tmp.path, "consume-ref"), files);
    const expected = ostree(["commit", `--repo=${theirs}`, "-b", "c", `--timestamp=${TS}`, reference]).trim();
    const src = tree(join(tmp.path, "consume-src"), files);
    linkSync(join(src, "eatme.txt"), join(tmp.path, "eatme-savedlink.txt"));
    const r = await commit(repo, { tree: [{ dir: src }], branch: "c", consume: true, timestamp: TS });
    expect(r.commit).toBe(expected);
    expect(existsSync(src)).toBe(false);
    const checksum = (await repo.readDirTree((await repo.readCommit(r.commit)).rootTree)).files.find((f) => f.name === "eatme.txt")!.checksum;
    expect(statSync(join(tmp.path, "eatme-savedlink.txt")).ino).toBe(statSync(repo.objectPath(checksum, ObjectType.File)).ino);
    const fsck = runOstree(["fsck", `--repo=${ours}`]);
    expect(fsck.status, fsck.stderr).toBe(0);
  });

  it("--link-checkout-speedup reuses hardlinked objects unless the modifier changes them; -I takes them as is", async () => {
    const { theirs, ours, repo } = await pair(tmp.path, "devino", "bare-user");
    const src = tree(join(tmp.path, "devino-src"), { "baz/cow": "moo\n", "baz/saucer": "s\n", top: "t\n" });
    const base = ostree(["commit", `--repo=${theirs}`, "-b", "t", `--timestamp=${TS}`, src]).trim();
    expect((await commit(repo, { tree: [{ dir: src }], branch: "t", timestamp: TS })).commit).toBe(base);
    // Check out each repo's commit with hardlinks into its own objects.
    for (const [r, co] of [[theirs, "co-theirs"], [ours, "co-ours"]] as const) ostree(["checkout", `--repo=${r}`, "-U", "-H", base, join(tmp.path, co)]);
    expect((await scanHardlinks(repo)).size).toBe(3);

    const uid = String(process.getuid!() + 1);
    const expected = ostree(["commit", `--repo=${theirs}`, "-b", "o", "--link-checkout-speedup", `--owner-uid=${uid}`, `--timestamp=${TS}`, join(tmp.path, "co-theirs")]).trim();
    const owned = await commit(repo, { tree: [{ dir: join(tmp.path, "co-ours") }], branch: "o", linkCheckoutSpeedup: true, ownerUid: Number(uid), timestamp: TS });
    expect(owned.commit).toBe(expected);
    expect(owned.stats.devinoHits).toBe(0);

    const expectedPlain = ostree(["commit", `--repo=${theirs}`, "-b", "p", "--link-checkout-speedup", `--timestamp=${TS}`, join(tmp.path, "co-theirs")]).trim();
    const plain = await commit(repo, { tree: [{ dir: join(tmp.path, "co-ours") }], branch: "p", linkCheckoutSpeedup: true, timestamp: TS });
    expect(plain.commit).toBe(expectedPlain);
    // The files are the original objects (the checkout user's ids on disk are not what is committed).
    expect((await repo.readDirTree((await repo.readCommit(plain.commit)).rootTree)).files).toEqual((await repo.readDirTree((await repo.readCommit(base)).rootTree)).files);
    expect(plain.stats.devinoHits).toBe(3);

    const expectedI = ostree(["commit", `--repo=${theirs}`, "-b", "i", "-I", `--owner-uid=${uid}`, `--timestamp=${TS}`, join(tmp.path, "co-theirs")]).trim();
    const canon = await commit(repo, { tree: [{ dir: join(tmp.path, "co-ours") }], branch: "i", devinoCanonical: true, ownerUid: Number(uid), timestamp: TS });
    expect(canon.commit).toBe(expectedI);
    expect(canon.stats.devinoHits).toBe(3);
  });

  it("branches may be remote:ref (refs/remotes) and bind refs are stored unvalidated", async () => {
    const { theirs, ours, repo } = await pair(tmp.path, "refs", "archive");
    const src = tree(join(tmp.path, "refs-src"), { f: "f\n" });
    const expected = ostree(["commit", `--repo=${theirs}`, "-b", "origin:remote1", "--bind-ref=not a ref!", `--timestamp=${TS}`, src]).trim();
    const r = await commit(repo, { tree: [{ dir: src }], branch: "origin:remote1", bindRefs: ["not a ref!"], timestamp: TS });
    expect(r.commit).toBe(expected);
    expect(ostree(["rev-parse", `--repo=${ours}`, "origin:remote1"]).trim()).toBe(expected);
    expect(existsSync(join(ours, "refs/remotes/origin/remote1"))).toBe(true);
    await expect(commit(repo, { tree: [{ dir: src }], branch: "bad ref" })).rejects.toThrow(/Invalid ref/);
  });

  it("SOURCE_DATE_EPOCH: ostree's messages for junk and for values outside int64", async () => {
    const { repo } = await pair(tmp.path, "sde", "archive");
    const src = tree(join(tmp.path, "sde-src"), { f: "f\n" });
    const saved = process.env.SOURCE_DATE_EPOCH;
    try {
      process.env.SOURCE_DATE_EPOCH = "12345678901234567890";
      await expect(commit(repo, { tree: [{ dir: src }], branch: "x" })).rejects.toThrow("Parsing SOURCE_DATE_EPOCH: Numerical result out of range");
      process.env.SOURCE_DATE_EPOCH = "invalid";
      await expect(commit(repo, { tree: [{ dir: src }], branch: "x" })).rejects.toThrow("Failed to convert SOURCE_DATE_EPOCH");
      process.env.SOURCE_DATE_EPOCH = " 1234567890";
      const r = await commit(repo, { tree: [{ dir: src }], branch: "x" });
      expect((await repo.readCommit(r.commit)).timestamp).toBe(1234567890);
    } finally {
      if (saved === undefined) delete process.env.SOURCE_DATE_EPOCH;
      else process.env.SOURCE_DATE_EPOCH = saved;
    }
    await expect(commit(repo, { tree: [{ dir: join(tmp.path, "missing") }], branch: "x" })).rejects.toThrow(
      `opendir(${join(tmp.path, "missing")}): No such file or directory`,
    );
  });

  it("a tree containing the repo commits: the repo's own temp files are not part of it", async () => {
    const root = tree(join(tmp.path, "self"), Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`files/f${i}`, `content ${i}\n`])));
    const repo = await Repo.init(join(root, "repo"), { mode: "archive" });
    const r = await commit(repo, { tree: [{ dir: root }], branch: "self", timestamp: TS, fsync: false });
    const rootTree = await repo.readDirTree((await repo.readCommit(r.commit)).rootTree);
    const repoDir = await repo.readDirTree(rootTree.dirs.find((d) => d.name === "repo")!.tree);
    const tmpDir = await repo.readDirTree(repoDir.dirs.find((d) => d.name === "tmp")!.tree);
    expect(tmpDir.files.filter((f) => /^(tmpobject|tmpfile|spool)-/.test(f.name))).toEqual([]);
    expect(readdirSync(join(root, "repo", "tmp")).filter((n) => n.startsWith("tmpobject-"))).toEqual([]);
  });

  it("reads fall back to core.parent (objects, content, refs); writes and listings stay local", async () => {
    const parent = await Repo.init(join(tmp.path, "parent"), { mode: "archive" });
    const src = tree(join(tmp.path, "parent-src"), { a: "a\n" });
    const r = await commit(parent, { tree: [{ dir: src }], branch: "p", timestamp: TS, fsync: false });
    ostree(["init", `--repo=${join(tmp.path, "child")}`, "--mode=archive"]);
    ostree(["config", `--repo=${join(tmp.path, "child")}`, "set", "core.parent", join(tmp.path, "parent")]);
    const child = await Repo.open(join(tmp.path, "child"));
    expect(await resolveRev(child, "p")).toBe(r.commit);
    const c = await child.readCommit(r.commit);
    const file = (await child.readDirTree(c.rootTree)).files[0]!.checksum;
    expect(await child.hasObject(file, ObjectType.File)).toBe(true);
    expect(await child.hasLooseObject(file, ObjectType.File)).toBe(false);
    expect(new TextDecoder().decode((await child.readContentBytes(file)).data)).toBe("a\n");
    const listed: string[] = [];
    for await (const o of child.listObjects()) listed.push(o.checksum);
    expect(listed).toEqual([]);
  });
});
