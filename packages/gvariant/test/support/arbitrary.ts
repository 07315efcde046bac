// fast-check generators for GVariant type strings and values of those types.
import fc from "fast-check";
import { parseType, type TypeNode, type Value } from "../../src/index.js";

const BASIC = ["b", "y", "n", "q", "i", "u", "h", "x", "t", "d", "s", "o", "g"] as const;

/** Random complete type strings nesting at most `depth` containers. */
export function typeArb(depth = 3, allowMaybe = true): fc.Arbitrary<string> {
  const leaf = fc.constantFrom<string>(...BASIC, "v");
  if (depth <= 0) return leaf;
  const inner = typeArb(depth - 1, allowMaybe);
  const containers: fc.Arbitrary<string>[] = [
    inner.map((t) => `a${t}`),
    fc.array(inner, { maxLength: 4 }).map((ts) => `(${ts.join("")})`),
    fc.tuple(fc.constantFrom(...BASIC), inner).map(([k, v]) => `a{${k}${v}}`),
    fc.tuple(fc.constantFrom(...BASIC), inner).map(([k, v]) => `{${k}${v}}`),
  ];
  if (allowMaybe) containers.push(inner.map((t) => `m${t}`));
  return fc.oneof({ weight: 2, arbitrary: leaf }, ...containers.map((arbitrary) => ({ weight: 1, arbitrary })));
}

const segment = fc.stringMatching(/^[A-Za-z0-9_]{1,6}$/);
const objectPath = fc.array(segment, { maxLength: 3 }).map((segs) => `/${segs.join("/")}`);
const signature = fc.array(typeArb(2, false), { maxLength: 3 }).map((ts) => ts.join(""));
const text = fc.string({ unit: "binary", maxLength: 12 }).filter((s) => !s.includes("\0"));
// Byte arrays that GLib prints as bytestrings (one NUL, at the end) and ones it does not.
const bytes = fc.oneof(
  fc.uint8Array({ maxLength: 10 }),
  fc.uint8Array({ min: 1, maxLength: 10 }).map((b) => Uint8Array.from([...b, 0])),
);

/** Random values of `type`; `variantDepth` bounds how many variants may nest. */
export function valueArb(type: string, variantDepth = 2): fc.Arbitrary<Value> {
  return arb(parseType(type), variantDepth);
}

function arb(node: TypeNode, variantDepth: number): fc.Arbitrary<Value> {
  switch (node.kind) {
    case "basic":
      switch (node.code) {
        case "b":
          return fc.boolean();
        case "y":
          return fc.integer({ min: 0, max: 0xff });
        case "n":
          return fc.integer({ min: -0x8000, max: 0x7fff });
        case "q":
          return fc.integer({ min: 0, max: 0xffff });
        case "i":
        case "h":
          return fc.integer({ min: -0x80000000, max: 0x7fffffff });
        case "u":
          return fc.integer({ min: 0, max: 0xffffffff });
        case "x":
          return fc.bigInt(-(2n ** 63n), 2n ** 63n - 1n);
        case "t":
          return fc.bigInt(0n, 2n ** 64n - 1n);
        case "d":
          return fc.double();
      }
      break;
    case "string":
      return node.code === "s" ? text : node.code === "o" ? objectPath : signature;
    case "variant": {
      const inner = variantDepth > 0 ? typeArb(2) : fc.constantFrom<string>(...BASIC);
      return inner.chain((t) => arb(parseType(t), variantDepth - 1).map((value) => ({ type: t, value })));
    }
    case "maybe": {
      const el = arb(node.element, variantDepth);
      const just = node.element.kind === "maybe" ? el.map((v) => ({ just: v })) : el;
      return fc.option(just, { nil: null, freq: 3 });
    }
    case "array":
      if (node.element.type === "y") return bytes;
      return fc.array(arb(node.element, variantDepth), { maxLength: 4 });
    case "tuple":
      return fc.tuple(...node.members.map((m) => arb(m, variantDepth)));
  }
  throw new Error("unreachable: basic type without a generator");
}

/** A random (type, value) pair. */
export const typedValueArb: fc.Arbitrary<{ type: string; value: Value }> = typeArb(3).chain((type) =>
  valueArb(type).map((value) => ({ type, value })),
);
