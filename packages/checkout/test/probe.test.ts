import { describe, expect, it } from "vitest";
import { CorruptObjectError, decodeFilezHeader, encodeFilezHeader, unframe, type FileMeta } from "@ostree-ts/objstore";
import { decodeFilezCached } from "../src/probe.js";

const header = (meta: FileMeta, size: number) => {
  const framed = encodeFilezHeader(meta, size);
  return unframe(framed, "test").header;
};

describe("cached .filez header decoding", () => {
  const reg: FileMeta = { uid: 1000, gid: 100, mode: 0o100755, symlinkTarget: "", xattrs: [["user.a", new Uint8Array([1, 2, 3])]] };
  const link: FileMeta = { uid: 0, gid: 0, mode: 0o120777, symlinkTarget: "../target", xattrs: [] };

  it("agrees with decodeFilezHeader on the first (decoded) and later (cached) headers of a kind, whatever the size", () => {
    for (const size of [0, 1, 255, 256, 70000, 2 ** 40 + 3, Number.MAX_SAFE_INTEGER, 0, 12]) {
      for (const meta of [reg, link, { ...reg, mode: 0o100644 }]) {
        const h = header(meta, size);
        const got = decodeFilezCached(h, "c");
        expect(got).toEqual(decodeFilezHeader(h, "c"));
        expect(got.size).toBe(size);
      }
    }
  });

  it("a size past 2^53 is refused even when the rest of the header is cached", () => {
    decodeFilezCached(header(reg, 5), "c");
    expect(() => decodeFilezCached(header(reg, 2 ** 60), "big")).toThrow(CorruptObjectError);
  });
});
