import { readFileSync } from "node:fs";
import { describe, expect, test } from "vitest";
import { decode, encode, GVariantError, GVariantParseError, parseText, print } from "../src/index.js";
import { hex } from "./support/glib.js";

interface Vector {
  text: string;
  type: string | null;
  ok?: { type: string; hex: string; p1: string; p0: string };
  error?: string;
}

// Produced by GLib 2.74 (test/support/gen_text_vectors.py): for each text,
// what g_variant_parse() made of it and how g_variant_print() prints that.
const vectors = JSON.parse(readFileSync(new URL("./fixtures/glib-text-vectors.json", import.meta.url), "utf8")) as Vector[];

function fromHex(h: string): Uint8Array {
  return Uint8Array.from(Buffer.from(h, "hex"));
}

describe("parseText matches g_variant_parse", () => {
  for (const v of vectors) {
    test(`${JSON.stringify(v.text)}${v.type ? ` as ${v.type}` : ""}`, () => {
      if (v.ok) {
        const r = parseText(v.text, v.type ?? undefined);
        expect(r.type).toBe(v.ok.type);
        expect(hex(encode(r.type, r.value))).toBe(v.ok.hex);
      } else {
        let err: unknown;
        try {
          parseText(v.text, v.type ?? undefined);
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(GVariantParseError);
        expect((err as Error).message).toBe(v.error);
      }
    });
  }
});

describe("print matches g_variant_print", () => {
  for (const v of vectors) {
    if (!v.ok) continue;
    const ok = v.ok;
    test(`${ok.p1} (${ok.type})`, () => {
      const value = decode(ok.type, fromHex(ok.hex));
      expect(print(ok.type, value)).toBe(ok.p1);
      expect(print(ok.type, value, false)).toBe(ok.p0);
    });
  }
});

describe("print", () => {
  test.each([
    ["u", 5, "uint32 5"],
    ["y", 1, "byte 0x01"],
    ["x", -3n, "int64 -3"],
    ["t", 5n, "uint64 5"],
    ["i", 7, "7"],
    ["b", true, "true"],
    ["s", "it's", `"it's"`],
    ["as", ["a", "b"], "['a', 'b']"],
    ["au", [1, 2], "[uint32 1, 2]"],
    ["as", [], "@as []"],
    ["ay", Uint8Array.from([0x61, 0x62, 0]), "b'ab'"],
    ["ay", Uint8Array.from([1, 2]), "[byte 0x01, 0x02]"],
    ["ay", [1, 2], "[byte 0x01, 0x02]"],
    ["ms", null, "@ms nothing"],
    ["mmi", { just: null }, "@mmi just nothing"],
    ["mmi", { just: 4 }, "@mmi 4"],
    ["(s)", ["a"], "('a',)"],
    ["a{sv}", [["k", { type: "s", value: "v" }]], "{'k': <'v'>}"],
    ["a{sv}", [], "@a{sv} {}"],
    ["{sv}", ["k", { type: "u", value: 1 }], "{'k', <uint32 1>}"],
    ["d", 0.1, "0.10000000000000001"],
    ["d", 1, "1.0"],
    ["d", -0, "-0.0"],
    ["d", 1e300, "1.0000000000000001e+300"],
    ["d", NaN, "nan"],
    ["d", -Infinity, "-inf"],
    // %.17g rounds an exact tie to even (the value is 2^50 + 0.25).
    ["d", 1125899906842624.25, "1125899906842624.2"],
    ["d", 1125899906842624.75, "1125899906842624.8"],
  ] as const)("%s → %s", (type, value, expected) => {
    expect(print(type, value as never)).toBe(expected);
  });

  test("unannotated output drops keywords", () => {
    expect(print("(uyo)", [5, 1, "/a"], false)).toBe("(5, 0x01, '/a')");
    expect(print("as", [], false)).toBe("[]");
  });

  test("wrong value shapes are GVariantErrors", () => {
    expect(() => print("s", 5)).toThrow(GVariantError);
    expect(() => print("(ii)", [1])).toThrow(GVariantError);
    expect(() => print("v", "x")).toThrow(GVariantError);
  });
});

describe("parseText", () => {
  test("inference and explicit types", () => {
    expect(parseText("5")).toEqual({ type: "i", value: 5 });
    expect(parseText("uint64 5")).toEqual({ type: "t", value: 5n });
    expect(parseText("3.5")).toEqual({ type: "d", value: 3.5 });
    expect(parseText("'a'")).toEqual({ type: "s", value: "a" });
    expect(parseText("[1, 2]", "ay")).toEqual({ type: "ay", value: Uint8Array.from([1, 2]) });
    expect(parseText("b'hi'")).toEqual({ type: "ay", value: Uint8Array.from([0x68, 0x69, 0]) });
    expect(parseText("just 5")).toEqual({ type: "mi", value: 5 });
    expect(parseText("nothing", "mmi")).toEqual({ type: "mmi", value: null });
    expect(parseText("just nothing", "mmi")).toEqual({ type: "mmi", value: { just: null } });
    expect(parseText("5", "mmi")).toEqual({ type: "mmi", value: { just: 5 } });
    expect(parseText("<'x'>")).toEqual({ type: "v", value: { type: "s", value: "x" } });
    expect(parseText("{'a': <1>}")).toEqual({ type: "a{sv}", value: [["a", { type: "i", value: 1 }]] });
    expect(parseText("('a', 1)")).toEqual({ type: "(si)", value: ["a", 1] });
    expect(parseText("objectpath '/a'")).toEqual({ type: "o", value: "/a" });
  });

  // GLib 2.74 (python3-gi) gives aa{imi} for each: an empty dict between a dict
  // of plain values and one whose first value is `nothing` must keep the maybe.
  test("array items whose patterns meet M against * keep the maybe", () => {
    for (const text of ["[{1: 2}, {}, {3: nothing, 4: 5}]", "[{1: 2, 3: nothing}, {}, {4: nothing, 5: 6}]", "[{1: 2}, {}, {4: 2}, {3: nothing, 4: 5}]"]) {
      expect(parseText(text).type, text).toBe("aa{imi}");
    }
  });

  test("errors carry string-index ranges and GLib byte offsets in the message", () => {
    try {
      parseText("['é', 1]");
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(GVariantParseError);
      const err = e as GVariantParseError;
      expect(err.reason).toBe("unable to find a common type");
      expect(err.range).toEqual({ start: 1, end: 4 });
      expect(err.other).toEqual({ start: 6, end: 7 });
      expect(err.message).toBe("1-5,7-8:unable to find a common type");
    }
  });

  test("a NUL ends the input, as for a C string", () => {
    expect(parseText("5\0garbage")).toEqual({ type: "i", value: 5 });
  });

  test("hostile nesting is a parse error, not a stack overflow", () => {
    expect(() => parseText("[".repeat(100000))).toThrow(GVariantParseError);
    expect(() => parseText("<".repeat(100000))).toThrow(GVariantParseError);
  });
});
