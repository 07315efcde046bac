import { describe, expect, test } from "vitest";
import { decode, encode, GVariantDecodeError, GVariantNormalFormError, type Value } from "../src/index.js";

const b = (...xs: number[]) => Uint8Array.from(xs);
const ascii = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const cat = (...parts: Uint8Array[]) => Uint8Array.from(parts.flatMap((p) => [...p]));

function decodeError(type: string, bytes: Uint8Array, strict = true): unknown {
  try {
    decode(type, bytes, { strict });
  } catch (e) {
    return e;
  }
  return undefined;
}

/** n variants nested around int32 1, serialized. */
function nestedVariants(n: number): Uint8Array {
  const parts = [b(1, 0, 0, 0, 0), ascii("i")];
  for (let i = 1; i < n; i++) parts.push(b(0), ascii("v"));
  return cat(...parts);
}

describe("hostile input gives GVariantDecodeError", () => {
  test.each<[string, string, Uint8Array]>([
    ["array offset past the end", "as", b(0x61, 0x00, 0x10)],
    ["array offset table start past the end", "as", b(0x61, 0x00, 0x02, 0xff)],
    ["element end before its start", "as", b(0x61, 0x00, 0x62, 0x00, 0x04, 0x02)],
    ["tuple offset past the end", "(ss)", b(0x61, 0x00, 0x62, 0x00, 0x09)],
    ["tuple offsets run past the start", "(sss)", b(0x05)],
    ["offset width mismatch (1-byte offsets in a 256+ byte array)", "as", cat(new Uint8Array(300).fill(0x61), b(0x00, 0x2d))],
    ["string without NUL", "s", ascii("abc")],
    ["empty string bytes", "s", b()],
    ["string with inner NUL", "s", b(0x61, 0x00, 0x62, 0x00)],
    ["invalid UTF-8", "s", b(0xff, 0xfe, 0x00)],
    ["overlong UTF-8", "s", b(0xc0, 0xaf, 0x00)],
    ["UTF-8 surrogate", "s", b(0xed, 0xa0, 0x80, 0x00)],
    ["invalid object path", "o", ascii("a/b\0")],
    ["object path with trailing slash", "o", ascii("/a/\0")],
    ["invalid signature", "g", ascii("mi\0")],
    ["variant without separator", "v", b(1, 2, 3)],
    ["variant with empty type", "v", b(1, 0)],
    ["variant with bad type char", "v", b(1, 0, 0x7a)],
    ["variant with two types", "v", cat(b(1, 0, 0, 0, 0), ascii("ii"))],
    ["variant with non-ASCII type", "v", b(1, 0, 0xc3, 0xa9)],
    ["variant with a huge unterminated type", "v", cat(b(0), new Uint8Array(200000).fill(0x28))],
    ["variant whose child does not fit its type", "v", cat(b(1, 0, 0, 0), ascii("t"))],
    ["fixed value of the wrong size", "u", b(1, 2, 3)],
    ["fixed array with a partial element", "au", b(1, 0, 0, 0, 2)],
    ["maybe of fixed type with the wrong size", "mu", b(1, 0)],
    ["Just of variable type without its NUL", "ms", ascii("a\0b")],
    ["unit tuple of two bytes", "()", b(0, 0)],
    ["128 nested variants", "v", nestedVariants(128)],
    ["deep variant nesting", "v", nestedVariants(5000)],
    ["variant holding a too-deep array type", "v", cat(b(0, 0), ascii("v"), b(0), ascii("a".repeat(127) + "i"))],
  ])("%s", (_name, type, bytes) => {
    for (const strict of [true, false]) {
      const err = decodeError(type, bytes, strict);
      expect(err).toBeInstanceOf(GVariantDecodeError);
      expect(err).not.toBeInstanceOf(GVariantNormalFormError);
    }
  });

  test("127 nested variants are fine (GLib's limit is 128 levels)", () => {
    let v: Value = 1;
    let type = "i";
    for (let i = 0; i < 127; i++) {
      v = { type, value: v };
      type = "v";
    }
    expect(decode("v", nestedVariants(127))).toEqual(v);
    expect(encode("v", v)).toEqual(nestedVariants(127));
  });

  test("an array claiming a huge element count is bounded by its size", () => {
    // Last offset 0: the whole 70000-byte container is an offset table of empty elements.
    const bytes = new Uint8Array(70000);
    const start = performance.now();
    expect(decodeError("aay", bytes)).toBeInstanceOf(GVariantNormalFormError);
    expect((decode("aay", bytes, { strict: false }) as Value[]).length).toBe(17500);
    expect(performance.now() - start).toBeLessThan(2000);
  });

  test("a leading U+FEFF is string content", () => {
    expect(decode("s", b(0xef, 0xbb, 0xbf, 0x61, 0x00))).toBe("\ufeffa");
  });
});

describe("non-normal forms", () => {
  test.each<[string, string, Uint8Array, Value]>([
    ["nonzero padding", "(yu)", b(1, 9, 0, 0, 5, 0, 0, 0), [1, 5]],
    ["nonzero tuple tail padding", "(uy)", b(5, 0, 0, 0, 1, 7, 0, 0), [5, 1]],
    ["nonzero padding before a variant child", "(yv)", b(1, 0, 0, 0, 0, 0, 0, 3, 5, 0, 0, 0, 0, 0x75), [1, { type: "u", value: 5 }]],
    [
      "wider-than-needed offsets",
      "as",
      cat(new Uint8Array(253).fill(0x61), b(0x00, 0xfe, 0x00)),
      ["a".repeat(253)],
    ],
    ["boolean 2", "b", b(2), true],
    ["boolean 0xff in a tuple", "(bb)", b(0, 0xff), [false, true]],
    ["unused bytes before a tuple's offsets", "(su)", b(0x61, 0x00, 0, 0, 5, 0, 0, 0, 0, 0x02), ["a", 5]],
    ["unit tuple byte not zero", "()", b(1), []],
  ])("%s", (_name, type, bytes, value) => {
    expect(decodeError(type, bytes)).toBeInstanceOf(GVariantNormalFormError);
    expect(decode(type, bytes, { strict: false })).toEqual(value);
  });
});
