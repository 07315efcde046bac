import { GVariantTypeError } from "./errors.js";

/** A parsed GVariant type with the layout facts the codec needs. */
export type TypeNode =
  | { kind: "basic"; code: BasicCode; type: string; align: number; fixedSize: number }
  | { kind: "string"; code: "s" | "o" | "g"; type: string; align: 1; fixedSize: 0 }
  | { kind: "variant"; type: "v"; align: 8; fixedSize: 0 }
  | { kind: "array"; element: TypeNode; type: string; align: number; fixedSize: 0 }
  | { kind: "maybe"; element: TypeNode; type: string; align: number; fixedSize: 0 }
  | { kind: "tuple"; members: TypeNode[]; dictEntry: boolean; type: string; align: number; fixedSize: number };

export type BasicCode = "b" | "y" | "n" | "q" | "i" | "u" | "h" | "x" | "t" | "d";

const BASIC_SIZE: Record<BasicCode, number> = { b: 1, y: 1, n: 2, q: 2, i: 4, u: 4, h: 4, x: 8, t: 8, d: 8 };
const MAX_DEPTH = 128;
const cache = new Map<string, TypeNode>();

function isBasicKey(c: string | undefined): boolean {
  return c !== undefined && "bynqiuhxtdsog".includes(c);
}

function parseAt(sig: string, pos: number, depth: number): [TypeNode, number] {
  if (depth > MAX_DEPTH) throw new GVariantTypeError(`type string nests deeper than ${MAX_DEPTH}: ${sig}`);
  const c = sig[pos];
  if (c === undefined) throw new GVariantTypeError(`truncated type string: ${JSON.stringify(sig)}`);
  if (c in BASIC_SIZE) {
    const size = BASIC_SIZE[c as BasicCode];
    return [{ kind: "basic", code: c as BasicCode, type: c, align: size, fixedSize: size }, pos + 1];
  }
  if (c === "s" || c === "o" || c === "g") return [{ kind: "string", code: c, type: c, align: 1, fixedSize: 0 }, pos + 1];
  if (c === "v") return [{ kind: "variant", type: "v", align: 8, fixedSize: 0 }, pos + 1];
  if (c === "a" || c === "m") {
    const [element, end] = parseAt(sig, pos + 1, depth + 1);
    const type = sig.slice(pos, end);
    return [{ kind: c === "a" ? "array" : "maybe", element, type, align: element.align, fixedSize: 0 }, end];
  }
  if (c === "(" || c === "{") {
    const close = c === "(" ? ")" : "}";
    const members: TypeNode[] = [];
    let p = pos + 1;
    while (sig[p] !== close) {
      if (sig[p] === undefined) throw new GVariantTypeError(`unterminated ${c} in type string ${JSON.stringify(sig)}`);
      const [m, end] = parseAt(sig, p, depth + 1);
      members.push(m);
      p = end;
    }
    if (c === "{" && (members.length !== 2 || !isBasicKey(members[0]!.type))) {
      throw new GVariantTypeError(`dict entry needs a basic key and one value: ${sig.slice(pos, p + 1)}`);
    }
    const type = sig.slice(pos, p + 1);
    return [tupleNode(members, c === "{", type), p + 1];
  }
  throw new GVariantTypeError(`invalid character ${JSON.stringify(c)} in type string ${JSON.stringify(sig)}`);
}

function tupleNode(members: TypeNode[], dictEntry: boolean, type: string): TypeNode {
  if (members.length === 0) return { kind: "tuple", members, dictEntry, type, align: 1, fixedSize: 1 };
  let align = 1;
  let offset = 0;
  let fixed = true;
  for (const m of members) {
    align = Math.max(align, m.align);
    if (m.fixedSize === 0) fixed = false;
    else offset = alignUp(offset, m.align) + m.fixedSize;
  }
  return { kind: "tuple", members, dictEntry, type, align, fixedSize: fixed ? alignUp(offset, align) : 0 };
}

export function alignUp(n: number, align: number): number {
  return (n + align - 1) & ~(align - 1);
}

/** Parse one complete type string (cached). Throws GVariantTypeError. */
export function parseType(type: string): TypeNode {
  let node = cache.get(type);
  if (node) return node;
  const [parsed, end] = parseAt(type, 0, 0);
  if (end !== type.length) throw new GVariantTypeError(`not a single complete type: ${JSON.stringify(type)}`);
  node = parsed;
  if (cache.size < 4096) cache.set(type, node);
  return node;
}

/** True when `type` is one complete, valid GVariant type string. */
export function isValidType(type: string): boolean {
  try {
    parseType(type);
    return true;
  } catch {
    return false;
  }
}

/** Width in bytes of framing offsets in a container of `size` serialized bytes. */
export function offsetWidth(size: number): number {
  if (size === 0) return 0;
  if (size <= 0xff) return 1;
  if (size <= 0xffff) return 2;
  if (size <= 0xffffffff) return 4;
  return 8;
}

const depthCache = new WeakMap<TypeNode, number>();

/** Nesting depth of a type as GLib counts it: 1 for leaves and `v`, +1 per array, maybe or tuple level. */
export function typeDepth(node: TypeNode): number {
  if (node.kind === "basic" || node.kind === "string" || node.kind === "variant") return 1;
  let d = depthCache.get(node);
  if (d !== undefined) return d;
  if (node.kind === "tuple") {
    d = 1;
    for (const m of node.members) d = Math.max(d, 1 + typeDepth(m));
  } else {
    d = 1 + typeDepth(node.element);
  }
  depthCache.set(node, d);
  return d;
}

/** D-Bus object path rule, as g_variant_is_object_path(): "/" or "/seg(/seg)*" with segments of [A-Za-z0-9_]. */
export function isObjectPath(s: string): boolean {
  return /^\/(?:[A-Za-z0-9_]+(?:\/[A-Za-z0-9_]+)*)?$/.test(s);
}

/** D-Bus signature rule, as g_variant_is_signature(): zero or more complete definite types without maybes. */
export function isSignature(s: string): boolean {
  if (!/^[ybnqiuxthdvasog(){}]*$/.test(s)) return false;
  let pos = 0;
  while (pos < s.length) {
    try {
      pos = parseAt(s, pos, 0)[1];
    } catch {
      return false;
    }
  }
  return true;
}
