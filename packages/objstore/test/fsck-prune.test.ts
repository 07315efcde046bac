import { execFileSync, spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeInterop, ostree, runOstree, sh, SPEC_DIR, tempDir } from "@ostree-ts/interop";
import {
  encodeDirTree,
  formatPruneResult,
  formatSize,
  fsck,
  FsckError,
  heldLock,
  lockPop,
  lockPush,
  ObjectType,
  prune,
  reachableFromCommit,
  Repo,
  sha256Hex,
  withRepoLock,
  type FsckOptions,
  type RepoMode,
} from "../src/index.js";

/** Every file under objects/ and state/ (relative), sorted: the state a prune or fsck leaves. */
function snapshot(repo: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(`${relative(repo, p)}${e.name.endsWith(".commitpartial") ? `=${readFileSync(p, "utf8")}` : ""}`);
    }
  };
  for (const sub of ["objects", "state", "deltas"]) if (existsSync(join(repo, sub))) walk(join(repo, sub));
  return out.sort();
}

async function ours(path: string, options: FsckOptions = {}): Promise<{ ok: boolean; out: string[]; err: string[]; error?: string }> {
  const out: string[] = [];
  const err: string[] = [];
  try {
    await fsck(await Repo.open(path), { ...options, progress: false, out: (l) => out.push(l), err: (l) => err.push(l) });
    return { ok: true, out, err };
  } catch (e) {
    if (!(e instanceof FsckError)) throw e;
    return { ok: false, out, err, error: e.message };
  }
}

function theirs(path: string, flags: string[] = []): { ok: boolean; out: string[]; err: string[]; error?: string } {
  const r = runOstree(["fsck", `--repo=${path}`, ...flags]);
  const out = r.stdout.split("\n").filter((l) => l && !l.startsWith("fsck objects"));
  const errLines = r.stderr.split("\n").filter(Boolean);
  const error = errLines.find((l) => l.startsWith("error: "))?.slice(7);
  return { ok: r.status === 0, out, err: errLines.filter((l) => !l.startsWith("error: ")), error };
}

/** ostree lists "In commits A, B" in hash-table order: sort the list to compare. */
function normCommits(line: string): string {
  return line.replace(/^In commits ([^:]+):/, (_, list: string) => `In commits ${list.split(", ").sort().join(", ")}:`);
}

function objectFile(repo: string, ext: string, nth = 0): string {
  const all: string[] = [];
  for (const p of readdirSync(join(repo, "objects")).sort()) {
    for (const n of readdirSync(join(repo, "objects", p)).sort()) if (n.endsWith(`.${ext}`)) all.push(join(repo, "objects", p, n));
  }
  return all[nth]!;
}

function flipByte(file: string, at: (size: number) => number): void {
  const b = readFileSync(file);
  const i = at(b.length);
  b[i] = b[i]! ^ 0xff;
  writeFileSync(file, b);
}

describe("formatSize (g_format_size)", () => {
  it("matches GLib's SI formatting", () => {
    expect(formatSize(0)).toBe("0 bytes");
    expect(formatSize(1)).toBe("1 byte");
    expect(formatSize(999)).toBe("999 bytes");
    expect(formatSize(1000)).toBe("1.0\u00a0kB");
    expect(formatSize(12345)).toBe("12.3\u00a0kB");
    expect(formatSize(1250)).toBe("1.2\u00a0kB");
    expect(formatSize(5_500_000)).toBe("5.5\u00a0MB");
  });
});

describeInterop("fsck and prune against real ostree", () => {
  const tmp = tempDir();
  const tree = () => join(tmp.path, "tree");
  beforeAll(() => sh(join(SPEC_DIR, "vectors/mktree.sh"), ["tree"], tmp.path));
  afterAll(() => tmp.cleanup());

  /**
   * A repo with history: branch alpha (3 commits), branch beta (2), a remote ref, and an orphan commit.
   * Ref names are not hex: ostree resolves a hex rev (also `commit -b`'s parent) as a partial commit checksum first.
   */
  function historyRepo(name: string, mode: RepoMode): string {
    const path = join(tmp.path, name);
    ostree(["init", `--repo=${path}`, `--mode=${mode}`]);
    const work = join(tmp.path, `${name}-work`);
    cpSync(tree(), work, { recursive: true, verbatimSymlinks: true });
    const commit = (branch: string, ts: string, extra: string[] = []) =>
      ostree(["commit", `--repo=${path}`, "-b", branch, `--timestamp=${ts}`, "-s", `${branch} ${ts}`, "--no-xattrs", ...extra, work]).trim();
    commit("alpha", "2020-01-01T00:00:00Z");
    writeFileSync(join(work, "v2.txt"), "second version\n");
    commit("alpha", "2021-01-01T00:00:00Z");
    writeFileSync(join(work, "sub", "v3.txt"), "third version\n");
    commit("alpha", "2022-01-01T00:00:00Z");
    writeFileSync(join(work, "b-only"), "branch b\n".repeat(500));
    commit("beta", "2021-06-01T00:00:00Z");
    writeFileSync(join(work, "b-only"), "branch b v2\n".repeat(700));
    commit("beta", "2022-06-01T00:00:00Z");
    writeFileSync(join(work, "orphan"), "orphan\n");
    const orphan = ostree(["commit", `--repo=${path}`, "--orphan", "--timestamp=2023-01-01T00:00:00Z", "-s", "orphan", "--no-xattrs", work]).trim();
    mkdirSync(join(path, "refs", "remotes", "origin"), { recursive: true });
    writeFileSync(join(path, "refs", "remotes", "origin", "r"), `${orphan}\n`);
    writeFileSync(join(work, "unref"), "unreferenced\n");
    ostree(["commit", `--repo=${path}`, "--orphan", "--timestamp=2023-02-01T00:00:00Z", "-s", "unref", "--no-xattrs", work]);
    return path;
  }

  for (const mode of ["archive", "bare-user", "bare-user-only", "bare"] as RepoMode[]) {
    it(`fsck passes on an ostree-written ${mode} repo, with the same output`, async () => {
      const path = historyRepo(`clean-${mode}`, mode);
      for (const flags of [[], ["-q"], ["--all"], ["--verify-bindings"]]) {
        const t = theirs(path, flags);
        const o = await ours(path, { quiet: flags.includes("-q"), all: flags.includes("--all"), verifyBindings: flags.includes("--verify-bindings") });
        // --verify-bindings fails on both: the orphan commits carry an empty ref-binding list.
        expect(t.ok).toBe(!flags.includes("--verify-bindings"));
        expect(o).toEqual(t);
      }
    });
  }

  it("reachability matches what ostree prune keeps for each depth", async () => {
    const path = historyRepo("reach", "archive");
    const repo = await Repo.open(path);
    const head = readFileSync(join(path, "refs/heads/alpha"), "utf8").trim();
    const all = await reachableFromCommit(repo, head);
    const d0 = await reachableFromCommit(repo, head, { maxDepth: 0 });
    expect([...all].filter((k) => k.endsWith(".commit"))).toHaveLength(3);
    expect([...d0].filter((k) => k.endsWith(".commit"))).toEqual([`${head}.commit`]);
    expect(d0.size).toBeLessThan(all.size);
  });

  const corruptions: Array<[string, (repo: string) => void]> = [
    ["a flipped byte in a .filez payload", (r) => flipByte(objectFile(r, "filez", 3), (n) => n - 3)],
    ["a truncated .filez", (r) => truncateSync(objectFile(r, "filez", 2), 20)],
    ["a flipped byte in a dirtree", (r) => flipByte(objectFile(r, "dirtree", 1), (n) => n - 1)],
    ["a flipped byte in a dirmeta", (r) => flipByte(objectFile(r, "dirmeta", 0), () => 2)],
    ["a flipped byte in a commit", (r) => flipByte(objectFile(r, "commit", 0), (n) => Math.floor(n / 2))],
    ["a missing dirtree", (r) => execFileSync("rm", [objectFile(r, "dirtree", 0)])],
  ];
  for (const [what, damage] of corruptions) {
    it(`fsck reports ${what} like ostree, without writing`, async () => {
      const a = historyRepo(`c-${what.replace(/\W+/g, "-")}`, "archive");
      damage(a);
      const before = snapshot(a);
      const t = theirs(a);
      const o = await ours(a);
      expect(o.ok).toBe(false);
      expect(t.ok).toBe(false);
      expect(normCommits(o.error!)).toBe(normCommits(t.error!));
      expect(snapshot(a)).toEqual(before);
    });
  }

  it("fsck --delete deletes the same objects and marks the same commits partial as ostree", async () => {
    const a = historyRepo("del-a", "archive");
    flipByte(objectFile(a, "filez", 3), (n) => n - 3);
    flipByte(objectFile(a, "dirtree", 2), (n) => n - 1);
    const b = join(tmp.path, "del-b");
    cpSync(a, b, { recursive: true, verbatimSymlinks: true });
    const t = theirs(a, ["--delete"]);
    const o = await ours(b, { delete: true });
    expect(o.ok).toBe(t.ok);
    expect(o.error).toBe(t.error);
    // Parent commits are listed in hash-table order by ostree: compare them as sets.
    const norm = (lines: string[]) => lines.map(normCommits).sort();
    expect(norm(o.err)).toEqual(norm(t.err));
    expect(snapshot(b)).toEqual(snapshot(a));
    // Second run: the damaged commits are now fsck-partial and skipped, with the same verdict.
    const t2 = theirs(a);
    const o2 = await ours(b);
    expect(o2.error).toBe(t2.error);
    expect(o2.out).toEqual(t2.out);
  });

  it("rejects a hand-crafted dirtree entry named '..' or containing '/'", async () => {
    for (const bad of ["..", "a/b"]) {
      const a = historyRepo(`evil-${bad === ".." ? "dots" : "slash"}`, "archive");
      const repo = await Repo.open(a);
      const head = readFileSync(join(a, "refs/heads/alpha"), "utf8").trim();
      const commit = await repo.readCommit(head);
      const root = await repo.readDirTree(commit.rootTree);
      // Build the object by hand (our encoder refuses nothing; ostree would refuse to write it).
      const evil = encodeDirTree({ files: [{ name: bad, checksum: root.files[0]!.checksum }, ...root.files.slice(1)], dirs: root.dirs });
      const csum = sha256Hex(evil);
      mkdirSync(join(a, "objects", csum.slice(0, 2)), { recursive: true });
      writeFileSync(join(a, "objects", csum.slice(0, 2), `${csum.slice(2)}.dirtree`), evil);
      const c2 = ostree(["commit", `--repo=${a}`, "-b", "evil", `--tree=ref=alpha`, "--no-xattrs", "-s", "evil"]).trim();
      // Point the new commit at the evil tree by rewriting it the same way.
      const cobj = await repo.readCommit(c2);
      const { encodeCommit } = await import("../src/index.js");
      const bytes = encodeCommit({ ...cobj, rootTree: csum });
      const ccsum = sha256Hex(bytes);
      mkdirSync(join(a, "objects", ccsum.slice(0, 2)), { recursive: true });
      writeFileSync(join(a, "objects", ccsum.slice(0, 2), `${ccsum.slice(2)}.commit`), bytes);
      writeFileSync(join(a, "refs/heads/evil"), `${ccsum}\n`);
      const o = await ours(a);
      expect(o.ok).toBe(false);
      expect(o.error).toContain(csum);
      const theirs = runOstree(["fsck", `--repo=${a}`]);
      expect(theirs.status).not.toBe(0);
      // Same ot_util_filename_validate text as ostree (`Invalid path uplink filename '..'`, `Invalid / in filename a/b`).
      const why = theirs.stderr.trim().split(": ").at(-1)!;
      expect(why).toContain(bad);
      expect(o.error?.endsWith(why)).toBe(true);
    }
  });

  it("a junk ref file gives a clear error naming the ref", async () => {
    const a = historyRepo("junkref", "archive");
    writeFileSync(join(a, "refs/heads/junk"), "not a checksum\n");
    const o = await ours(a);
    expect(o.ok).toBe(false);
    expect(o.error).toMatch(/junk/);
    expect(runOstree(["fsck", `--repo=${a}`]).status).not.toBe(0);
  });

  const pruneCases: Array<[string, string[], Parameters<typeof prune>[1]]> = [
    ["default", [], {}],
    ["--refs-only", ["--refs-only"], { refsOnly: true }],
    ["--refs-only --depth=0", ["--refs-only", "--depth=0"], { refsOnly: true, depth: 0 }],
    ["--refs-only --depth=1", ["--refs-only", "--depth=1"], { refsOnly: true, depth: 1 }],
    ["--no-prune --refs-only --depth=0", ["--no-prune", "--refs-only", "--depth=0"], { noPrune: true, refsOnly: true, depth: 0 }],
    ["--keep-younger-than", ["--keep-younger-than=2021-03-01"], { keepYoungerThan: "2021-03-01" }],
    ["--only-branch=alpha --depth=0", ["--only-branch=alpha", "--depth=0"], { onlyBranches: ["alpha"], depth: 0 }],
    ["--retain-branch-depth=alpha=1 --depth=0", ["--retain-branch-depth=alpha=1", "--depth=0", "--refs-only"], { retainBranchDepth: ["alpha=1"], depth: 0, refsOnly: true }],
    ["--retain-branch-depth=beta=0 --depth=0", ["--retain-branch-depth=beta=0", "--depth=0"], { retainBranchDepth: ["beta=0"], depth: 0 }],
    ["--commit-only --refs-only --depth=0", ["--commit-only", "--refs-only", "--depth=0"], { commitOnly: true, refsOnly: true, depth: 0 }],
  ];
  for (const [name, flags, options] of pruneCases) {
    it(`prune ${name} deletes exactly what ostree prune deletes`, async () => {
      const a = historyRepo(`p-${name.replace(/\W+/g, "-")}`, "archive");
      const b = join(tmp.path, `p-${name.replace(/\W+/g, "-")}-ours`);
      cpSync(a, b, { recursive: true, verbatimSymlinks: true });
      const t = ostree(["prune", `--repo=${a}`, ...flags]).split("\n").filter(Boolean);
      const result = await prune(await Repo.open(b), options);
      expect(formatPruneResult(result, options)).toEqual(t);
      expect(snapshot(b)).toEqual(snapshot(a));
    });
  }

  it("prune --delete-commit enables tombstones and writes one, like ostree", async () => {
    const a = historyRepo("delcommit", "archive");
    const b = join(tmp.path, "delcommit-ours");
    cpSync(a, b, { recursive: true, verbatimSymlinks: true });
    const head = readFileSync(join(a, "refs/heads/alpha"), "utf8").trim();
    const parent = (await (await Repo.open(a)).readCommit(head)).parent!;
    const refused = runOstree(["prune", `--repo=${a}`, `--delete-commit=${head}`]);
    await expect(prune(await Repo.open(b), { deleteCommit: head })).rejects.toThrow(refused.stderr.trim().replace(/^error: /, ""));
    const t = ostree(["prune", `--repo=${a}`, `--delete-commit=${parent}`, "--refs-only"]).split("\n").filter(Boolean);
    const repoB = await Repo.open(b);
    const r = await prune(repoB, { deleteCommit: parent, refsOnly: true });
    expect(formatPruneResult(r, {})).toEqual(t);
    expect(snapshot(b)).toEqual(snapshot(a));
    expect(readFileSync(join(b, "config"), "utf8")).toEqual(readFileSync(join(a, "config"), "utf8"));
    // ostree reads our tombstone and both fsck the result the same way.
    expect(runOstree(["fsck", `--repo=${b}`]).status).toBe(0);
  });

  it("fsck --add-tombstones matches ostree", async () => {
    const a = historyRepo("tomb", "archive");
    const repoA = await Repo.open(a);
    const head = readFileSync(join(a, "refs/heads/alpha"), "utf8").trim();
    const parent = (await repoA.readCommit(head)).parent!;
    execFileSync("rm", [repoA.objectPath(parent, ObjectType.Commit)]);
    const b = join(tmp.path, "tomb-ours");
    cpSync(a, b, { recursive: true, verbatimSymlinks: true });
    const t = theirs(a, ["--add-tombstones"]);
    const o = await ours(b, { addTombstones: true });
    expect(o.ok).toBe(t.ok);
    expect(o.out).toEqual(t.out);
    expect(snapshot(b)).toEqual(snapshot(a));
  });

  it("our exclusive lock makes real ostree prune wait, and its lock makes us wait", async () => {
    const a = historyRepo("lock", "archive");
    ostree(["config", `--repo=${a}`, "set", "core.lock-timeout-secs", "1"]);
    const repo = await Repo.open(a);
    await lockPush(repo, "exclusive");
    expect(heldLock(repo)).toBe("exclusive");
    const blocked = runOstree(["prune", `--repo=${a}`, "--refs-only"]);
    expect(blocked.status).not.toBe(0);
    expect(blocked.stderr).toMatch(/Locking repo exclusive failed/);
    // A shared ostree operation (summary -u) is excluded too.
    expect(runOstree(["summary", "-u", `--repo=${a}`]).status).not.toBe(0);
    await lockPop(repo, "exclusive");
    expect(heldLock(repo)).toBe(null);
    expect(runOstree(["prune", `--repo=${a}`, "--refs-only"]).status).toBe(0);

    // The other direction: another process holds a write lock, as a running ostree prune would. It holds it
    // until killed (30 s at most): a short hold could end before our 1 s lock wait has run on a loaded machine.
    const holder = spawn(process.execPath, [
      "-e",
      `const f=require(${JSON.stringify(createRequire(import.meta.url).resolve("fs-ext"))});const fs=require("fs");` +
        `const fd=fs.openSync(${JSON.stringify(join(a, ".lock"))},"a+");f.fcntl(fd,"setlk",1,(e)=>{if(e)throw e;process.stdout.write("locked\\n")});setTimeout(()=>{},30000);`,
    ]);
    await new Promise<void>((res) => holder.stdout.once("data", () => res()));
    const t0 = Date.now();
    const fresh = await Repo.open(a);
    await expect(withRepoLock(fresh, "shared", async () => "never")).rejects.toThrow(/Locking repo shared failed/);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    holder.kill();
    await new Promise((r) => holder.once("exit", r));
    expect(await withRepoLock(fresh, "shared", async () => "got it")).toBe("got it");
  });
});

describe("repo lock without ostree", () => {
  it("is recursive and downgrades exclusive to shared", async () => {
    const tmp = tempDir();
    try {
      const repo = await Repo.init(join(tmp.path, "r"), { mode: "archive" });
      await lockPush(repo, "shared");
      await lockPush(repo, "exclusive");
      expect(heldLock(repo)).toBe("exclusive");
      await lockPop(repo, "exclusive");
      expect(heldLock(repo)).toBe("shared");
      await lockPop(repo, "shared");
      expect(heldLock(repo)).toBe(null);
      expect(statSync(join(tmp.path, "r", ".lock")).isFile()).toBe(true);
    } finally {
      tmp.cleanup();
    }
  });
});
