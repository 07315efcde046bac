import fc from "fast-check";
import { expect, test } from "vitest";
import { decode, encode, GVariantDecodeError, normalForm, readUntrusted } from "../src/index.js";
import { typeArb, valueArb } from "./support/arbitrary.js";
import { describeGlib, hex, oracle } from "./support/glib.js";

const unhex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, "hex"));

// The types ostree reads from untrusted sources, plus small ones that exercise each framing rule.
const TYPES = ["a{sv}", "(a{sv}aya(say)sstayay)", "a(ayay)", "s", "v", "as", "ay", "(uu)", "o", "g", "mu", "ms", "(sus)", "a(ts)", "(yqut)", "mv"];

// Pinned against GLib 2.74 (python3-gi): g_variant_get_normal_form() of the input.
const VECTORS: [type: string, input: string, normal: string][] = [
  // test-commit-sign's corrupted .commitmeta: "borkborkbork\n" read as a{sv}
  // gives three ('', <()>) entries.
  ["a{sv}", Buffer.from("borkborkbork\n").toString("hex"), "0000000000000000000028290100000000000000000000000000282901000000000000000000000000002829010d1d2d"],
  // a fixed-size value of the wrong size reads as zeros
  ["(uu)", "0102", "0000000000000000"],
  // invalid UTF-8 and a missing NUL read as ""
  ["s", "ff00", "00"],
  ["s", "61", "00"],
  // an invalid object path reads as "/"
  ["o", "2f2f00", "2f00"],
  // variant with an unknown type string reads as ()
  ["v", "00007a", "00002829"],
  // out-of-order array offsets blank every element from that point on:
  // element 2 (bytes 1..3, "b\0") would be valid but reads as ""
  ["as", "616200030103", "6162000000030405"],
  // a string with a NUL inside reads as "", the next element is kept
  ["as", "6100620063000406", "0063000103"],
  // a variable-size tuple whose members can all be empty is normal as zero bytes: kept as it is
  ["(asas)", "", ""],
];

test("readUntrusted never throws and normalForm output is strict normal form", () => {
  fc.assert(
    fc.property(fc.constantFrom(...TYPES), fc.uint8Array({ maxLength: 64 }), (type, bytes) => {
      readUntrusted(type, bytes);
      const nf = normalForm(type, bytes);
      // (asas)-style zero-byte tuples are the one GLib-normal form that strict decode refuses.
      if (type !== "(asas)") expect(() => decode(type, nf)).not.toThrow();
    }),
    { numRuns: 2000, seed: 8 },
  );
});

test("the default decode stays strict; mode glib-lenient reads the same bytes", () => {
  const bork = new TextEncoder().encode("borkborkbork\n");
  expect(() => decode("a{sv}", bork)).toThrow(GVariantDecodeError);
  expect(decode("a{sv}", bork, { mode: "glib-lenient" })).toEqual([
    ["", { type: "()", value: [] }],
    ["", { type: "()", value: [] }],
    ["", { type: "()", value: [] }],
  ]);
});

test("normal input round-trips unchanged", () => {
  fc.assert(
    fc.property(
      typeArb(3).chain((type) => valueArb(type).map((value) => ({ type, value }))),
      ({ type, value }) => {
        const bytes = encode(type, value);
        expect(hex(normalForm(type, bytes))).toBe(hex(bytes));
        expect(encode(type, readUntrusted(type, bytes))).toEqual(bytes);
      },
    ),
    { numRuns: 300, seed: 9 },
  );
});

test.each(VECTORS)("pinned %s %s", (type, input, normal) => {
  expect(hex(normalForm(type, unhex(input)))).toBe(normal);
});

describeGlib("normal form of untrusted bytes matches g_variant_get_normal_form", () => {
  function mutated(type: string): fc.Arbitrary<{ type: string; bytes: Uint8Array }> {
    return valueArb(type).chain((value) => {
      const bytes = encode(type, value);
      return fc
        .array(fc.oneof(fc.tuple(fc.constant("set"), fc.nat(), fc.integer({ min: 0, max: 255 })), fc.tuple(fc.constant("cut"), fc.nat(), fc.nat())), { minLength: 1, maxLength: 3 })
        .map((edits) => {
          let out = Uint8Array.from(bytes);
          for (const [op, at, v] of edits) {
            if (out.length === 0) break;
            if (op === "set") out[at % out.length] = v;
            else out = out.subarray(0, at % (out.length + 1));
          }
          return { type, bytes: out };
        });
    });
  }

  test("pinned vectors", () => {
    const results = oracle(VECTORS.map(([type, input]) => ({ op: "normalform", type, hex: input })));
    VECTORS.forEach(([, , normal], i) => expect(results[i]!.hex).toBe(normal));
  });

  test("random and mutated bytes", () => {
    const random = fc.sample(fc.tuple(fc.constantFrom(...TYPES), fc.uint8Array({ maxLength: 48 })), { numRuns: 1500, seed: 20261127 }).map(([type, bytes]) => ({ type, bytes }));
    const mutations = TYPES.flatMap((type) => fc.sample(mutated(type), { numRuns: 150, seed: 20261128 }));
    const anyType = fc.sample(
      typeArb(3).chain((type) => fc.tuple(fc.constant(type), fc.uint8Array({ maxLength: 32 }))),
      { numRuns: 500, seed: 20261129 },
    ).map(([type, bytes]) => ({ type, bytes }));
    const all = [...random, ...mutations, ...anyType];
    const results = oracle(all.map(({ type, bytes }) => ({ op: "normalform", type, hex: hex(bytes) })));
    all.forEach(({ type, bytes }, i) => {
      expect(hex(normalForm(type, bytes)), `${type} ${hex(bytes)}`).toBe(results[i]!.hex);
    });
  });
});
