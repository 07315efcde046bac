import { describe, expect, it } from "vitest";
import { fastDirTree } from "../src/dirtree-fast.js";
import { CorruptObjectError } from "../src/errors.js";
import { decodeDirTree, decodeDirTreeGeneric, encodeDirTree, type DirTree } from "../src/metadata.js";

/** xorshift32: deterministic, so a failure reproduces. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

function hex(next: () => number): string {
  let s = "";
  for (let i = 0; i < 8; i++) s += next().toString(16).padStart(8, "0");
  return s;
}

const NAMES = ["a", "bin", "ünïcödé", "\u{feff}bom", "x".repeat(300), "lib64", ".wh.x", "日本"];

function randomTree(next: () => number, files: number, dirs: number): DirTree {
  const name = (i: number) => `${NAMES[next() % NAMES.length]}${i}`;
  return {
    files: Array.from({ length: files }, (_, i) => ({ name: name(i), checksum: hex(next) })),
    dirs: Array.from({ length: dirs }, (_, i) => ({ name: `d${name(i)}`, tree: hex(next), meta: hex(next) })),
  };
}

describe("fast dirtree decoder", () => {
  it("takes the fast path for normal-form trees of every offset width and agrees with decodeDirTreeGeneric", () => {
    const next = rng(7);
    // 0/0 is the smallest tree; 3000 files need 2-byte offsets in the array, 70000 need 4.
    for (const [f, d] of [[0, 0], [1, 0], [0, 1], [3, 2], [40, 9], [3000, 5], [70000, 1]] as const) {
      const t = randomTree(next, f, d);
      const bytes = encodeDirTree(t);
      const fast = fastDirTree(bytes);
      expect(fast, `${f} files, ${d} dirs`).toBeDefined();
      expect(fast).toEqual(decodeDirTreeGeneric(bytes));
      expect(fast).toEqual(t);
    }
  });

  it("never accepts what decodeDirTreeGeneric refuses, nor decodes differently (mutated, truncated, re-framed bytes)", () => {
    const next = rng(99);
    let accepted = 0;
    let refused = 0;
    for (let round = 0; round < 3000; round++) {
      const good = encodeDirTree(randomTree(next, next() % 6, next() % 4));
      const bytes = new Uint8Array(good);
      const kind = next() % 4;
      if (kind === 0) {
        const at = next() % bytes.length;
        bytes[at] = bytes[at]! ^ (1 << (next() % 8));
      }
      else if (kind === 1) bytes[bytes.length - 1 - (next() % Math.min(bytes.length, 6))] = next() & 0xff;
      else if (kind === 2) bytes[next() % bytes.length] = 0;
      const input = kind === 3 ? bytes.subarray(0, next() % bytes.length) : bytes;
      const fast = fastDirTree(input);
      let slow: DirTree | undefined;
      try {
        slow = decodeDirTreeGeneric(input);
      } catch (e) {
        expect(e).toBeInstanceOf(CorruptObjectError);
      }
      if (fast) {
        accepted++;
        expect(slow, `round ${round}`).toEqual(fast);
      } else if (!slow) refused++;
    }
    // Both outcomes were exercised.
    expect(accepted).toBeGreaterThan(50);
    expect(refused).toBeGreaterThan(500);
  });

  it("refuses a non-normal wide framing offset that GLib would read the same", () => {
    const t: DirTree = { files: [{ name: "f", checksum: "ab".repeat(32) }], dirs: [] };
    const good = encodeDirTree(t);
    // Re-frame the outer tuple with a 2-byte offset: readable, but not what GLib writes.
    const body = good.subarray(0, good.length - 1);
    const wide = new Uint8Array(body.length + 2);
    wide.set(body);
    wide[body.length] = good[good.length - 1]!;
    expect(fastDirTree(wide)).toBeUndefined();
    expect(() => decodeDirTree(wide, "c".repeat(64))).toThrow(CorruptObjectError);
  });

  it("refuses an array framed wider than GLib writes it, even where GLib would read that width", () => {
    // Three (say) elements of 84 bytes: 252 bytes of body fit 1-byte offsets (255 in all), so a
    // 2-byte table (258 bytes, which GLib reads with 2-byte offsets) is readable but not normal form.
    const elems = [0, 1, 2].map((i) => {
      const e = new Uint8Array(84);
      e.fill(0x61 + i, 0, 50);
      e[50] = 0;
      e.fill(i + 1, 51, 83);
      e[83] = 51;
      return e;
    });
    const arr = new Uint8Array(258);
    elems.forEach((e, i) => arr.set(e, i * 84));
    for (let i = 0; i < 3; i++) arr[252 + i * 2] = (i + 1) * 84;
    const bytes = new Uint8Array(260);
    bytes.set(arr);
    bytes[258] = 258 & 0xff;
    bytes[259] = 258 >> 8;
    expect(fastDirTree(bytes)).toBeUndefined();
    expect(() => decodeDirTree(bytes, "c".repeat(64))).toThrow(CorruptObjectError);
    // The same elements framed as GLib frames them decode, on the fast path.
    const canon = new Uint8Array(256);
    elems.forEach((e, i) => canon.set(e, i * 84));
    for (let i = 0; i < 3; i++) canon[252 + i] = (i + 1) * 84;
    canon[255] = 255;
    const okBytes = new Uint8Array(257);
    okBytes.set(canon.subarray(0, 255));
    okBytes[255] = 255;
    okBytes[256] = 0;
    expect(fastDirTree(okBytes)?.files.map((f) => f.name)).toEqual(["a", "b", "c"].map((c) => c.repeat(50)));
  });

  it("bad names get objstore's errors, naming the dirtree", () => {
    const csum = "d".repeat(64);
    for (const name of ["..", ".", "a/b"]) {
      const bytes = encodeDirTree({ files: [{ name, checksum: "ab".repeat(32) }], dirs: [] });
      expect(fastDirTree(bytes)).toBeUndefined();
      expect(() => decodeDirTree(bytes, csum)).toThrow(CorruptObjectError);
    }
  });
});
