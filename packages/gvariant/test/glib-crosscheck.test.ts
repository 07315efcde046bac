import fc from "fast-check";
import { expect, test } from "vitest";
import { encode, GVariantParseError, isNormalForm, parseText, parseType, print, type TypeNode } from "../src/index.js";
import { typeArb, typedValueArb } from "./support/arbitrary.js";
import { describeGlib, hex, oracle, toTagged } from "./support/glib.js";

// Known divergence: g_variant_is_normal_form() also accepts zero bytes for a
// variable-size tuple whose members can all be empty (e.g. "(asas)"), though
// GLib serializes that value as one 00 byte; strict decode accepts only the
// latter. Seeded samples keep the verdict comparison deterministic, and types
// containing such a tuple are left out of it.
function canBeEmpty(node: TypeNode): boolean {
  return node.kind === "array" || node.kind === "maybe" || (node.kind === "tuple" && node.fixedSize === 0 && node.members.every(canBeEmpty));
}

function hasEmptyableTuple(node: TypeNode): boolean {
  if (node.kind === "tuple") return (node.fixedSize === 0 && node.members.every(canBeEmpty)) || node.members.some(hasEmptyableTuple);
  if (node.kind === "array" || node.kind === "maybe") return hasEmptyableTuple(node.element);
  return false;
}

describeGlib("cross-check against GLib (python3-gi)", () => {
  test("random values: bytes and printed text match GLib", () => {
    const samples = fc.sample(typedValueArb, { numRuns: 500 });
    const results = oracle(samples.map(({ type, value }) => ({ op: "build", type, value: toTagged(type, value) })));
    samples.forEach(({ type, value }, i) => {
      const r = results[i]!;
      const context = `${type} ${r.p1}`;
      expect(r.error, context).toBeUndefined();
      expect(hex(encode(type, value)), context).toBe(r.hex);
      expect(print(type, value, true), context).toBe(r.p1);
      expect(print(type, value, false), context).toBe(r.p0);
    });
  });

  test("parseText agrees with g_variant_parse on GLib's printed text", () => {
    const samples = fc.sample(typedValueArb, { numRuns: 300 });
    const built = oracle(samples.map(({ type, value }) => ({ op: "build", type, value: toTagged(type, value) })));
    const cases = samples.flatMap(({ type }, i) => [
      { text: built[i]!.p1!, type: null },
      { text: built[i]!.p0!, type: null },
      { text: built[i]!.p0!, type },
    ]);
    const parsed = oracle(cases.map((c) => ({ op: "parse", text: c.text, type: c.type })));
    cases.forEach((c, i) => {
      const r = parsed[i]!;
      const context = JSON.stringify(c);
      if (r.error !== undefined) {
        expect(() => parseText(c.text, c.type ?? undefined), context).toThrow(GVariantParseError);
        expect(() => parseText(c.text, c.type ?? undefined), context).toThrow(r.error);
      } else {
        const mine = parseText(c.text, c.type ?? undefined);
        expect(mine.type, context).toBe(r.type);
        expect(hex(encode(mine.type, mine.value)), context).toBe(r.hex);
      }
    });
  });

  test("normal-form verdicts on mutated bytes match g_variant_is_normal_form", () => {
    const cases = fc.sample(
      typedValueArb.chain(({ type, value }) => {
        const bytes = encode(type, value);
        return fc
          .array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 2 })
          .map((edits) => {
            const out = Uint8Array.from(bytes);
            for (const [at, v] of edits) if (out.length > 0) out[at % out.length] = v;
            return { type, bytes: out };
          });
      }),
      { numRuns: 500, seed: 20240601 },
    );
    const random = fc.sample(fc.tuple(typeArb(2), fc.uint8Array({ maxLength: 24 })), { numRuns: 300, seed: 20240602 }).map(([type, bytes]) => ({ type, bytes }));
    const all = [...cases, ...random];
    const verdicts = oracle(all.map(({ type, bytes }) => ({ op: "frombytes", type, hex: hex(bytes) })));
    all.forEach(({ type, bytes }, i) => {
      if (hasEmptyableTuple(parseType(type))) return;
      expect(isNormalForm(type, bytes), `${type} ${hex(bytes)}`).toBe(verdicts[i]!.normal);
    });
  });
});
