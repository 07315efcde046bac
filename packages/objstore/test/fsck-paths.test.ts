/**
 * fsck reads small content objects in one piece (`.filez` compressed under
 * 1 MiB with a declared payload up to 4 MiB; bare-mode files under 1 MiB) and
 * streams large ones. Both paths must pass what real ostree passes and report
 * damage with ostree's words.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeInterop, ostree, runOstree, tempDir } from "@ostree-ts/interop";
import { fsck, FsckError, Repo } from "../src/index.js";

async function ours(path: string): Promise<{ ok: boolean; out: string[]; error?: string }> {
  const out: string[] = [];
  try {
    await fsck(await Repo.open(path), { progress: false, out: (l) => out.push(l), err: () => {} });
    return { ok: true, out };
  } catch (e) {
    if (!(e instanceof FsckError)) throw e;
    return { ok: false, out, error: e.message };
  }
}

function theirs(path: string): { ok: boolean; out: string[]; error?: string } {
  const r = runOstree(["fsck", `--repo=${path}`]);
  const error = r.stderr.split("\n").find((l) => l.startsWith("error: "))?.slice(7);
  return { ok: r.status === 0, out: r.stdout.split("\n").filter((l) => l && !l.startsWith("fsck objects")), error };
}

/** The content objects of a repo (`.filez`, or `.file` in bare modes), largest first (by stored size). */
function filezBySize(repo: string, ext = ".filez"): string[] {
  const all: string[] = [];
  for (const p of readdirSync(join(repo, "objects"))) {
    for (const n of readdirSync(join(repo, "objects", p))) if (n.endsWith(ext)) all.push(join(repo, "objects", p, n));
  }
  return all.sort((a, b) => statSync(b).size - statSync(a).size);
}

describeInterop("fsck of small and large content objects matches ostree", () => {
  const tmp = tempDir();
  let repo = "";
  beforeAll(() => {
    const tree = join(tmp.path, "tree");
    mkdirSync(join(tree, "d"), { recursive: true });
    // Incompressible 1.5 MiB: its .filez is over the in-memory limit.
    writeFileSync(join(tree, "random.bin"), randomBytes(1536 * 1024));
    // 6 MiB of zeros: compresses to a few KiB but declares a payload over the limit.
    writeFileSync(join(tree, "zeros.bin"), Buffer.alloc(6 << 20));
    writeFileSync(join(tree, "empty"), "");
    // Small and incompressible: zlib stores it raw, so a flipped byte still inflates and only the checksum catches it.
    writeFileSync(join(tree, "random-small.bin"), randomBytes(3000));
    writeFileSync(join(tree, "d", "small.txt"), "small file\n".repeat(20));
    symlinkSync("d/small.txt", join(tree, "link"));
    repo = join(tmp.path, "repo");
    ostree(["init", `--repo=${repo}`, "--mode=archive"]);
    ostree(["commit", `--repo=${repo}`, "-b", "main", "-s", "s", "--no-xattrs", tree]);
  });
  afterAll(() => tmp.cleanup());

  /** A private bare-user copy of the test commit (objects are fresh files, not links). */
  function bareUserCopy(name: string): string {
    const copy = join(tmp.path, name);
    ostree(["init", `--repo=${copy}`, "--mode=bare-user"]);
    ostree(["commit", `--repo=${copy}`, "-b", "main", "-s", "s", "--no-xattrs", join(tmp.path, "tree")]);
    return copy;
  }

  it("passes an intact bare-user repo with ostree's output", async () => {
    const copy = bareUserCopy("bu-intact");
    const t = theirs(copy);
    expect(t.ok).toBe(true);
    expect(await ours(copy)).toEqual({ ok: true, out: t.out });
  });

  for (const [what, damage] of [
    ["a flipped byte", (b: Buffer) => Buffer.concat([b.subarray(0, 10), Buffer.from([b[10]! ^ 0x55]), b.subarray(11)])],
    ["a truncated file", (b: Buffer) => b.subarray(0, b.length - 7)],
  ] as const) {
    it(`reports ${what} in a small bare-user object like ostree`, async () => {
      const copy = bareUserCopy(`bu-${what.replace(/\W+/g, "-")}`);
      // The 3000-byte file: read in one piece by our check.
      const file = filezBySize(copy, ".file").find((f) => statSync(f).size === 3000)!;
      const b = readFileSync(file);
      writeFileSync(file, damage(b));
      const t = theirs(copy);
      const o = await ours(copy);
      expect(t.ok).toBe(false);
      expect(o.ok).toBe(false);
      expect(o.error).toBe(t.error);
    });
  }

  it("passes an intact repo with ostree's output", async () => {
    const t = theirs(repo);
    expect(t.ok).toBe(true);
    expect(await ours(repo)).toEqual({ ok: true, out: t.out });
  });

  for (const [what, pick] of [
    ["a large incompressible object", (files: string[]) => files[0]!],
    ["a small stored-block object", (files: string[]) => files.find((f) => statSync(f).size > 3000 && statSync(f).size < 4000)!],
    ["a small compressed object", (files: string[]) => files.find((f) => statSync(f).size > 40 && statSync(f).size < 1000)!],
  ] as const) {
    it(`reports a flipped payload byte in ${what} like ostree`, async () => {
      const copy = join(tmp.path, `copy-${what.replace(/\W+/g, "-")}`);
      ostree(["init", `--repo=${copy}`, "--mode=archive"]);
      ostree(["pull-local", `--repo=${copy}`, repo, "main"]);
      const file = pick(filezBySize(copy));
      const b = readFileSync(file);
      b[b.length - 5] = b[b.length - 5]! ^ 0x55;
      // pull-local hardlinks objects: replace the file rather than damage the source repo too.
      writeFileSync(`${file}.new`, b);
      renameSync(`${file}.new`, file);
      const t = theirs(copy);
      const o = await ours(copy);
      expect(t.ok).toBe(false);
      expect(o.ok).toBe(false);
      expect(o.error).toBe(t.error);
    });
  }
});
