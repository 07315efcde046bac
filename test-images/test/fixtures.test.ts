import { lstatSync, readFileSync, readlinkSync, statSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "@ostree-ts/interop";
import { afterAll, describe, expect, it } from "vitest";
import { FIXTURE_EPOCH, LARGE_FILE_SIZE, Rng, deriveTree, makeFixtureTree, pseudoRandomBytes, treeDigest, walkTree } from "../src/index.js";

const tmp = tempDir("ostree-ts-fixtures-");
afterAll(() => tmp.cleanup());

describe("makeFixtureTree", () => {
  it("is deterministic: same seed, same digest; other seed, other digest", () => {
    makeFixtureTree(join(tmp.path, "a"), { files: 40, seed: 7 });
    makeFixtureTree(join(tmp.path, "b"), { files: 40, seed: 7 });
    makeFixtureTree(join(tmp.path, "c"), { files: 40, seed: 8 });
    const a = treeDigest(join(tmp.path, "a"));
    expect(treeDigest(join(tmp.path, "b"))).toEqual(a);
    expect(treeDigest(join(tmp.path, "c")).digest).not.toBe(a.digest);
    expect(a.files).toBeGreaterThanOrEqual(40);
  });

  it("has the special entries ostree must round-trip", () => {
    const d = join(tmp.path, "special");
    const info = makeFixtureTree(d, { files: 5, seed: 1 });
    const mode = (p: string) => lstatSync(join(d, p)).mode & 0o7777;
    expect(statSync(join(d, info.special.empty)).size).toBe(0);
    expect(mode(info.special.exec)).toBe(0o755);
    expect(mode(info.special.setuid)).toBe(0o4755);
    expect(mode(info.special.setgid)).toBe(0o2755);
    expect(mode(info.special.stickyDir)).toBe(0o1777);
    expect(mode(info.special.readonly)).toBe(0o444);
    expect(readlinkSync(join(d, "special/link-dangling"))).toBe("does/not/exist");
    expect(readlinkSync(join(d, "special/link-abs"))).toBe("/usr/bin/env");
    const inos = info.special.hardlinks.map((p) => lstatSync(join(d, p)).ino);
    expect(new Set(inos).size).toBe(1);
    expect(lstatSync(join(d, info.special.hardlinks[0] as string)).nlink).toBe(3);
    for (const u of info.special.utf8) expect(readFileSync(join(d, u), "utf8")).toBe(`${u}\n`);
    expect(info.special.deepLeaf.split("/").length).toBe(25);
    expect(lstatSync(join(d, info.special.emptyDir)).isDirectory()).toBe(true);
    for (const e of walkTree(d)) expect(Math.floor(lstatSync(join(d, e.path)).mtimeMs / 1000)).toBe(FIXTURE_EPOCH);
  });

  it("refuses a non-empty target", () => {
    expect(() => makeFixtureTree(join(tmp.path, "a"), { files: 1, seed: 1 })).toThrow(/not empty/);
  });

  it("writes the >64 MiB file only when asked, deterministically", () => {
    const d1 = join(tmp.path, "large1");
    const info = makeFixtureTree(d1, { files: 0, seed: 3, largeFile: true });
    expect(statSync(join(d1, info.special.large as string)).size).toBe(LARGE_FILE_SIZE);
    const d2 = join(tmp.path, "large2");
    makeFixtureTree(d2, { files: 0, seed: 3, largeFile: true });
    expect(treeDigest(d2).digest).toBe(treeDigest(d1).digest);
  });
});

describe("deriveTree", () => {
  it("changes, removes and adds files deterministically", () => {
    const src = join(tmp.path, "src");
    makeFixtureTree(src, { files: 100, seed: 11 });
    const i1 = deriveTree(src, join(tmp.path, "d1"), { seed: 5, modify: 0.2, remove: 0.05, add: 4 });
    const i2 = deriveTree(src, join(tmp.path, "d2"), { seed: 5, modify: 0.2, remove: 0.05, add: 4 });
    expect(i1).toEqual(i2);
    expect(treeDigest(join(tmp.path, "d1")).digest).toBe(treeDigest(join(tmp.path, "d2")).digest);
    expect(treeDigest(join(tmp.path, "d1")).digest).not.toBe(treeDigest(src).digest);
    expect(i1.modified.length).toBeGreaterThan(0);
    expect(i1.added).toHaveLength(4);
    for (const m of i1.modified) expect(readFileSync(join(tmp.path, "d1", m)).equals(readFileSync(join(src, m)))).toBe(false);
  });
});

describe("Rng and pseudoRandomBytes", () => {
  it("repeat for the same seed", () => {
    const a = new Rng(42);
    const b = new Rng(42);
    expect([a.next(), a.next(), a.int(1, 6)]).toEqual([b.next(), b.next(), b.int(1, 6)]);
    expect(pseudoRandomBytes(1, "x", 64).equals(pseudoRandomBytes(1, "x", 64))).toBe(true);
    expect(pseudoRandomBytes(1, "x", 64).equals(pseudoRandomBytes(1, "y", 64))).toBe(false);
  });
});
