import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { realBinary } from "./binaries.js";
import { compress, compressionByte, compressionKindOf, CompressionPool, decompress, DeltaFormatError, DeltaToolError } from "../src/index.js";

const hasXz = spawnSync("xz", ["--version"]).status === 0;
const sample = realBinary();

function xz(args: string[], input: Uint8Array): Uint8Array {
  const r = spawnSync("xz", args, { input, maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`xz ${args.join(" ")}: ${r.stderr}`);
  return new Uint8Array(r.stdout);
}

describe("compression byte", () => {
  it("maps 0x00 and 'x' and rejects anything else", () => {
    expect(compressionKindOf(0)).toBe("none");
    expect(compressionKindOf(0x78)).toBe("xz");
    expect(compressionByte("xz")).toBe(0x78);
    expect(compressionByte("none")).toBe(0);
    expect(() => compressionKindOf(0x30)).toThrow(/unknown delta part compression byte 0x30/);
  });
});

describe("none", () => {
  it("passes data through, bounded by maxSize", async () => {
    expect(await compress(sample, "none")).toBe(sample);
    expect(await decompress(sample, "none", sample.length)).toBe(sample);
    await expect(decompress(sample, "none", sample.length - 1)).rejects.toThrow(DeltaFormatError);
    await expect(decompress(sample, "xz", Number.NaN)).rejects.toThrow(RangeError);
  });
});

describe.skipIf(!hasXz)("xz", () => {
  it("round-trips with both decoders, and matches liblzma preset 8 + CRC64", async () => {
    const c = await compress(sample, "xz");
    expect(Array.from(c.subarray(0, 6))).toEqual([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);
    expect(c[7]).toBe(0x04); // stream flags: check type CRC64
    expect(Buffer.from(c).equals(Buffer.from(xz(["-8", "-T1", "-c"], sample)))).toBe(true);
    for (const decoder of ["wasm", "xz"] as const) {
      expect(Buffer.from(await decompress(c, "xz", sample.length, { decoder })).equals(Buffer.from(sample))).toBe(true);
    }
  });

  it("round-trips empty and tiny payloads", async () => {
    for (const p of [new Uint8Array(0), Uint8Array.of(0x78)]) {
      expect(Array.from(await decompress(await compress(p, "xz"), "xz", p.length))).toEqual(Array.from(p));
    }
  });

  it("refuses an xz bomb once past maxSize, with either decoder", async () => {
    const bomb = xz(["-1", "-c"], new Uint8Array(100 * 1024 * 1024));
    expect(bomb.length).toBeLessThan(100 * 1024);
    for (const decoder of ["wasm", "xz"] as const) {
      await expect(decompress(bomb, "xz", 1_000_000, { decoder })).rejects.toThrow(/past the declared maximum of 1000000 bytes/);
    }
    // The decoder is usable again after a cancelled stream.
    expect((await decompress(await compress(Uint8Array.of(1, 2), "xz"), "xz", 2)).length).toBe(2);
  });

  it("rejects corrupt, truncated, empty and trailing-garbage streams", async () => {
    const c = await compress(sample.subarray(0, 100_000), "xz");
    const flipped = new Uint8Array(c);
    flipped[c.length >> 1]! ^= 0x10;
    const bad = [flipped, c.subarray(0, c.length - 10), c.subarray(0, 20), new Uint8Array(0), new TextEncoder().encode("not xz"), new Uint8Array(Buffer.concat([c, Buffer.from("junk")]))];
    for (const b of bad) {
      for (const decoder of ["wasm", "xz"] as const) {
        await expect(decompress(b, "xz", 1 << 20, { decoder })).rejects.toThrow(DeltaFormatError);
      }
    }
  });

  it("verifies the CRC64 check of the stream", async () => {
    const data = new TextEncoder().encode("a payload whose integrity check gets corrupted");
    const c = await compress(data, "xz");
    // CRC64-ECMA as xz computes it, to locate the check field (it precedes the index).
    const table: bigint[] = [];
    for (let n = 0n; n < 256n; n++) {
      let v = n;
      for (let k = 0; k < 8; k++) v = v & 1n ? 0xc96c5795d7870f42n ^ (v >> 1n) : v >> 1n;
      table.push(v);
    }
    let crc = 0xffffffffffffffffn;
    for (const b of data) crc = table[Number((crc ^ BigInt(b)) & 0xffn)]! ^ (crc >> 8n);
    const field = Buffer.alloc(8);
    field.writeBigUInt64LE(crc ^ 0xffffffffffffffffn);
    const at = Buffer.from(c).indexOf(field);
    expect(at).toBeGreaterThan(12);
    const bad = new Uint8Array(c);
    bad[at]! ^= 1;
    await expect(decompress(bad, "xz", 1000)).rejects.toThrow(DeltaFormatError);
    expect(Array.from(await decompress(c, "xz", 1000))).toEqual(Array.from(data));
  });

  it("decodes a SHA-256-checked stream through the xz fallback", async () => {
    const c = xz(["-6", "-c", "--check=sha256"], sample.subarray(0, 5000));
    expect(Buffer.from(await decompress(c, "xz", 5000)).equals(Buffer.from(sample.subarray(0, 5000)))).toBe(true);
  });

  it("compresses a payload given as a file exactly like the same bytes in memory", async () => {
    const dir = mkdtempSync(join(tmpdir(), "compress-test-"));
    try {
      const path = join(dir, "payload");
      writeFileSync(path, sample);
      for (const preset of ["-8", "-8n"] as const) {
        const fromFile = await compress({ path }, "xz", { preset });
        expect(Buffer.from(fromFile).equals(Buffer.from(await compress(sample, "xz", { preset })))).toBe(true);
        expect(Buffer.from(await decompress(fromFile, "xz", sample.length)).equals(Buffer.from(sample))).toBe(true);
      }
      expect(Buffer.from(await compress({ path }, "none")).equals(Buffer.from(sample))).toBe(true);
      await expect(compress({ path: join(dir, "missing") }, "xz")).rejects.toThrow(DeltaToolError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("reports a missing xz binary as a tool error", async () => {
    await expect(compress(sample, "xz", { xzPath: "/nonexistent/xz" })).rejects.toThrow(DeltaToolError);
  });

  it("pool compresses in parallel with bounded concurrency, results in order", async () => {
    const pool = new CompressionPool(2);
    const payloads = [0, 1, 2, 3, 4].map((i) => sample.subarray(i * 100_000, i * 100_000 + 1_000_000));
    let peak = 0;
    const probe = setInterval(() => (peak = Math.max(peak, pool.active)), 1);
    const results = await pool.compressAll(payloads, "xz");
    clearInterval(probe);
    expect(peak).toBe(2);
    expect(pool.active).toBe(0);
    for (let i = 0; i < payloads.length; i++) {
      expect(Buffer.from(await decompress(results[i]!, "xz", payloads[i]!.length)).equals(Buffer.from(payloads[i]!))).toBe(true);
    }
    expect(() => new CompressionPool(0)).toThrow(RangeError);
  });
});
