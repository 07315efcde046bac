import { describe, expect, it } from "vitest";
import { xorshiftBytes } from "@ostree-ts/interop";
import { realBinary } from "./binaries.js";
import { bupsplitFindOfs, computeRollsumMatches, crc32, ROLLSUM_BLOB_MAX, rollsumChunks, rollsumPlan, type RollsumSegment } from "../src/index.js";

const prng = (n: number, seed: number): Uint8Array => new Uint8Array(xorshiftBytes(n, seed));

function rebuild(from: Uint8Array, to: Uint8Array, plan: RollsumSegment[]): Uint8Array {
  const parts = plan.map((s) => (s.kind === "copy" ? from.subarray(s.fromStart, s.fromStart + s.length) : to.subarray(s.toStart, s.toStart + s.length)));
  return new Uint8Array(Buffer.concat(parts));
}

describe("bupsplit", () => {
  it("matches bup's C rolling checksum on a hand-computed case", () => {
    // All-zero input never splits: s2 grows by a constant, low 13 bits cycle but
    // never hit 0x1fff within 64 KiB (checked against the C formula below).
    const zeros = new Uint8Array(65536);
    let s1 = 64 * 31;
    let s2 = 64 * 63 * 31;
    let expected = 0;
    for (let i = 0; i < zeros.length; i++) {
      s2 = (s2 + s1 - 64 * 31) >>> 0;
      if ((s2 & 0x1fff) === 0x1fff) {
        expected = i + 1;
        break;
      }
    }
    expect(bupsplitFindOfs(zeros)).toBe(expected);
  });

  it("splits random data into ~8 KiB chunks capped at 32 KiB, covering the file", () => {
    const buf = prng(2_000_000, 7);
    const chunks = rollsumChunks(buf);
    let at = 0;
    for (const [s, l] of chunks) {
      expect(s).toBe(at);
      expect(l).toBeGreaterThan(0);
      expect(l).toBeLessThanOrEqual(ROLLSUM_BLOB_MAX);
      at += l;
    }
    expect(at).toBe(buf.length);
    const avg = buf.length / chunks.length;
    expect(avg).toBeGreaterThan(5000);
    expect(avg).toBeLessThan(12000);
  });

  it("is content-defined: an insertion only disturbs nearby chunk boundaries", () => {
    const a = prng(500_000, 3);
    const b = new Uint8Array(a.length + 100);
    b.set(a.subarray(0, 250_000));
    b.set(prng(100, 9), 250_000);
    b.set(a.subarray(250_000), 250_100);
    const ends = (c: Array<[number, number]>, shiftAfter: number) => new Set(c.map(([s, l]) => s + l - (s + l > shiftAfter ? 100 : 0)));
    const ea = ends(rollsumChunks(a), Infinity);
    const eb = [...ends(rollsumChunks(b), 250_000)];
    const shared = eb.filter((e) => ea.has(e)).length;
    expect(shared).toBeGreaterThan(eb.length - 4);
  });

  it("crc32 is zlib's", () => {
    expect(crc32(new TextEncoder().encode("123456789"))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
  });
});

describe("rollsum matches", () => {
  const from = prng(300_000, 11);
  const to = new Uint8Array(from);
  to.fill(0xff, 150_000, 150_016);

  it("content keying finds every unchanged chunk and the plan rebuilds the file", () => {
    const r = computeRollsumMatches(from, to);
    expect(r.total).toBe(rollsumChunks(to).length);
    expect(r.bufMatches).toBe(r.total - 1);
    expect(r.matchSize).toBe(r.matches.reduce((n, m) => n + m.length, 0));
    expect(r.worthwhile).toBe(true);
    for (let i = 1; i < r.matches.length; i++) expect(r.matches[i]!.toStart).toBeGreaterThan(r.matches[i - 1]!.toStart);
    for (const m of r.matches) {
      expect(Buffer.from(from.subarray(m.fromStart, m.fromStart + m.length)).equals(Buffer.from(to.subarray(m.toStart, m.toStart + m.length)))).toBe(true);
      expect(m.crc).toBe(crc32(to, m.toStart, m.toStart + m.length));
    }
    const plan = rollsumPlan(r.matches, to.length);
    expect(plan.filter((s) => s.kind === "literal")).toHaveLength(1);
    expect(Buffer.from(rebuild(from, to, plan)).equals(Buffer.from(to))).toBe(true);
  });

  it("ostree keying only matches chunks whose length-prefix of both files agrees", () => {
    // Same content but a changed first byte: every prefix CRC differs, so ostree finds nothing.
    const shifted = new Uint8Array(from);
    shifted[0]! ^= 1;
    const r = computeRollsumMatches(from, shifted, { keying: "ostree" });
    expect(r.bufMatches).toBe(0);
    expect(r.worthwhile).toBe(false);
    expect(computeRollsumMatches(from, shifted).bufMatches).toBe(r.total - 1);
  });

  it("reports ratio and stats for unrelated files", () => {
    const r = computeRollsumMatches(from, prng(100_000, 99));
    expect(r.bufMatches).toBe(0);
    expect(r.matchRatio).toBe(0);
    expect(rollsumPlan(r.matches, 100_000)).toEqual([{ kind: "literal", toStart: 0, length: 100_000 }]);
    expect(computeRollsumMatches(from, new Uint8Array(0))).toMatchObject({ total: 0, matchRatio: 0, worthwhile: false });
  });

  it("finds moved blocks in a real binary", () => {
    const a = realBinary();
    const half = a.length >> 1;
    const b = new Uint8Array(Buffer.concat([a.subarray(half), a.subarray(0, half)]));
    const r = computeRollsumMatches(a, b);
    expect(r.matchSize).toBeGreaterThan(b.length * 0.8);
    expect(Buffer.from(rebuild(a, b, rollsumPlan(r.matches, b.length))).equals(Buffer.from(b))).toBe(true);
  });

  it("rejects overlapping or out-of-range matches when planning", () => {
    const m = { crc: 0, length: 10, toStart: 0, fromStart: 0 };
    expect(() => rollsumPlan([m, { ...m, toStart: 5 }], 100)).toThrow(/overlaps/);
    expect(() => rollsumPlan([{ ...m, toStart: 95 }], 100)).toThrow(/exceeds/);
  });
});
