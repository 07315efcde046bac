import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DeltaFormatError, DeltaToolError } from "../src/index.js";
import { xzDecodeToFile, xzDecodeWithBinary } from "../src/xz-decode.js";

const xz = (input: Uint8Array) => new Uint8Array(execFileSync("xz", ["-6", "-c", "--format=xz"], { input }));
const dir = mkdtempSync(join(tmpdir(), "xzdec-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("xzDecodeWithBinary", () => {
  const sample = Uint8Array.from({ length: 300_000 }, (_, i) => (i * 31) ^ (i >> 7));

  it("decodes into one buffer and leaves no file behind", async () => {
    const out = await xzDecodeWithBinary(xz(sample), sample.length, { tmpDir: dir });
    expect(Buffer.from(out).equals(Buffer.from(sample))).toBe(true);
    expect(readdirSync(dir)).toEqual([]);
  });

  it("refuses output past the cap (an xz bomb) and corrupt or truncated streams", async () => {
    const bomb = xz(new Uint8Array(16 << 20));
    await expect(xzDecodeWithBinary(bomb, 1_000_000, { tmpDir: dir })).rejects.toThrow(/past the declared maximum of 1000000 bytes/);
    await expect(xzDecodeWithBinary(xz(sample), sample.length - 1, { tmpDir: dir })).rejects.toThrow(DeltaFormatError);
    const good = xz(sample);
    await expect(xzDecodeWithBinary(good.subarray(0, good.length - 9), sample.length, { tmpDir: dir })).rejects.toThrow(/invalid xz stream/);
    const flipped = Uint8Array.from(good);
    flipped[flipped.length >> 1] = flipped[flipped.length >> 1]! ^ 0x55;
    await expect(xzDecodeWithBinary(flipped, sample.length, { tmpDir: dir })).rejects.toThrow(DeltaFormatError);
    await expect(xzDecodeWithBinary(new Uint8Array(0), 10, { tmpDir: dir })).rejects.toThrow(DeltaFormatError);
    expect(readdirSync(dir)).toEqual([]);
  });

  it("can leave the output in its temp file until read, once, or release it unread", async () => {
    const a = await xzDecodeToFile(xz(sample), sample.length, { tmpDir: dir });
    const b = await xzDecodeToFile(xz(sample.subarray(7)), sample.length, { tmpDir: dir });
    expect([a.size, b.size]).toEqual([sample.length, sample.length - 7]);
    expect(readdirSync(dir)).toEqual([]);
    expect(Buffer.from(a.read()).equals(Buffer.from(sample))).toBe(true);
    expect(() => a.read()).toThrow(DeltaToolError);
    b.close();
    expect(() => b.read()).toThrow(DeltaToolError);
  });

  it("a missing xz binary is a tool error, not a format error", async () => {
    await expect(xzDecodeWithBinary(xz(sample), sample.length, { tmpDir: dir, xzPath: join(dir, "no-such-xz") })).rejects.toThrow(DeltaToolError);
  });
});
