import { GVariantEncodeError } from "./errors.js";
import { parseType, type TypeNode } from "./types.js";
import { unicharIsPrint } from "./unichar-print.js";
import type { Just, Value } from "./values.js";
import { isVariant } from "./values.js";

const ANNOTATION: Partial<Record<string, string>> = {
  y: "byte ",
  n: "int16 ",
  q: "uint16 ",
  u: "uint32 ",
  h: "handle ",
  x: "int64 ",
  t: "uint64 ",
  o: "objectpath ",
  g: "signature ",
};

const STRING_ESCAPES: Partial<Record<number, string>> = {
  0x07: "a",
  0x08: "b",
  0x0c: "f",
  0x0a: "n",
  0x0d: "r",
  0x09: "t",
  0x0b: "v",
};

// g_strescape() escapes (used for bytestrings); other bytes outside 0x20..0x7e become octal.
const BYTE_ESCAPES: Partial<Record<number, string>> = {
  0x08: "\\b",
  0x0c: "\\f",
  0x0a: "\\n",
  0x0d: "\\r",
  0x09: "\\t",
  0x0b: "\\v",
  0x5c: "\\\\",
  0x22: '\\"',
};

function wrong(node: TypeNode, value: unknown, why: string): never {
  const shown = typeof value === "bigint" ? `${value}n` : String(value);
  throw new GVariantEncodeError(`cannot print ${shown.slice(0, 80)} as '${node.type}': ${why}`);
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, "0");
}

/** A string literal as g_variant_print() writes it. */
function quoteString(str: string): string {
  const quote = str.includes("'") ? '"' : "'";
  let out = quote;
  for (const ch of str) {
    const c = ch.codePointAt(0)!;
    if (ch === quote || ch === "\\") out += "\\";
    if (unicharIsPrint(c)) {
      out += ch;
    } else if (c < 0x10000) {
      out += `\\${STRING_ESCAPES[c] ?? `u${c.toString(16).padStart(4, "0")}`}`;
    } else {
      out += `\\U${c.toString(16).padStart(8, "0")}`;
    }
  }
  return out + quote;
}

/** `b'...'` when GLib would print these `ay` bytes as a bytestring (exactly one NUL, at the end), else undefined. */
function bytestring(bytes: ArrayLike<number>): string | undefined {
  const size = bytes.length;
  let i = 0;
  while (i < size && bytes[i] !== 0) i++;
  if (size === 0 || i !== size - 1) return undefined;
  let escaped = "";
  let hasApostrophe = false;
  for (let j = 0; j < size - 1; j++) {
    const b = bytes[j]!;
    if (b === 0x27) hasApostrophe = true;
    const e = BYTE_ESCAPES[b];
    if (e !== undefined) escaped += e;
    else if (b < 0x20 || b >= 0x7f) escaped += `\\${b.toString(8).padStart(3, "0")}`;
    else escaped += String.fromCharCode(b);
  }
  return hasApostrophe ? `b"${escaped}"` : `b'${escaped}'`;
}

/**
 * A double as GLib prints it: printf "%.17g" (exact value, round-half-even),
 * then ".0" appended when the result has no '.', 'e' or nan/inf marker.
 */
export function formatDouble(d: number): string {
  const bits = new DataView(new ArrayBuffer(8));
  bits.setFloat64(0, d);
  const negative = (bits.getUint8(0) & 0x80) !== 0;
  const sign = negative ? "-" : "";
  if (Number.isNaN(d)) return `${sign}nan`;
  if (!Number.isFinite(d)) return `${sign}inf`;
  if (d === 0) return `${sign}0.0`;
  const s = sign + printfG17(Math.abs(d), bits);
  return /[.en]/.test(s) ? s : `${s}.0`;
}

function printfG17(d: number, bits: DataView): string {
  const P = 17;
  bits.setFloat64(0, d);
  const hi = bits.getUint32(0);
  const lo = bits.getUint32(4);
  const biased = (hi >>> 20) & 0x7ff;
  let mantissa = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  let exp2: number;
  if (biased === 0) {
    exp2 = -1074;
  } else {
    mantissa |= 1n << 52n;
    exp2 = biased - 1075;
  }
  // Exact decimal expansion: value = 0.<digits> * 10^point.
  let digits: string;
  let point: number;
  if (exp2 >= 0) {
    digits = (mantissa << BigInt(exp2)).toString();
    point = digits.length;
  } else {
    digits = (mantissa * 5n ** BigInt(-exp2)).toString();
    point = digits.length + exp2;
  }
  if (digits.length > P) {
    const kept = BigInt(digits.slice(0, P));
    const rest = digits.slice(P);
    let up = rest[0]! > "5" || (rest[0] === "5" && /[1-9]/.test(rest.slice(1)));
    if (rest[0] === "5" && !up && !/[1-9]/.test(rest.slice(1))) up = (kept & 1n) === 1n;
    let r = (up ? kept + 1n : kept).toString();
    if (r.length > P) {
      r = r.slice(0, P);
      point++;
    }
    digits = r;
  }
  digits = digits.replace(/0+$/, "");
  const x = point - 1;
  if (x < -4 || x >= P) {
    const mant = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const e = Math.abs(x).toString().padStart(2, "0");
    return `${mant}e${x < 0 ? "-" : "+"}${e}`;
  }
  if (point <= 0) return `0.${"0".repeat(-point)}${digits}`;
  if (digits.length <= point) return digits + "0".repeat(point - digits.length);
  return `${digits.slice(0, point)}.${digits.slice(point)}`;
}

function fmt(node: TypeNode, v: Value, annotate: boolean): string {
  switch (node.kind) {
    case "basic": {
      const prefix = annotate ? (ANNOTATION[node.code] ?? "") : "";
      switch (node.code) {
        case "b":
          if (typeof v !== "boolean") wrong(node, v, "expected a boolean");
          return v ? "true" : "false";
        case "y":
          if (typeof v !== "number") wrong(node, v, "expected a number");
          return `${prefix}0x${hex2(v)}`;
        case "d":
          if (typeof v !== "number") wrong(node, v, "expected a number");
          return formatDouble(v);
        case "x":
        case "t":
          if (typeof v !== "bigint" && typeof v !== "number") wrong(node, v, "expected a bigint");
          return `${prefix}${v}`;
        default:
          if (typeof v !== "number") wrong(node, v, "expected a number");
          return `${prefix}${v}`;
      }
    }
    case "string":
      if (typeof v !== "string") wrong(node, v, "expected a string");
      return (annotate ? (ANNOTATION[node.code] ?? "") : "") + quoteString(v);
    case "variant": {
      if (!isVariant(v)) wrong(node, v, "expected { type, value }");
      return `<${fmt(parseType(v.type), v.value, true)}>`;
    }
    case "maybe": {
      const prefix = annotate ? `@${node.type} ` : "";
      if (v === null) return `${prefix}nothing`;
      let inner: Value = v;
      if (node.element.kind === "maybe") {
        if (typeof v !== "object" || !("just" in v)) wrong(node, v, "nested maybe needs { just }");
        inner = (v as Just).just;
      }
      // Just is implicit unless the contents end in "nothing" (then Just(Nothing) must stay distinct).
      const child = fmt(node.element, inner, false);
      return `${prefix}${child.endsWith("nothing") ? "just " : ""}${child}`;
    }
    case "array": {
      const el = node.element;
      if (el.kind === "basic" && el.code === "y" && (v instanceof Uint8Array || Array.isArray(v))) {
        const bs = bytestring(v as ArrayLike<number>);
        if (bs !== undefined) return bs;
      }
      if (!(v instanceof Uint8Array) && !Array.isArray(v)) wrong(node, v, "expected an array");
      const items = v as ArrayLike<Value>;
      const isDict = el.kind === "tuple" && el.dictEntry;
      if (items.length === 0) return `${annotate ? `@${node.type} ` : ""}${isDict ? "{}" : "[]"}`;
      const parts: string[] = [];
      let first = annotate;
      for (let i = 0; i < items.length; i++) {
        const item = items[i]!;
        if (isDict) {
          const [k, val] = dictPair(el, item);
          parts.push(`${fmt(el.members[0]!, k, first)}: ${fmt(el.members[1]!, val, first)}`);
        } else {
          parts.push(fmt(el, item, first));
        }
        first = false;
      }
      return isDict ? `{${parts.join(", ")}}` : `[${parts.join(", ")}]`;
    }
    case "tuple": {
      if (node.dictEntry) {
        const [k, val] = dictPair(node, v);
        return `{${fmt(node.members[0]!, k, annotate)}, ${fmt(node.members[1]!, val, annotate)}}`;
      }
      if (!Array.isArray(v) || v.length !== node.members.length) wrong(node, v, `expected ${node.members.length} members`);
      const parts = node.members.map((m, i) => fmt(m, (v as readonly Value[])[i]!, annotate));
      return `(${parts.join(", ")}${parts.length === 1 ? "," : ""})`;
    }
  }
}

function dictPair(node: TypeNode, v: Value): readonly [Value, Value] {
  if (!Array.isArray(v) || v.length !== 2) wrong(node, v, "dict entry needs [key, value]");
  return v as unknown as readonly [Value, Value];
}

/**
 * Text form of a value, exactly as GLib 2.74's g_variant_print(value, annotate)
 * writes it. With `annotate`, types that the parser could not infer get a
 * keyword or `@type` prefix.
 */
export function print(type: string, value: Value, annotate = true): string {
  return fmt(parseType(type), value, annotate);
}
