import { describe, expect, it } from "vitest";
import { bsdiff, bspatch, DeltaFormatError, writeOfft } from "../src/index.js";

/** Builds a patch from controls [x, y, z, diff bytes, extra bytes]. */
function patchOf(...ctls: Array<[number, number, number, number[]?, number[]?]>): Uint8Array {
  const parts: number[] = [];
  for (const [x, y, z, diff = Array(Math.max(0, Math.min(x, 1000))).fill(0), extra = Array(Math.max(0, Math.min(y, 1000))).fill(9)] of ctls) {
    const h = new Uint8Array(24);
    writeOfft(h, 0, x);
    writeOfft(h, 8, y);
    writeOfft(h, 16, z);
    parts.push(...h, ...diff, ...extra);
  }
  return Uint8Array.from(parts);
}

const old = Uint8Array.from({ length: 100 }, (_, i) => i);
const rejects = (patch: Uint8Array, size: number, what: RegExp) => {
  expect(() => bspatch(old, patch, size)).toThrow(DeltaFormatError);
  expect(() => bspatch(old, patch, size)).toThrow(what);
};

describe("bspatch", () => {
  it("applies diff (added to old, mod 256) then extra, then seeks", () => {
    const p = patchOf([3, 2, 10, [1, 255, 0], [7, 8]], [2, 0, 0, [0, 0]]);
    expect(Array.from(bspatch(old, p, 7))).toEqual([1, 0, 2, 7, 8, 13, 14]);
  });

  it("rejects truncated controls, diff and extra data", () => {
    const good = bsdiff(old, Uint8Array.from({ length: 120 }, (_, i) => (i * 3) & 0xff));
    for (const cut of [1, 23, 24, 25, good.length - 1]) {
      expect(() => bspatch(old, good.subarray(0, cut), 120)).toThrow(DeltaFormatError);
    }
    rejects(new Uint8Array(10), 5, /truncated control/);
    rejects(patchOf([5, 0, 0, [1, 2]]), 5, /truncated diff/);
    rejects(patchOf([0, 5, 0, [], [1]]), 5, /truncated extra/);
  });

  it("rejects negative and oversized lengths", () => {
    rejects(patchOf([-1, 0, 0, []]), 5, /diff length -1 out of range/);
    rejects(patchOf([0, -3, 0, [], []]), 5, /extra length -3 out of range/);
    rejects(patchOf([2 ** 31, 0, 0, []]), 5, /out of range/);
    rejects(patchOf([2 ** 62, 0, 0, []]), 5, /out of range/);
  });

  it("rejects writes past the declared output size", () => {
    rejects(patchOf([6, 0, 0]), 5, /overruns declared size 5/);
    rejects(patchOf([3, 3, 0]), 5, /extra length 3 at output 3 overruns/);
  });

  it("rejects reads outside old and seeks out of range", () => {
    rejects(patchOf([0, 0, -1, [], []], [1, 0, 0]), 1, /seek -1 moves old position to -1/);
    rejects(patchOf([0, 0, 101, [], []], [1, 0, 0]), 1, /seek 101/);
    rejects(patchOf([0, 0, 2 ** 53, [], []], [1, 0, 0]), 1, /seek/);
    rejects(patchOf([0, 0, 60], [50, 0, 0]), 50, /diff reads old \[60, 110\) outside old size 100/);
  });

  it("rejects trailing bytes and bad declared sizes", () => {
    rejects(Uint8Array.of(...patchOf([1, 0, 0]), 0), 1, /1 trailing bytes/);
    expect(() => bspatch(old, new Uint8Array(0), -1)).toThrow(/invalid declared output size/);
    expect(() => bspatch(old, new Uint8Array(0), 1.5)).toThrow(DeltaFormatError);
  });

  it("names the patch in errors", () => {
    expect(() => bspatch(old, new Uint8Array(3), 1, { label: "object abc" })).toThrow(/bsdiff patch for object abc: control #0 at patch offset 0/);
  });

  it("lenient mode follows mendsley bspatch: out-of-range old bytes add nothing, trailing bytes ignored", () => {
    const p = Uint8Array.of(...patchOf([0, 0, 98], [4, 0, 0, [1, 1, 1, 1]]), 0xee);
    expect(Array.from(bspatch(old, p, 4, { lenient: true }))).toEqual([99, 100, 1, 1]);
    expect(() => bspatch(old, p, 4)).toThrow(DeltaFormatError);
  });

  it("never writes beyond the output for random garbage patches", () => {
    let x = 99;
    for (let r = 0; r < 2000; r++) {
      const len = r % 200;
      const p = new Uint8Array(len);
      for (let i = 0; i < len; i++) {
        x = (Math.imul(x, 1103515245) + 12345) >>> 0;
        p[i] = x >>> 24 < 200 ? (x >>> 16) & 3 : x >>> 24;
      }
      for (const lenient of [false, true]) {
        try {
          expect(bspatch(old, p, 7, { lenient }).length).toBe(7);
        } catch (e) {
          expect(e).toBeInstanceOf(DeltaFormatError);
        }
      }
    }
  });

  it("adds sparse diff bytes at every alignment like the byte-by-byte definition, into a caller's buffer", () => {
    const big = Uint8Array.from({ length: 4096 }, (_, i) => (i * 7 + 3) & 0xff);
    let x = 7;
    for (let shift = 0; shift < 8; shift++) {
      const n = 1000 + shift;
      const diff = Array.from({ length: n }, () => {
        x = (Math.imul(x, 1103515245) + 12345) >>> 0;
        return x >>> 24 < 40 ? (x >>> 16) & 0xff : 0;
      });
      // `shift` extra bytes before the diff data move it across word boundaries.
      const body = patchOf([n, 0, 0, diff, []]);
      const framed = new Uint8Array(shift + body.length);
      framed.set(body, shift);
      const patch = framed.subarray(shift);
      const expected = diff.map((d, i) => (d + big[i]!) & 0xff);
      expect(Array.from(bspatch(big, patch, n))).toEqual(expected);
      const out = new Uint8Array(n);
      expect(bspatch(big, patch, n, {}, out)).toBe(out);
      expect(Array.from(out)).toEqual(expected);
    }
    expect(() => bspatch(big, patchOf([4, 0, 0]), 4, {}, new Uint8Array(3))).toThrow(RangeError);
  });
});
