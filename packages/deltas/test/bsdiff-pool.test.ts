import { describe, expect, it } from "vitest";
import { bsdiff, bspatch, BsdiffPool } from "../src/index.js";
import { realBinary } from "./binaries.js";

describe("BsdiffPool", () => {
  const old = realBinary(300_000);
  const variants = [1, 2, 3, 4, 5].map((k) => {
    const n = new Uint8Array(old);
    for (let i = 0; i < n.length; i += 997 * k) n[i] = n[i]! ^ k;
    return n;
  });

  it("workers produce the same patches as bsdiff() on the calling thread", async () => {
    const pool = new BsdiffPool({ concurrency: 2 });
    try {
      const patches = await Promise.all(variants.map((v) => pool.diff(old, v)));
      patches.forEach((p, i) => {
        expect(Buffer.from(p).equals(Buffer.from(bsdiff(old, variants[i]!)))).toBe(true);
        expect(Buffer.from(bspatch(old, p, variants[i]!.length)).equals(Buffer.from(variants[i]!))).toBe(true);
      });
    } finally {
      await pool.close();
    }
  });

  it("admits jobs within the memory budget (one at a time when each exceeds half of it)", async () => {
    const cost = BsdiffPool.cost(old.length, old.length);
    const pool = new BsdiffPool({ concurrency: 4, memoryBudget: Math.floor(cost * 1.5) });
    let peak = 0;
    try {
      await Promise.all(
        variants.map(async (v) => {
          const p = pool.diff(old, v);
          peak = Math.max(peak, (pool as unknown as { running: Map<number, unknown> }).running.size);
          return p;
        }),
      );
      expect(peak).toBe(1);
    } finally {
      await pool.close();
    }
  });

  it("transfer moves exclusively owned inputs to the worker and copies views into shared buffers", async () => {
    const pool = new BsdiffPool({ concurrency: 1 });
    try {
      const a = new Uint8Array(old);
      const b = new Uint8Array(variants[0]!);
      const shared = new Uint8Array(64);
      shared.set(old.subarray(0, 64));
      const smallOld = shared.subarray(0, 32);
      const smallNew = shared.subarray(32, 64);
      const [p, q] = await Promise.all([pool.diff(a, b, { transfer: true }), pool.diff(smallOld, smallNew, { transfer: true })]);
      expect(a.byteLength).toBe(0);
      expect(b.byteLength).toBe(0);
      expect(shared.byteLength).toBe(64);
      expect(Buffer.from(p).equals(Buffer.from(bsdiff(old, variants[0]!)))).toBe(true);
      expect(Buffer.from(bspatch(smallOld, q, 32)).equals(Buffer.from(smallNew))).toBe(true);
    } finally {
      await pool.close();
    }
  });
});
