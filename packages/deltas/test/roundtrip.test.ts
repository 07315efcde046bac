import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir } from "@ostree-ts/interop";
import { fsck, fsckObject, ObjectType, Repo } from "@ostree-ts/objstore";
import { applyOffline, generateDelta, loadDelta, deltaDirPath, listDeltas, decodeSuperblock, readRepoSuperblock } from "../src/index.js";
import { commitTree, noise, text, type Tree } from "./tree.js";

function v1(): Tree {
  const big = text(300_000, 3);
  return {
    usr: {
      bin: { "app.sh": noise(20_000, 5), "tool": text(5000, 9) },
      lib: {
        "libfoo.so.1.2": noise(40_000, 7),
        modules: { "6.1.0-50-amd64": { kernel: { "a.ko": text(30_000, 11), "b.ko.xz": noise(8000, 12) } } },
      },
      share: { "big.dat": big, "readme.txt": "hello world\n", "notes.gz": noise(4000, 51), link: { link: "../bin/tool" } },
    },
  };
}

function v2(): Tree {
  const t = v1();
  const usr = t.usr as Tree;
  const bin = usr.bin as Tree;
  const app = new Uint8Array(bin["app.sh"] as Uint8Array);
  for (let i = 100; i < 120; i++) app[i] = app[i]! ^ 0x5a;
  bin["app.sh"] = app;
  const lib = usr.lib as Tree;
  const foo = new Uint8Array(lib["libfoo.so.1.2"] as Uint8Array);
  foo[1000] = foo[1000]! ^ 1;
  delete lib["libfoo.so.1.2"];
  lib["libfoo.so.1.3"] = foo;
  const mods = lib.modules as Tree;
  const ko = new Uint8Array(((mods["6.1.0-50-amd64"] as Tree).kernel as Tree)["a.ko"] as Uint8Array);
  ko[50] = ko[50]! ^ 1;
  delete mods["6.1.0-50-amd64"];
  mods["6.1.0-56-amd64"] = { kernel: { "a.ko": ko, "b.ko.xz": noise(8000, 13) } };
  const share = usr.share as Tree;
  const big = new Uint8Array(share["big.dat"] as Uint8Array);
  big.set(text(64, 99), 150_000);
  share["big.dat"] = big;
  share["readme.txt"] = "hello there world\n";
  // A small "compressed" file whose head is unchanged (as a gzip stream up to its first change).
  const notes = new Uint8Array(4000);
  notes.set((share["notes.gz"] as Uint8Array).subarray(0, 2500));
  notes.set(noise(1500, 42), 2500);
  share["notes.gz"] = notes;
  share["new.txt"] = text(2000, 17);
  share.link2 = { link: "readme.txt" };
  return t;
}

describe("generate → apply (in-process, every repo mode)", () => {
  let tmp: ReturnType<typeof tempDir>;
  let src: Repo;
  let c1: string;
  let c2: string;
  beforeAll(async () => {
    tmp = tempDir("deltas-rt-");
    src = await Repo.init(join(tmp.path, "src"), { mode: "archive" });
    c1 = await commitTree(src, v1());
    c2 = await commitTree(src, v2(), c1);
  });
  afterAll(() => tmp.cleanup());

  it("generates a FROM→TO delta that uses rollsum, bsdiff and follows versioned renames", async () => {
    const r = await generateDelta(src, { from: c1, to: c2, timestamp: 1700000000 });
    const byPath = new Map(r.explain.map((e) => [e.path, e]));
    expect(byPath.get("/usr/share/big.dat")!.strategy).toBe("rollsum");
    expect(byPath.get("/usr/bin/app.sh")!.strategy).toMatch(/rollsum|bsdiff/);
    expect(byPath.get("/usr/lib/libfoo.so.1.3")!.fromPath).toBe("/usr/lib/libfoo.so.1.2");
    expect(byPath.get("/usr/lib/modules/6.1.0-56-amd64/kernel/a.ko")!.fromPath).toBe("/usr/lib/modules/6.1.0-50-amd64/kernel/a.ko");
    expect(byPath.get("/usr/lib/modules/6.1.0-56-amd64/kernel/b.ko.xz")!.strategy).toBe("new"); // unrelated noise: no chunk matches
    expect(byPath.get("/usr/share/link2")!.strategy).toBe("symlink");
    // Too small for a rollsum chunk to match, but its shared head makes a patch worth keeping.
    expect(byPath.get("/usr/share/notes.gz")!.strategy).toBe("bsdiff");
    expect(await listDeltas(src)).toEqual([`${c1}-${c2}`]);
    const { superblock } = await readRepoSuperblock(src, `${c1}-${c2}`);
    expect(superblock.timestamp).toBe(1700000000);
    expect(superblock.from).toBe(c1);
    expect(superblock.endianness).toBe("l");
    // the delta is much smaller than the changed files
    const total = r.parts.reduce((s, p) => s + p.size, 0);
    expect(total).toBeLessThan(16_000);
  });

  it("diffs large files early and ships their patches last, in their own part; the delta applies", async () => {
    const file = join(tmp.path, "early", "sb");
    const r = await generateDelta(src, { from: c1, to: c2, filename: file, earlyBsdiffSize: 25_000, xzPreset: "auto" });
    const patched = r.explain.filter((e) => e.strategy === "bsdiff");
    const early = patched.filter((e) => e.size >= 25_000);
    expect(early.map((e) => e.path)).toEqual(["/usr/lib/modules/6.1.0-56-amd64/kernel/a.ko"]);
    expect(patched.map((e) => e.path)).toContain("/usr/bin/app.sh");
    const last = r.parts.length - 1;
    expect(early[0]!.part).toBe(last);
    expect(r.explain.filter((e) => e.part === last).map((e) => e.path)).not.toContain("/usr/bin/app.sh");
    const dst = await Repo.init(join(tmp.path, "early-dst"), { mode: "archive" });
    const { reachableFromCommit } = await import("@ostree-ts/objstore");
    for (const key of await reachableFromCommit(src, c1)) {
      const [csum, t] = key.split(".") as [string, string];
      if (t === "file") {
        const { meta, data } = await src.readContentBytes(csum);
        await dst.writeContent(meta, { data }, csum);
      } else {
        const type = t === "commit" ? ObjectType.Commit : t === "dirtree" ? ObjectType.DirTree : ObjectType.DirMeta;
        await dst.writeMetadata(type, await src.loadMetadataBytes(type, csum), csum);
      }
    }
    await applyOffline(dst, file);
    expect((await fsck(dst, { quiet: true })).commitsVerified).toBe(2);
    expect(Buffer.from((await dst.readContentBytes(early[0]!.checksum)).data)).toEqual(Buffer.from((await src.readContentBytes(early[0]!.checksum)).data));
  });

  for (const mode of ["archive", "bare-user", "bare-user-only"] as const) {
    it(`applies into a ${mode} repo holding FROM; result passes fsck`, async () => {
      const dst = await Repo.init(join(tmp.path, `dst-${mode}`), { mode });
      for await (const o of src.listObjects()) {
        if (o.type === ObjectType.File) {
          const { meta, data } = await src.readContentBytes(o.checksum);
          await dst.writeContent(meta, { data }, o.checksum);
        }
      }
      // copy exactly the objects of c1
      const { reachableFromCommit } = await import("@ostree-ts/objstore");
      const reach = await reachableFromCommit(src, c1);
      for (const key of reach) {
        const [csum, t] = key.split(".") as [string, string];
        if (t === "file") continue;
        const type = t === "commit" ? ObjectType.Commit : t === "dirtree" ? ObjectType.DirTree : ObjectType.DirMeta;
        await dst.writeMetadata(type, await src.loadMetadataBytes(type, csum), csum);
      }
      const res = await applyOffline(dst, join(src.path, deltaDirPath(c1, c2)));
      expect(res.partsExecuted).toBe(1);
      expect(await dst.hasObject(c2, ObjectType.Commit)).toBe(true);
      const result = await fsck(dst, { quiet: true });
      expect(result.commitsVerified).toBe(2);
      for await (const o of dst.listObjects()) await fsckObject(dst, o.checksum, o.type);
    });
  }

  it("scratch + inline + big-endian delta applies into an empty repo", async () => {
    const file = join(tmp.path, "scratch.bin");
    await generateDelta(src, { from: null, to: c2, inline: true, filename: file, endianness: "B", compression: "none" });
    expect(readdirSync(tmp.path).filter((f) => /^\d+$/.test(f))).toEqual([]);
    const sb = decodeSuperblock(new Uint8Array(readFileSync(file)));
    expect(sb.endianness).toBe("B");
    expect(sb.from).toBeNull();
    expect(sb.metadata.map(([k]) => k)).toEqual(["ostree.endianness", `${deltaDirPath(null, c2)}/0`]);
    const dst = await Repo.init(join(tmp.path, "empty"), { mode: "archive" });
    await applyOffline(dst, file);
    expect(await dst.hasObject(c2, ObjectType.Commit)).toBe(true);
    const d = await loadDelta(file);
    expect(d.superblock.parts[0]!.size).toBeGreaterThan(d.superblock.parts[0]!.usize);
  });

  it("splits parts by max chunk size and sends large files as fallbacks", async () => {
    const file = join(tmp.path, "split", "sb");
    const r = await generateDelta(src, { from: null, to: c2, filename: file, maxChunkSize: 0.05, minFallbackSize: 0.25 });
    expect(r.parts.length).toBeGreaterThan(1);
    expect(r.fallbacks.map((f) => f.usize)).toEqual([300_000]);
    const dst = await Repo.init(join(tmp.path, "fb"), { mode: "archive" });
    await expect(applyOffline(dst, file)).rejects.toThrow(/nonempty http fallback entries/);
  });
});
