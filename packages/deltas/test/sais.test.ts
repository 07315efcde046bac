import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { suffixArray } from "../src/index.js";

/** Reference: sort suffix starts by direct comparison (a proper prefix sorts first). */
function naiveSuffixArray(t: Uint8Array): number[] {
  const n = t.length;
  return Array.from({ length: n }, (_, i) => i).sort((a, b) => {
    while (a < n && b < n) {
      if (t[a] !== t[b]) return t[a]! - t[b]!;
      a++;
      b++;
    }
    return a === n ? -1 : 1;
  });
}

describe("SA-IS", () => {
  it("matches a naive suffix sort on random small-alphabet inputs", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 256 }), fc.array(fc.nat(), { maxLength: 300 }), (k, xs) => {
        const t = Uint8Array.from(xs, (x) => x % k);
        expect(Array.from(suffixArray(t))).toEqual(naiveSuffixArray(t));
      }),
      { numRuns: 500 },
    );
  });

  it("matches on repetitive and degenerate inputs", () => {
    const cases: Uint8Array[] = [
      new Uint8Array(0),
      Uint8Array.of(7),
      new Uint8Array(1000),
      Uint8Array.from({ length: 999 }, (_, i) => i % 3),
      Uint8Array.from({ length: 1000 }, (_, i) => 255 - (i % 256)),
      Uint8Array.from({ length: 1024 }, (_, i) => (i & (i >> 3)) % 5),
      new TextEncoder().encode("mississippi".repeat(50) + "banana".repeat(40)),
    ];
    for (const t of cases) expect(Array.from(suffixArray(t))).toEqual(naiveSuffixArray(t));
  });

  it("writes into a caller-supplied array", () => {
    const t = new TextEncoder().encode("abracadabra");
    const out = new Int32Array(t.length + 1).fill(-9);
    suffixArray(t, out.subarray(1));
    expect(out[0]).toBe(-9);
    expect(Array.from(out.subarray(1))).toEqual(naiveSuffixArray(t));
    expect(() => suffixArray(t, new Int32Array(3))).toThrow(RangeError);
  });

  it("sorts 1 MB of pseudo-random 4-letter text into a valid suffix order", () => {
    const n = 1 << 20;
    const t = new Uint8Array(n);
    let x = 12345;
    for (let i = 0; i < n; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      t[i] = (x >>> 24) & 3;
    }
    const sa = suffixArray(t);
    const seen = new Uint8Array(n);
    for (let i = 0; i < n; i++) seen[sa[i]!] = 1;
    expect(seen.every((v) => v === 1)).toBe(true);
    for (let i = 1; i < n; i++) {
      let a = sa[i - 1]!;
      let b = sa[i]!;
      while (a < n && b < n && t[a] === t[b]) {
        a++;
        b++;
      }
      const ordered = a === n || (b < n && t[a]! < t[b]!);
      if (!ordered) throw new Error(`suffixes ${sa[i - 1]} and ${sa[i]} out of order`);
    }
  });
});
