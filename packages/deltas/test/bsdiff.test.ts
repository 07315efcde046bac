import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { realBinary } from "./binaries.js";
import { bsdiff, bspatch, DeltaLimitError, readOfft, suffixArray, writeOfft } from "../src/index.js";
import { bsdiffCore, prefixBuckets, search, suffixKeys, type BsdiffScratch } from "../src/bsdiff.js";

const roundTrip = (a: Uint8Array, b: Uint8Array) => {
  const p = bsdiff(a, b);
  expect(Buffer.from(bspatch(a, p, b.length)).equals(Buffer.from(b))).toBe(true);
  return p;
};

/** Applies random edits (overwrite, insert, delete, block move) to a base buffer. */
const mutated = fc
  .tuple(
    fc.uint8Array({ minLength: 0, maxLength: 3000 }),
    fc.array(fc.tuple(fc.constantFrom("set", "ins", "del", "dup"), fc.nat(), fc.nat({ max: 200 }), fc.uint8Array({ maxLength: 40 })), { maxLength: 12 }),
  )
  .map(([base, edits]) => {
    let b = Array.from(base);
    for (const [kind, at0, len, bytes] of edits) {
      const at = b.length === 0 ? 0 : at0 % b.length;
      if (kind === "set") b.splice(at, bytes.length, ...bytes);
      else if (kind === "ins") b.splice(at, 0, ...bytes);
      else if (kind === "del") b.splice(at, len);
      else b.splice(at, 0, ...b.slice(at, at + len));
    }
    return [base, Uint8Array.from(b)] as const;
  });

describe("bsdiff → bspatch", () => {
  it("round-trips unrelated random buffers", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 2000 }), fc.uint8Array({ maxLength: 2000 }), (a, b) => void roundTrip(a, b)), { numRuns: 200 });
  });

  it("round-trips edited versions of a buffer", () => {
    fc.assert(fc.property(mutated, ([a, b]) => void roundTrip(a, b)), { numRuns: 300 });
  });

  it("round-trips low-entropy data (runs, small alphabets)", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 1, max: 300 })), { maxLength: 30 }), fc.nat(), (runs, seed) => {
        const a = Uint8Array.from(runs.flatMap(([v, n]) => Array(n).fill(v)));
        const b = a.map((v, i) => ((i * 7 + seed) % 97 === 0 ? v ^ 1 : v));
        roundTrip(a, b);
        roundTrip(b, a);
      }),
      { numRuns: 100 },
    );
  });

  it("handles empty inputs", () => {
    expect(bsdiff(new Uint8Array(0), new Uint8Array(0)).length).toBe(0);
    roundTrip(new Uint8Array(0), Uint8Array.of(1, 2, 3));
    roundTrip(Uint8Array.of(1, 2, 3), new Uint8Array(0));
  });

  it("identical input gives a single control that only diffs zeros", () => {
    const a = Uint8Array.from({ length: 5000 }, (_, i) => (i * 31) & 0xff);
    const p = roundTrip(a, a);
    expect(readOfft(p, 0)).toBe(5000);
    expect(readOfft(p, 8)).toBe(0);
    expect(p.length).toBe(24 + 5000);
    expect(p.subarray(24).every((v) => v === 0)).toBe(true);
  });

  it("patches a real binary against a mutated copy with few literal bytes", () => {
    const a = realBinary();
    const b = new Uint8Array(a.length + 64);
    b.set(a.subarray(0, 40000));
    b.set(new TextEncoder().encode("inserted in the middle of the text section, 64 bytes long......"), 40000);
    b.set(a.subarray(40000), 40064);
    for (let i = 1000; i < b.length; i += 4099) b[i]! ^= 0x5a;
    const p = roundTrip(a, b);
    // Diff bytes are mostly zero; what matters is few controls and little extra data.
    let extra = 0;
    for (let at = 0, out = 0; out < b.length; ) {
      const x = readOfft(p, at);
      const y = readOfft(p, at + 8);
      extra += y;
      at += 24 + x + y;
      out += x + y;
    }
    expect(extra).toBeLessThan(1024);
  });

  it("refuses inputs above maxInputSize", () => {
    expect(() => bsdiff(new Uint8Array(10), new Uint8Array(10), { maxInputSize: 19 })).toThrow(DeltaLimitError);
    expect(() => bsdiff(new Uint8Array(10), new Uint8Array(10), { maxInputSize: 20 })).not.toThrow();
  });
});

describe("bsdiff with a reused scratch (as a worker runs it)", () => {
  it("gives the same patches when the arrays are left over from larger and smaller jobs", () => {
    const scratch: BsdiffScratch = { I: new Int32Array(0), keys: new Uint16Array(0) };
    const big = realBinary(1 << 17);
    const jobs: Array<[Uint8Array, Uint8Array]> = [
      [big, realBinary(1 << 17).map((v, i) => (i % 97 === 0 ? v ^ 1 : v))],
      [big.subarray(0, 5000), Uint8Array.from(big.subarray(100, 5300)).reverse()],
      // Unrelated content: enough searches to build the suffix keys in the scratch.
      [Uint8Array.from({ length: 20000 }, (_, i) => (i * 7919) & 0xff), Uint8Array.from({ length: 20000 }, (_, i) => (i * 104729 + 13) & 0xff)],
      [big.subarray(3), big.subarray(0, 40000)],
    ];
    for (const [a, b] of jobs) {
      const patch = bsdiffCore(a, b, scratch);
      expect(Buffer.from(patch).equals(Buffer.from(bsdiffCore(a, b)))).toBe(true);
      expect(Buffer.from(bspatch(a, patch, b.length)).equals(Buffer.from(b))).toBe(true);
    }
    expect(scratch.I.length).toBe((1 << 17) + 1);
    expect(scratch.keys.length).toBeGreaterThan(0);
  });
});

describe("offt encoding", () => {
  it("is 8-byte sign-magnitude little-endian", () => {
    const b = new Uint8Array(8);
    writeOfft(b, 0, -0x0102);
    expect(Array.from(b)).toEqual([2, 1, 0, 0, 0, 0, 0, 0x80]);
    fc.assert(
      fc.property(fc.maxSafeInteger(), fc.boolean(), (m, neg) => {
        const v = neg ? -m : m;
        writeOfft(b, 0, v);
        expect(readOfft(b, 0)).toBe(v === 0 ? 0 : v);
      }),
    );
  });
});

/** The plain binary search of mendsley's bsdiff (no bucket shortcut), as the reference. */
function plainSearch(I: Int32Array, old: Uint8Array, nw: Uint8Array, scan: number, oldsize: number): [number, number] {
  const matchLen = (a: number) => {
    let k = 0;
    while (a + k < oldsize && scan + k < nw.length && old[a + k] === nw[scan + k]) k++;
    return k;
  };
  let st = 0;
  let en = oldsize;
  while (en - st >= 2) {
    const x = st + ((en - st) >>> 1);
    const k = matchLen(I[x]!);
    if (I[x]! + k < oldsize && scan + k < nw.length && old[I[x]! + k]! < nw[scan + k]!) st = x;
    else en = x;
  }
  const x = matchLen(I[st]!);
  const y = matchLen(I[en]!);
  return x > y ? [x, I[st]!] : [y, I[en]!];
}

describe("bsdiff search with two-byte buckets and suffix keys", () => {
  const check = (old: Uint8Array, nw: Uint8Array) => {
    const I = new Int32Array(old.length + 1);
    I[0] = old.length;
    I.set(suffixArray(old), 1);
    const buckets = prefixBuckets(old);
    const keys = new Uint16Array(old.length + 1);
    const shorts = suffixKeys(I, old, keys);
    const noKeys = new Uint16Array(0);
    const found = new Int32Array(1);
    for (let scan = 0; scan < nw.length; scan++) {
      const want = plainSearch(I, old, nw, scan, old.length);
      const len = search(I, old, nw, scan, old.length, found, buckets, keys, shorts);
      expect([len, found[0]]).toEqual(want);
      const len2 = search(I, old, nw, scan, old.length, found, buckets, noKeys, shorts);
      expect([len2, found[0]]).toEqual(want);
    }
  };

  it("makes the same choices as the plain binary search, incl. one-byte and prefix suffixes", () => {
    // Small alphabets make suffixes that are prefixes of the query, and queries whose
    // first byte is the old file's last byte, common.
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 300 }), fc.integer({ min: 1, max: 256 }), (a, b, k) => {
        check(a.map((v) => v % k), b.map((v) => v % k));
      }),
      { numRuns: 300 },
    );
    const real = realBinary(1 << 16);
    check(real, realBinary(1 << 17).subarray(1 << 16, (1 << 16) + 20000));
  });
});
