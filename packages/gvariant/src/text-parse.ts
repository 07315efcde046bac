// GVariant text format parser with GLib 2.74 g_variant_parse() semantics:
// parse to an AST, infer a type by unifying "patterns" when none is given,
// then build the value for that type. Patterns are type strings with
// placeholders: '*' any type, 'N' any number, 'S' any string type, and 'M'
// meaning "may additionally be wrapped in maybes".

import { GVariantParseError, GVariantTypeError, type TextRange } from "./errors.js";
import { isObjectPath, isSignature, parseType, type TypeNode } from "./types.js";
import type { Value } from "./values.js";

// Bounds parser recursion on hostile input; no GVariant type nests deeper than this.
const MAX_NESTING = 256;

type Ast = { ref: TextRange } & (
  | { kind: "array"; items: Ast[] }
  | { kind: "tuple"; items: Ast[] }
  | { kind: "variant"; child: Ast }
  | { kind: "dict"; keys: Ast[]; values: Ast[]; entry: boolean }
  | { kind: "string"; str: string }
  | { kind: "bytes"; bytes: Uint8Array }
  | { kind: "number"; token: string }
  | { kind: "boolean"; value: boolean }
  | { kind: "maybe"; child: Ast | null }
  | { kind: "typedecl"; type: string; child: Ast }
);

function isSpace(c: string | undefined): boolean {
  return c === " " || c === "\t" || c === "\n" || c === "\r" || c === "\v" || c === "\f";
}

function isAlpha(c: string | undefined): boolean {
  return c !== undefined && ((c >= "a" && c <= "z") || (c >= "A" && c <= "Z"));
}

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= "0" && c <= "9";
}

function isAlnum(c: string | undefined): boolean {
  return isAlpha(c) || isDigit(c);
}

function isHex(c: string | undefined): boolean {
  return c !== undefined && /^[0-9a-fA-F]$/.test(c);
}

class Tokens {
  /** Start and end of the current (peeked) token; start < 0 when none is prepared. */
  private tokStart = -1;
  private tokEnd = 0;
  /** Scan position: end of the last prepared token. */
  pos = 0;

  constructor(readonly text: string) {}

  /** Prepare the next token; false at end of input. */
  prepare(): boolean {
    if (this.tokStart >= 0) return this.tokEnd > this.tokStart;
    const t = this.text;
    let p = this.pos;
    while (p < t.length && isSpace(t[p])) p++;
    this.tokStart = p;
    if (p >= t.length) {
      this.tokEnd = p;
      this.pos = p;
      return false;
    }
    const c = t[p]!;
    let end: number;
    if (c === "-" || c === "+" || c === "." || isDigit(c)) {
      end = p;
      while (end < t.length && (isAlnum(t[end]) || t[end] === "-" || t[end] === "+" || t[end] === ".")) end++;
    } else if (c === "b" && (t[p + 1] === "'" || t[p + 1] === '"')) {
      end = quotedEnd(t, p + 1);
    } else if (c >= "a" && c <= "z") {
      end = p;
      while (end < t.length && isAlnum(t[end])) end++;
    } else if (c === "'" || c === '"') {
      end = quotedEnd(t, p);
    } else if (c === "@" || c === "%") {
      // A type ends at a space, comma, colon, '>' or ']', or an unmatched ')' or '}'.
      let brackets = 0;
      end = p + 1;
      for (; end < t.length; end++) {
        const e = t[end]!;
        if (e === "," || e === ":" || e === ">" || e === "]" || isSpace(e)) break;
        if (e === "(" || e === "{") brackets++;
        else if ((e === ")" || e === "}") && brackets-- === 0) break;
      }
    } else {
      end = p + 1;
    }
    this.tokEnd = end;
    this.pos = end;
    return true;
  }

  next(): void {
    this.tokStart = -1;
  }

  token(): string {
    return this.prepare() ? this.text.slice(this.tokStart, this.tokEnd) : "";
  }

  start(): number {
    this.prepare();
    return this.tokStart;
  }

  peek(c: string): boolean {
    return this.prepare() && this.text[this.tokStart] === c;
  }

  peek2(c1: string, c2: string): boolean {
    return this.prepare() && this.tokEnd - this.tokStart >= 2 && this.text[this.tokStart] === c1 && this.text[this.tokStart + 1] === c2;
  }

  isKeyword(): boolean {
    return this.prepare() && this.tokEnd - this.tokStart >= 2 && isAlpha(this.text[this.tokStart]) && isAlpha(this.text[this.tokStart + 1]);
  }

  isNumeric(): boolean {
    if (!this.prepare()) return false;
    const c = this.text[this.tokStart];
    return isDigit(c) || c === "-" || c === "+" || c === ".";
  }

  peekString(s: string): boolean {
    return this.prepare() && this.text.slice(this.tokStart, this.tokEnd) === s;
  }

  consume(s: string): boolean {
    if (!this.peekString(s)) return false;
    this.next();
    return true;
  }

  require(s: string, purpose: string): void {
    if (!this.consume(s)) throw this.error(false, `expected '${s}'${purpose}`);
  }

  error(wholeToken: boolean, reason: string): GVariantParseError {
    this.prepare();
    return new GVariantParseError(reason, { start: this.tokStart, end: wholeToken ? this.tokEnd : this.tokStart });
  }
}

/** End of a quoted token whose opening quote is at `q` (just past the closing quote when there is one). */
function quotedEnd(t: string, q: number): number {
  const quote = t[q];
  let end = q + 1;
  for (; end < t.length; end++) {
    if (t[end] === quote) return end + 1;
    if (t[end] === "\\" && ++end === t.length) break;
  }
  return t.length;
}

function parseValue(ts: Tokens, depth: number): Ast {
  if (depth > MAX_NESTING) throw ts.error(false, `values nest deeper than ${MAX_NESTING}`);
  const start = ts.start();
  const node = parseInner(ts, depth + 1);
  (node as { ref: TextRange }).ref = { start, end: ts.pos };
  return node;
}

const NO_REF: TextRange = { start: 0, end: 0 };

function parseInner(ts: Tokens, depth: number): Ast {
  if (ts.peek("[")) {
    ts.consume("[");
    const items: Ast[] = [];
    while (!ts.consume("]")) {
      if (items.length > 0) ts.require(",", " or ']' to follow array element");
      items.push(parseValue(ts, depth));
    }
    return { kind: "array", items, ref: NO_REF };
  }
  if (ts.peek("(")) {
    ts.consume("(");
    const items: Ast[] = [];
    while (!ts.consume(")")) {
      if (items.length > 1) ts.require(",", " or ')' to follow tuple element");
      items.push(parseValue(ts, depth));
      // The first element must be followed by a comma: "(1)" is not a tuple.
      if (items.length === 1) ts.require(",", " after first tuple element");
    }
    return { kind: "tuple", items, ref: NO_REF };
  }
  if (ts.peek("<")) {
    ts.consume("<");
    const child = parseValue(ts, depth);
    ts.require(">", " to follow variant value");
    return { kind: "variant", child, ref: NO_REF };
  }
  if (ts.peek("{")) {
    ts.consume("{");
    const keys: Ast[] = [];
    const values: Ast[] = [];
    if (ts.consume("}")) return { kind: "dict", keys, values, entry: false, ref: NO_REF };
    keys.push(parseValue(ts, depth));
    const entry = ts.consume(",");
    if (!entry) ts.require(":", " or ',' to follow dictionary entry key");
    values.push(parseValue(ts, depth));
    if (entry) {
      ts.require("}", " at end of dictionary entry");
      return { kind: "dict", keys, values, entry: true, ref: NO_REF };
    }
    while (!ts.consume("}")) {
      ts.require(",", " or '}' to follow dictionary entry");
      keys.push(parseValue(ts, depth));
      ts.require(":", " to follow dictionary entry key");
      values.push(parseValue(ts, depth));
    }
    return { kind: "dict", keys, values, entry: false, ref: NO_REF };
  }
  if (ts.consume("true")) return { kind: "boolean", value: true, ref: NO_REF };
  if (ts.consume("false")) return { kind: "boolean", value: false, ref: NO_REF };
  if (ts.isNumeric() || ts.peekString("inf") || ts.peekString("nan")) {
    const token = ts.token();
    ts.next();
    return { kind: "number", token, ref: NO_REF };
  }
  if (ts.peek("n") || ts.peek("j")) {
    if (ts.consume("just")) return { kind: "maybe", child: parseValue(ts, depth), ref: NO_REF };
    if (ts.consume("nothing")) return { kind: "maybe", child: null, ref: NO_REF };
    throw ts.error(true, "unknown keyword");
  }
  if (ts.peek("@") || ts.isKeyword()) return parseTypeDecl(ts, depth);
  if (ts.peek("'") || ts.peek('"')) return { kind: "string", str: parseString(ts), ref: NO_REF };
  if (ts.peek2("b", "'") || ts.peek2("b", '"')) return { kind: "bytes", bytes: parseBytestring(ts), ref: NO_REF };
  throw ts.error(false, "expected value");
}

const KEYWORD_TYPES = new Map<string, string>([
  ["boolean", "b"],
  ["byte", "y"],
  ["int16", "n"],
  ["uint16", "q"],
  ["int32", "i"],
  ["handle", "h"],
  ["uint32", "u"],
  ["int64", "x"],
  ["uint64", "t"],
  ["double", "d"],
  ["string", "s"],
  ["objectpath", "o"],
  ["signature", "g"],
]);

function parseTypeDecl(ts: Tokens, depth: number): Ast {
  let type: string;
  if (ts.peek("@")) {
    const sig = ts.token().slice(1);
    if (!isTypeString(sig)) throw ts.error(true, "invalid type declaration");
    if (!isDefinite(sig)) throw ts.error(true, "type declarations must be definite");
    type = parseType(sig).type;
    ts.next();
  } else {
    const t = KEYWORD_TYPES.get(ts.token());
    if (t === undefined) throw ts.error(true, "unknown keyword");
    type = t;
    ts.next();
  }
  return { kind: "typedecl", type, child: parseValue(ts, depth), ref: NO_REF };
}

/** A complete GVariant type string, indefinite types ('*', '?', 'r') allowed. */
function isTypeString(s: string): boolean {
  const end = scanType(s, 0, 0);
  return end === s.length;
}

function scanType(s: string, p: number, depth: number): number {
  if (depth > 128) return -1;
  const c = s[p];
  if (c === undefined) return -1;
  if ("bynqiuhxtdsogv*?r".includes(c)) return p + 1;
  if (c === "a" || c === "m") return scanType(s, p + 1, depth + 1);
  if (c === "(") {
    let q = p + 1;
    while (s[q] !== ")") {
      q = scanType(s, q, depth + 1);
      if (q < 0) return -1;
    }
    return q + 1;
  }
  if (c === "{") {
    if (s[p + 1] === undefined || !"bynqiuhxtdsog?".includes(s[p + 1]!)) return -1;
    const q = scanType(s, p + 2, depth + 1);
    if (q < 0 || s[q] !== "}") return -1;
    return q + 1;
  }
  return -1;
}

function isDefinite(s: string): boolean {
  return !/[*?r]/.test(s);
}

/** Decode the body of a quoted string token as GLib does (\\u, \\U and C escapes; others stand for themselves). */
function parseString(ts: Tokens): string {
  const start = ts.start();
  const token = ts.token();
  const ref = { start, end: start + token.length };
  const quote = token[0];
  let out = "";
  let i = 1;
  for (;;) {
    const c = token[i];
    if (c === undefined) throw new GVariantParseError("unterminated string constant", ref);
    if (c === quote) break;
    if (c !== "\\") {
      out += c;
      i++;
      continue;
    }
    const e = token[++i];
    if (e === undefined) throw new GVariantParseError("unterminated string constant", ref);
    if (e === "u" || e === "U") {
      const len = e === "u" ? 4 : 8;
      i++;
      let valid = 0;
      while (valid < len && isHex(token[i + valid])) valid++;
      const value = valid === len ? parseInt(token.slice(i, i + len), 16) : 0;
      if (value === 0 || value > 0x10ffff || (value >= 0xd800 && value < 0xe000)) {
        throw new GVariantParseError(`invalid ${len}-character unicode escape`, { start: start + i, end: start + i + valid });
      }
      out += String.fromCodePoint(value);
      i += len;
      continue;
    }
    const simple = C_ESCAPES[e];
    if (simple !== undefined) out += simple;
    else if (e !== "\n") out += e; // backslash-newline is a line continuation
    i++;
  }
  ts.next();
  return out;
}

const C_ESCAPES: Partial<Record<string, string>> = { a: "\x07", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t", v: "\v" };
const utf8 = new TextEncoder();

/** Bytes of a b'...' token, with GLib's trailing NUL; an escaped NUL ends the bytestring early, as in C. */
function parseBytestring(ts: Tokens): Uint8Array {
  const start = ts.start();
  const token = ts.token();
  const ref = { start, end: start + token.length };
  const quote = token[1];
  const out: number[] = [];
  let i = 2;
  for (;;) {
    const c = token[i];
    if (c === undefined) throw new GVariantParseError("unterminated string constant", ref);
    if (c === quote) break;
    if (c !== "\\") {
      const cp = token.codePointAt(i)!;
      const ch = String.fromCodePoint(cp);
      for (const b of utf8.encode(ch)) out.push(b);
      i += ch.length;
      continue;
    }
    const e = token[++i];
    if (e === undefined) throw new GVariantParseError("unterminated string constant", ref);
    if (e >= "0" && e <= "7") {
      let val = e.charCodeAt(0) - 48;
      i++;
      for (let k = 0; k < 2 && token[i] !== undefined && token[i]! >= "0" && token[i]! <= "7"; k++) {
        val = ((val << 3) | (token.charCodeAt(i) - 48)) & 0xff;
        i++;
      }
      out.push(val);
      continue;
    }
    const simple = C_ESCAPES[e];
    if (simple !== undefined) out.push(simple.charCodeAt(0));
    else if (e !== "\n") {
      const cp = token.codePointAt(i)!;
      const ch = String.fromCodePoint(cp);
      for (const b of utf8.encode(ch)) out.push(b);
      i += ch.length - 1;
    }
    i++;
  }
  ts.next();
  const nul = out.indexOf(0);
  if (nul >= 0) out.length = nul;
  out.push(0);
  return Uint8Array.from(out);
}

// ---- type inference -------------------------------------------------------

/** Length of the pattern element starting at `p` (prefix of a/m/M, then one item or bracketed group). */
function patternItemEnd(s: string, p: number): number {
  while (s[p] === "a" || s[p] === "m" || s[p] === "M") p++;
  let brackets = 0;
  do {
    const c = s[p];
    if (c === "(" || c === "{") brackets++;
    else if (c === ")" || c === "}") brackets--;
    p++;
  } while (brackets > 0 && p < s.length);
  return p;
}

/** The most specific pattern matching both, or null when they conflict (GLib's pattern_coalesce). */
function coalescePatterns(left: string, right: string): string | null {
  const str = [left, right];
  const idx = [0, 0];
  let out = "";
  while (idx[0]! < left.length && idx[1]! < right.length) {
    const l = left[idx[0]!]!;
    const r = right[idx[1]!]!;
    if (l === r) {
      out += l;
      idx[0]!++;
      idx[1]!++;
      continue;
    }
    let matched = false;
    for (const [one, other] of [
      [0, 1],
      [1, 0],
    ] as const) {
      const a = str[one]![idx[one]!]!;
      const b = str[other]![idx[other]!]!;
      if (a === "*" && b !== ")") {
        const end = patternItemEnd(str[other]!, idx[other]!);
        out += str[other]!.slice(idx[other]!, end);
        idx[other] = end;
        idx[one]!++;
      } else if (a === "M" && b === "m") {
        out += "m";
        idx[other]!++;
      } else if (a === "M" && b !== "*") {
        // Against `*` the whole `M…` item is copied by the `*` branch instead, keeping the maybe.
        idx[one]!++;
      } else if (a === "N" && "ynqiuxthd".includes(b)) {
        out += b;
        idx[other]!++;
        idx[one]!++;
      } else if (a === "S" && "sog".includes(b)) {
        out += b;
        idx[other]!++;
        idx[one]!++;
      } else {
        continue;
      }
      matched = true;
      break;
    }
    if (!matched) return null;
  }
  return idx[0] === left.length && idx[1] === right.length ? out : null;
}

function arrayPattern(items: Ast[]): string {
  let pattern = getPattern(items[0]!);
  for (let i = 1; i < items.length; i++) {
    const next = getPattern(items[i]!);
    const merged = coalescePatterns(pattern, next);
    if (merged === null) {
      // Report the first earlier item that conflicts with this one.
      for (let j = 0; j < i; j++) {
        if (coalescePatterns(next, getPattern(items[j]!)) === null) {
          throw new GVariantParseError("unable to find a common type", items[j]!.ref, items[i]!.ref);
        }
      }
      throw new GVariantParseError("unable to find a common type", items[i]!.ref);
    }
    pattern = merged;
  }
  return pattern;
}

function getPattern(ast: Ast): string {
  switch (ast.kind) {
    case "maybe":
      return ast.child ? `m${getPattern(ast.child)}` : "m*";
    case "array":
      return ast.items.length === 0 ? "Ma*" : `Ma${arrayPattern(ast.items)}`;
    case "tuple":
      return `M(${ast.items.map(getPattern).join("")})`;
    case "variant":
      return "Mv";
    case "dict": {
      if (ast.keys.length === 0) return "Ma{**}";
      const keyPattern = arrayPattern(ast.keys);
      const keyChar = keyPattern[0] === "M" ? keyPattern[1]! : keyPattern[0]!;
      if (!"bynqiuxthdsogNS".includes(keyChar)) throw new GVariantParseError("dictionary keys must have basic types", ast.ref);
      // As in GLib, only the first value shapes the pattern; the rest must fit it.
      return `M${ast.entry ? "" : "a"}{${keyChar}${getPattern(ast.values[0]!)}}`;
    }
    case "string":
      return "MS";
    case "bytes":
      return "May";
    case "number": {
      const t = ast.token;
      const floating = t.includes(".") || (!t.startsWith("0x") && t.includes("e")) || t.includes("inf") || t.includes("nan");
      return floating ? "Md" : "MN";
    }
    case "boolean":
      return "Mb";
    case "typedecl":
      return ast.type;
  }
}

function resolve(ast: Ast): { type: string; value: Value } {
  let type = "";
  for (const c of getPattern(ast)) {
    if (c === "*") throw new GVariantParseError("unable to infer type", ast.ref);
    if (c === "M") continue;
    type += c === "S" ? "s" : c === "N" ? "i" : c;
  }
  let node: TypeNode;
  try {
    node = parseType(type);
  } catch (e) {
    if (e instanceof GVariantTypeError) throw new GVariantParseError(`inferred type is not usable: ${e.message}`, ast.ref);
    throw e;
  }
  return { type: node.type, value: getValue(ast, node) };
}

// ---- value construction ---------------------------------------------------

function typeError(ast: Ast, type: TypeNode): never {
  throw new GVariantParseError(`can not parse as value of type '${type.type}'`, ast.ref);
}

function getValue(ast: Ast, type: TypeNode): Value {
  if (ast.kind === "typedecl") return getValue(ast.child, type);
  if (ast.kind === "maybe") {
    if (type.kind !== "maybe") typeError(ast, type);
    if (ast.child === null) return null;
    const v = getValue(ast.child, type.element);
    return type.element.kind === "maybe" ? { just: v } : v;
  }
  // Any other value is silently wrapped in as many Justs as the type asks for.
  // Just(x) is x itself for the innermost maybe and { just } for each level above it.
  let justs = 0;
  let base = type;
  while (base.kind === "maybe") {
    justs++;
    base = base.element;
  }
  let v = getBaseValue(ast, base);
  for (let i = 1; i < justs; i++) v = { just: v };
  return v;
}

function getBaseValue(ast: Ast, type: TypeNode): Value {
  switch (ast.kind) {
    case "array": {
      if (type.kind !== "array") typeError(ast, type);
      const values = ast.items.map((item) => getValue(item, type.element));
      return type.element.type === "y" ? Uint8Array.from(values as number[]) : values;
    }
    case "tuple": {
      if (type.kind !== "tuple" || type.dictEntry || type.members.length !== ast.items.length) typeError(ast, type);
      return ast.items.map((item, i) => getValue(item, type.members[i]!));
    }
    case "variant":
      if (type.kind !== "variant") typeError(ast, type);
      return resolve(ast.child);
    case "dict": {
      if (ast.entry) {
        if (type.kind !== "tuple" || !type.dictEntry) typeError(ast, type);
        return [getValue(ast.keys[0]!, type.members[0]!), getValue(ast.values[0]!, type.members[1]!)];
      }
      if (type.kind !== "array" || type.element.kind !== "tuple" || !type.element.dictEntry) typeError(ast, type);
      const [k, v] = type.element.members as [TypeNode, TypeNode];
      return ast.keys.map((key, i) => [getValue(key, k), getValue(ast.values[i]!, v)]);
    }
    case "string": {
      if (type.type === "s") return ast.str;
      if (type.type === "o") {
        if (!isObjectPath(ast.str)) throw new GVariantParseError("not a valid object path", ast.ref);
        return ast.str;
      }
      if (type.type === "g") {
        if (!isSignature(ast.str)) throw new GVariantParseError("not a valid signature", ast.ref);
        return ast.str;
      }
      return typeError(ast, type);
    }
    case "bytes":
      if (type.type !== "ay") typeError(ast, type);
      return ast.bytes;
    case "number":
      return numberValue(ast, type);
    case "boolean":
      if (type.type !== "b") typeError(ast, type);
      return ast.value;
    default:
      throw new Error(`unreachable: ${ast.kind}`);
  }
}

const INT_RANGES: Partial<Record<string, readonly [bigint, bigint]>> = {
  y: [0n, 0xffn],
  n: [-0x8000n, 0x7fffn],
  q: [0n, 0xffffn],
  i: [-0x80000000n, 0x7fffffffn],
  h: [-0x80000000n, 0x7fffffffn],
  u: [0n, 0xffffffffn],
  x: [-(2n ** 63n), 2n ** 63n - 1n],
  t: [0n, 2n ** 64n - 1n],
};

const MAX_U64 = 2n ** 64n - 1n;

function numberValue(ast: Extract<Ast, { kind: "number" }>, type: TypeNode): Value {
  const token = ast.token;
  const invalidAt = (offset: number): never => {
    throw new GVariantParseError("invalid character in number", { start: ast.ref.start + offset, end: ast.ref.start + offset + 1 });
  };
  if (type.type === "d") {
    const { value, end } = strtod(token);
    // strtod reports ERANGE for overflow and for (non-zero) subnormal results; GLib rejects both.
    if (value !== 0 && (!Number.isFinite(value) ? !/inf|nan/i.test(token.slice(0, end)) : Math.abs(value) < 2.2250738585072014e-308)) {
      throw new GVariantParseError("number too big for any type", ast.ref);
    }
    if (end !== token.length) invalidAt(end);
    return value;
  }
  const negative = token[0] === "-";
  const body = negative ? 1 : 0;
  const { value: abs, end, overflow } = strtoull(token, body);
  if (overflow) throw new GVariantParseError("integer too big for any type", ast.ref);
  if (end !== token.length) invalidAt(end);
  const range = INT_RANGES[type.type];
  if (range === undefined) typeError(ast, type);
  const v = negative && abs !== 0n ? -abs : abs;
  if (v < range[0] || v > range[1]) {
    throw new GVariantParseError(`number out of range for type '${type.type}'`, ast.ref);
  }
  return type.type === "x" || type.type === "t" ? v : Number(v);
}

/** g_ascii_strtoull(s + from, &end, 0): optional sign, 0x hex / 0 octal / decimal; '-' negates modulo 2^64. */
function strtoull(s: string, from: number): { value: bigint; end: number; overflow: boolean } {
  let p = from;
  let neg = false;
  if (s[p] === "+" || s[p] === "-") neg = s[p++] === "-";
  let base = 10;
  if (s[p] === "0" && (s[p + 1] === "x" || s[p + 1] === "X")) {
    base = 16;
    p += 2;
  } else if (s[p] === "0") {
    base = 8;
  }
  const digitsStart = p;
  let value = 0n;
  let overflow = false;
  for (; p < s.length; p++) {
    const d = parseInt(s[p]!, 36);
    if (Number.isNaN(d) || d >= base) break;
    value = value * BigInt(base) + BigInt(d);
    if (value > MAX_U64) overflow = true;
  }
  if (p === digitsStart) {
    // "0x" with no hex digits parses as "0" ending at the 'x'; no digits at all consumes nothing.
    if (base === 16) return { value: 0n, end: digitsStart - 1, overflow: false };
    return { value: 0n, end: from, overflow: false };
  }
  if (overflow) return { value: MAX_U64, end: p, overflow: true };
  return { value: neg && value !== 0n ? (MAX_U64 + 1n - value) : value, end: p, overflow: false };
}

/** C strtod in the C locale: decimal, hex float, inf/infinity, nan. `end` is how much of `s` was used. */
function strtod(s: string): { value: number; end: number } {
  let m = /^[+-]?(?:infinity|inf)/i.exec(s);
  if (m) return { value: m[0][0] === "-" ? -Infinity : Infinity, end: m[0].length };
  m = /^[+-]?nan/i.exec(s);
  if (m) return { value: NaN, end: m[0].length };
  m = /^([+-]?)0[xX](?:([0-9a-fA-F]+)(?:\.([0-9a-fA-F]*))?|\.([0-9a-fA-F]+))(?:[pP]([+-]?\d+))?/.exec(s);
  if (m) {
    const intPart = m[2] ?? "";
    const frac = m[3] ?? m[4] ?? "";
    const mant = BigInt(`0x${intPart}${frac}` === "0x" ? "0" : `0x${intPart}${frac}`);
    const exp = (m[5] ? parseInt(m[5], 10) : 0) - 4 * frac.length;
    const mag = Number(mant) * 2 ** exp;
    return { value: m[1] === "-" ? -mag : mag, end: m[0].length };
  }
  m = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/.exec(s);
  if (m) return { value: Number(m[0]), end: m[0].length };
  return { value: 0, end: 0 };
}

/**
 * Parse GVariant text format as GLib 2.74's g_variant_parse() does. Without
 * `type` the type is inferred as GLib infers it (integers are int32, floats
 * double, strings `s`, `[]` needs an `@type` annotation). Throws
 * GVariantParseError with the position of the problem.
 */
export function parseText(text: string, type?: string): { type: string; value: Value } {
  // GLib reads a C string: a NUL ends the input.
  const nul = text.indexOf("\0");
  const input = nul >= 0 ? text.slice(0, nul) : text;
  try {
    const ts = new Tokens(input);
    const ast = parseValue(ts, 0);
    let result: { type: string; value: Value };
    if (type === undefined) {
      result = resolve(ast);
    } else {
      const node = parseType(type);
      result = { type: node.type, value: getValue(ast, node) };
    }
    ts.next();
    if (ts.prepare()) throw new GVariantParseError("expected end of input", { start: ts.start(), end: ts.start() });
    return result;
  } catch (e) {
    // Offsets in messages are GLib's byte offsets; only non-ASCII text makes them differ.
    if (e instanceof GVariantParseError && /[^\x00-\x7f]/.test(input)) throw e.withText(input);
    throw e;
  }
}
