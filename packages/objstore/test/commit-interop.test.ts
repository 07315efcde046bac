import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { setAttributeSync } from "@napi-rs/xattr";
import { parseText, variant } from "@ostree-ts/gvariant";
import { describeInterop, ostree, runOstree, tempDir } from "@ostree-ts/interop";
import { makeFixtureTree, pseudoRandomBytes } from "@ostree-ts/test-images";
import {
  commit,
  diffCommits,
  formatDiff,
  loadSkipListFile,
  loadStatOverrideFile,
  ObjectType,
  Repo,
  listRefs,
  resolveRev,
  SourceReadError,
  UnsupportedFileTypeError,
  type CommitOptions,
  type RepoMode,
} from "../src/index.js";

const MODES: RepoMode[] = ["archive", "bare", "bare-user", "bare-user-only"];
const TS = "2021-06-01T12:00:00Z";

/** Every object file of a repo, relative to objects/, sorted. */
function objectFiles(repo: string): string[] {
  const root = join(repo, "objects");
  const out: string[] = [];
  for (const d of readdirSync(root)) for (const f of readdirSync(join(root, d))) out.push(`${d}/${f}`);
  return out.sort();
}

describeInterop("commit(): same checksums as ostree commit", () => {
  const tmp = tempDir();
  const tree = join(tmp.path, "tree");
  const tarFile = join(tmp.path, "tree.tar");
  const skipList = join(tmp.path, "skip-list");
  const statOverride = join(tmp.path, "statoverride");

  beforeAll(() => {
    makeFixtureTree(tree, { files: 500, seed: 42 });
    // Hostile names on top of the fixture's UTF-8 ones.
    mkdirSync(join(tree, "odd"));
    writeFileSync(join(tree, "odd", "new\nline"), "nl\n");
    writeFileSync(join(tree, "odd", "x".repeat(255)), "long\n");
    writeFileSync(join(tree, "odd", "tab\tand space"), "t\n");
    // Nested well beyond what a recursive walk with small frames would like.
    let deep = join(tree, "deeper");
    for (let i = 0; i < 200; i++) deep = join(deep, "d");
    mkdirSync(deep, { recursive: true });
    writeFileSync(join(deep, "bottom"), "bottom\n");
    setAttributeSync(join(tree, "special/exec.sh"), "user.role", Buffer.from("exec"));
    setAttributeSync(join(tree, "utf8"), "user.dir", Buffer.from([0, 1, 2, 0x41]));
    writeFileSync(skipList, "/special/link-abs\n/odd/tab\tand space\n");
    // Decimal modes, as ostree reads them: 2048 = 04000, =420 = 0644.
    writeFileSync(statOverride, "2048 /special/exec.sh\n=420 /special/readonly\n=448 /hardlinks/sub\n");
    execFileSync("tar", ["--xattrs", "-C", tree, "-cf", tarFile, "."]);
  });
  afterAll(() => tmp.cleanup());

  const variants: Array<{ name: string; args: string[]; opts: () => Promise<Partial<CommitOptions>> }> = [
    {
      name: "metadata, bindings, owner, skip-list, statoverride, sizes",
      args: [
        "-s", "Subject", "-m", "Body\nline 2",
        "--add-metadata-string=version=42.1", "--add-metadata=count=uint32 5", "--add-metadata=list=['a', 'b']",
        "--bind-ref=zzz/other", "--bind-ref=aaa/first", "--owner-gid=100",
        `--skip-list=${skipList}`, `--statoverride=${statOverride}`, "--generate-sizes",
      ],
      opts: async () => ({
        subject: "Subject",
        body: "Body\nline 2",
        metadata: [
          ["version", variant("s", "42.1")],
          ["count", parseText("uint32 5")],
          ["list", parseText("['a', 'b']")],
        ],
        bindRefs: ["zzz/other", "aaa/first"],
        ownerGid: 100,
        skipList: await loadSkipListFile(skipList),
        statOverride: await loadStatOverrideFile(statOverride),
        generateSizes: true,
      }),
    },
    {
      name: "canonical permissions, no xattrs, no bindings",
      args: ["--canonical-permissions", "--no-xattrs", "--no-bindings", "-s", "canon"],
      opts: async () => ({ canonicalPermissions: true, noXattrs: true, noBindings: true, subject: "canon" }),
    },
  ];

  for (const mode of MODES) {
    it(`${mode}: dir and tar trees, every flag set, give ostree's commits; ostree reads and fscks ours`, async () => {
      const theirs = join(tmp.path, `theirs-${mode}`);
      const ours = join(tmp.path, `ours-${mode}`);
      ostree(["init", `--repo=${theirs}`, `--mode=${mode}`]);
      const repo = await Repo.init(ours, { mode });
      // Checksums do not depend on syncfs, which costs seconds on a busy disk (covered once below, on the 64 MiB file).
      ostree(["config", `--repo=${theirs}`, "set", "core.fsync", "false"]);
      repo.config.setString("core", "fsync", "false");
      await repo.saveConfig();
      const mine: string[] = [];
      const expected: string[] = [];
      for (const [i, v] of variants.entries()) {
        const branch = `test/v${i}`;
        expected.push(ostree(["commit", `--repo=${theirs}`, "-b", branch, `--timestamp=${TS}`, ...v.args, tree]).trim());
        const r = await commit(repo, { tree: [{ dir: tree }], branch, timestamp: TS, ...(await v.opts()) });
        mine.push(r.commit);
      }
      // Tar import, with a directory overlay on top (later trees win).
      expected.push(
        ostree(["commit", `--repo=${theirs}`, "-b", "test/tar", `--timestamp=${TS}`, `--tree=tar=${tarFile}`, `--tree=dir=${join(tree, "special")}`]).trim(),
      );
      mine.push((await commit(repo, { tree: [{ tar: tarFile }, { dir: join(tree, "special") }], branch: "test/tar", timestamp: TS })).commit);
      expect(mine).toEqual(expected);
      if (mode === "archive") {
        const sizes = ostree(["show", `--repo=${ours}`, "--print-sizes", mine[0]!]);
        expect(sizes).toMatch(/Number of objects/);
      }

      // Parent chain and skip-if-unchanged: the second commit on a branch points at the first.
      const again = await commit(repo, { tree: [{ dir: tree }], branch: "test/v1", timestamp: TS, ...(await variants[1]!.opts()), subject: "second" });
      const againTheirs = ostree(["commit", `--repo=${theirs}`, "-b", "test/v1", `--timestamp=${TS}`, ...variants[1]!.args, "-s", "second", tree]).trim();
      expect(again.commit).toBe(againTheirs);
      expect((await repo.readCommit(again.commit)).parent).toBe(mine[1]);
      const skipped = await commit(repo, { tree: [{ dir: tree }], branch: "test/v1", skipIfUnchanged: true, ...(await variants[1]!.opts()) });
      expect(skipped).toMatchObject({ skipped: true, commit: again.commit });
      expect(ostree(["commit", `--repo=${theirs}`, "-b", "test/v1", "--skip-if-unchanged", ...variants[1]!.args, tree]).trim()).toBe(againTheirs);

      // Same object set, and ostree accepts every object we wrote.
      expect(objectFiles(ours)).toEqual(objectFiles(theirs));
      const fsck = runOstree(["fsck", `--repo=${ours}`]);
      expect(fsck.stderr).toBe("");
      expect(fsck.status).toBe(0);
      expect(ostree(["ls", `--repo=${ours}`, "-R", "-C", "-X", mine[0]!])).toBe(ostree(["ls", `--repo=${theirs}`, "-R", "-C", "-X", mine[0]!]));
      expect(ostree(["cat", `--repo=${ours}`, mine[2]!, "/special/exec.sh"])).toBe(readFileSync(join(tree, "special/exec.sh"), "utf8"));
      for await (const o of repo.listObjects()) {
        if (o.type === ObjectType.File) expect(await repo.computeContentChecksum(o.checksum)).toBe(o.checksum);
      }
    });
  }

  it("diffCommits matches ostree diff", async () => {
    const repoPath = join(tmp.path, "ours-bare");
    const repo = await Repo.open(repoPath);
    const a = (await resolveRev(repo, "test/v1"))!;
    const t2 = join(tmp.path, "tree2");
    execFileSync("cp", ["-a", tree, t2]);
    writeFileSync(join(t2, "special/empty"), "now full\n");
    execFileSync("rm", ["-rf", join(t2, "utf8"), join(t2, "hardlinks/link1")]);
    mkdirSync(join(t2, "brand/new/dir"), { recursive: true });
    writeFileSync(join(t2, "brand/new/dir/f"), "f\n");
    writeFileSync(join(t2, "brand/top"), "t\n");
    chmodSync(join(t2, "special/sticky"), 0o755);
    renameSync(join(t2, "special/exec.sh"), join(t2, "special/exec-renamed.sh"));
    const b = (await commit(repo, { tree: [{ dir: t2 }], orphan: true, noXattrs: true, timestamp: 1 })).commit;
    const d = await diffCommits(repo, a, b);
    expect(formatDiff(d)).toBe(ostree(["diff", `--repo=${repoPath}`, a, b]));
    expect(d.added).toContain("/brand/new/dir/f");
    expect(d.removed).toContain("/utf8");
    expect(existsSync(repoPath)).toBe(true);
  });

  it("a 10,000-level deep directory commits like ostree (no stack or PATH_MAX limit) and diffs", async () => {
    const deepRoot = join(tmp.path, "deep");
    mkdirSync(deepRoot);
    // Relative chdir at each level, so path length never matters.
    execFileSync("python3", ["-c", "import os,sys\nos.chdir(sys.argv[1])\nfor _ in range(10000):\n  os.mkdir('d'); os.chdir('d')\nopen('leaf','w').write('leaf\\n')", deepRoot]);
    try {
      const theirs = join(tmp.path, "deep-theirs");
      ostree(["init", `--repo=${theirs}`, "--mode=bare-user"]);
      // 20,000 metadata objects: syncfs would dominate, and checksums do not depend on it.
      ostree(["config", `--repo=${theirs}`, "set", "core.fsync", "false"]);
      const expected = ostree(["commit", `--repo=${theirs}`, "-b", "deep", `--timestamp=${TS}`, deepRoot]).trim();
      const repo = await Repo.init(join(tmp.path, "deep-ours"), { mode: "bare-user" });
      const r = await commit(repo, { tree: [{ dir: deepRoot }], branch: "deep", timestamp: TS, fsync: false });
      expect(r.commit).toBe(expected);
      const empty = await commit(repo, { tree: [{ dir: join(tree, "special/empty-dir") }], orphan: true, timestamp: TS });
      const d = await diffCommits(repo, empty.commit, r.commit);
      expect(d.added).toHaveLength(10_001);
      expect(d.added.at(-1)).toBe(`${"/d".repeat(10_000)}/leaf`);
    } finally {
      // rm -rf takes O(depth²) here (fts re-walks long paths): climb back up with relative rmdirs instead.
      execFileSync("python3", ["-c", "import os,sys\nos.chdir(sys.argv[1])\nn=0\nwhile os.path.isdir('d'):\n  os.chdir('d'); n+=1\nif os.path.exists('leaf'): os.unlink('leaf')\nfor _ in range(n):\n  os.chdir('..'); os.rmdir('d')", deepRoot]);
    }
  });

  it("a file over 64 MiB streams with flat memory and matches ostree (archive with sizes, bare-user)", async () => {
    const big = join(tmp.path, "big");
    mkdirSync(big);
    const fd = join(big, "large.bin");
    const block = pseudoRandomBytes(7, "big", 4 << 20);
    writeFileSync(fd, Buffer.alloc(0));
    for (let i = 0; i < 16; i++) writeFileSync(fd, block, { flag: "a" });
    writeFileSync(fd, pseudoRandomBytes(7, "tail", 12345), { flag: "a" });
    for (const mode of ["archive", "bare-user"] as RepoMode[]) {
      const theirs = join(tmp.path, `big-theirs-${mode}`);
      ostree(["init", `--repo=${theirs}`, `--mode=${mode}`]);
      const expected = ostree(["commit", `--repo=${theirs}`, "-b", "big", "--generate-sizes", `--timestamp=${TS}`, big]).trim();
      const repo = await Repo.init(join(tmp.path, `big-ours-${mode}`), { mode });
      const before = process.memoryUsage().rss;
      let peak = before;
      const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
      try {
        const r = await commit(repo, { tree: [{ dir: big }], branch: "big", generateSizes: true, timestamp: TS });
        expect(r.commit).toBe(expected);
      } finally {
        clearInterval(timer);
      }
      expect(peak - before).toBeLessThan(48 * 1024 * 1024);
      expect(objectFiles(join(tmp.path, `big-ours-${mode}`))).toEqual(objectFiles(theirs));
    }
  });
});

describeInterop("commit(): bad input", () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());

  it("a fifo fails with a typed error naming it, like ostree, and moves no ref", async () => {
    const src = join(tmp.path, "fifo-tree");
    mkdirSync(join(src, "sub"), { recursive: true });
    writeFileSync(join(src, "ok"), "ok\n");
    execFileSync("mkfifo", [join(src, "sub", "pipe")]);
    const theirs = join(tmp.path, "fifo-theirs");
    ostree(["init", `--repo=${theirs}`, "--mode=archive"]);
    const r = runOstree(["commit", `--repo=${theirs}`, "-b", "x", src]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain("Not a regular file or symlink: pipe");
    const repo = await Repo.init(join(tmp.path, "fifo-ours"), { mode: "archive" });
    const err = await commit(repo, { tree: [{ dir: src }], branch: "x" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsupportedFileTypeError);
    expect((err as Error).message).toBe("Not a regular file or symlink: /sub/pipe (fifo)");
    expect(await listRefs(repo)).toEqual([]);
  });

  it("an unreadable file fails naming the path and moves no ref", async () => {
    const src = join(tmp.path, "unreadable");
    mkdirSync(src);
    writeFileSync(join(src, "secret"), "s\n");
    chmodSync(join(src, "secret"), 0o000);
    writeFileSync(join(src, "public"), "p\n");
    const repoPath = join(tmp.path, "unreadable-repo");
    const repo = await Repo.init(repoPath, { mode: "bare-user" });
    // Root reads anything: drop to an unprivileged effective uid for the commit.
    execFileSync("chown", ["-R", "65534:65534", repoPath, join(src, "public")]);
    execFileSync("chown", ["65534:65534", src, tmp.path]);
    process.seteuid!(65534);
    let err: unknown;
    try {
      err = await commit(repo, { tree: [{ dir: src }], branch: "x", fsync: false }).catch((e: unknown) => e);
    } finally {
      process.seteuid!(0);
    }
    expect(err).toBeInstanceOf(SourceReadError);
    expect((err as SourceReadError).path).toBe("/secret");
    expect((err as Error).message).toMatch(/EACCES/);
    expect(await listRefs(repo)).toEqual([]);
  });

  it("bare-user-only without canonical permissions refuses a setuid file like ostree's check", async () => {
    const src = join(tmp.path, "suid");
    mkdirSync(src);
    writeFileSync(join(src, "s"), "s\n");
    chmodSync(join(src, "s"), 0o4755);
    const repo = await Repo.init(join(tmp.path, "buo"), { mode: "bare-user-only" });
    await expect(commit(repo, { tree: [{ dir: src }], branch: "x", canonicalPermissions: false })).rejects.toThrow(
      "/s: Content object: invalid mode 0104755 with bits 04000",
    );
    expect(await listRefs(repo)).toEqual([]);
    // The default, as in ostree, canonicalizes instead.
    expect((await commit(repo, { tree: [{ dir: src }], branch: "x" })).skipped).toBe(false);
  });
});
