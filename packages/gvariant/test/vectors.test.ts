import { describe, expect, it } from "vitest";
import { decode, encode, variant, type Value } from "../src/index.js";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const unhex = (s: string) => new Uint8Array(Buffer.from(s.replace(/\s+/g, ""), "hex"));

// Hex vectors from shared/spec/gvariant.md §4 (GLib 2.74.6).
const vectors: Array<[string, Value, string]> = [
  ["u", 0x12345678, "78563412"],
  ["t", 1n, "0100000000000000"],
  ["s", "hi", "686900"],
  ["ay", new Uint8Array([1, 2, 3]), "010203"],
  ["as", ["a", "bc"], "61006263000205"],
  ["au", [1, 2], "0100000002000000"],
  ["(us)", [7, "x"], "070000007800"],
  ["(su)", ["x", 7], "780000000700000002"],
  ["(yt)", [1, 2n], "01000000000000000200000000000000"],
  ["ms", "foo", "666f6f0000"],
  ["ms", null, ""],
  ["mu", 5, "05000000"],
  ["v", variant("u", 5), "050000000075"],
  ["v", variant("t", 1n), "01000000000000000074"],
  ["a{sv}", [["k", variant("s", "v")]], "6b000000000000007600007302" + "0d"],
  ["()", [], "00"],
];

describe("spec vectors", () => {
  for (const [type, value, bytes] of vectors) {
    it(`${type} ${bytes || "(empty)"}`, () => {
      expect(hex(encode(type, value))).toBe(bytes);
      expect(decode(type, unhex(bytes))).toEqual(value);
    });
  }

  it("as of 300 strings uses 2-byte offsets", () => {
    const v = Array.from({ length: 300 }, () => "x");
    const b = encode("as", v);
    expect(b.length).toBe(300 * 2 + 600);
  });
});
