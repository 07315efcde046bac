import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { bswap32, encode } from "@ostree-ts/gvariant";
import { decodePartPayload, encodePartPayloadChunks, PART_PAYLOAD_TYPE } from "../src/part.js";

describe("encodePartPayloadChunks", () => {
  it("writes the GVariant normal form of (a(uuu)aa(ayay)ayay), whatever the chunking and offset width", () => {
    const mode = fc.record({ uid: fc.nat(), gid: fc.nat(), mode: fc.nat() });
    const xattrSet = fc.array(fc.tuple(fc.string({ minLength: 1, maxLength: 8 }).filter((n) => !n.includes("\0")), fc.uint8Array({ maxLength: 20 })), { maxLength: 3 });
    // Blob sizes around the 1-, 2- and 4-byte framing offset limits.
    const blobLen = fc.oneof(fc.nat({ max: 300 }), fc.integer({ min: 65_400, max: 65_600 }));
    fc.assert(
      fc.property(fc.array(mode, { maxLength: 4 }), fc.array(xattrSet, { maxLength: 3 }), blobLen, fc.array(fc.nat({ max: 400 }), { maxLength: 4 }), fc.uint8Array({ maxLength: 300 }), (modes, xattrs, n, cuts, ops) => {
        const blob = Uint8Array.from({ length: n }, (_, i) => (i * 7) & 0xff);
        const bounds = [...new Set([0, ...cuts.map((c) => Math.min(c, n)), n])].sort((a, b) => a - b);
        const chunks = bounds.slice(1).map((e, i) => blob.subarray(bounds[i]!, e));
        const got = encodePartPayloadChunks({ modes, xattrs, blobChunks: chunks, ops });
        const want = encode(PART_PAYLOAD_TYPE, [
          modes.map((m) => [bswap32(m.uid), bswap32(m.gid), bswap32(m.mode)]),
          xattrs.map((set) => set.map(([k, v]) => [Buffer.from(`${k}\0`, "utf8"), v])),
          blob,
          ops,
        ]);
        expect(Buffer.from(got).equals(Buffer.from(want))).toBe(true);
        const back = decodePartPayload(got);
        expect(Buffer.from(back.blob).equals(Buffer.from(blob))).toBe(true);
        expect(back.modes).toEqual(modes);
      }),
      { numRuns: 150 },
    );
  });
});
