import { encode } from "./encode.js";
import { readUntrusted } from "./lenient.js";
import { GVariantDecodeError, GVariantNormalFormError, GVariantTypeError } from "./errors.js";
import { alignUp, isObjectPath, isSignature, offsetWidth, parseType, typeDepth, type TypeNode } from "./types.js";
import { readBasic } from "./basic.js";
import type { ByteOrder, Value } from "./values.js";

// GLib's G_VARIANT_MAX_RECURSION_DEPTH: a variant's contents may not take the
// total container nesting (outer containers + the child's type depth) to 128.
const MAX_RECURSION_DEPTH = 128;
// ignoreBOM: a leading U+FEFF is string content, not a byte order mark.
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const TYPE_CHARS = new Uint8Array(128);
for (const c of "bynqiuhxtdsogvam(){}") TYPE_CHARS[c.charCodeAt(0)] = 1;

export interface DecodeOptions {
  byteOrder?: ByteOrder;
  /** Require normal form (as ostree does for its metadata objects). Default true. */
  strict?: boolean;
  /**
   * "glib-lenient": read untrusted bytes as GLib does (see readUntrusted):
   * nothing throws for bad data, invalid parts read as GLib's defaults, and
   * `strict` is ignored.
   */
  mode?: "glib-lenient";
}

class Reader {
  readonly view: DataView;
  constructor(readonly bytes: Uint8Array, readonly le: boolean) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  offset(pos: number, width: number): number {
    let v = 0;
    for (let i = width - 1; i >= 0; i--) v = v * 256 + this.bytes[pos + i]!;
    return v;
  }
}

function bad(node: TypeNode, start: number, why: string): never {
  throw new GVariantDecodeError(`invalid '${node.type}' at byte ${start}: ${why}`);
}

function read(r: Reader, node: TypeNode, start: number, end: number, depth: number): Value {
  const size = end - start;
  switch (node.kind) {
    case "basic": {
      if (size !== node.fixedSize) bad(node, start, `expected ${node.fixedSize} bytes, have ${size}`);
      return readBasic(r.view, node.code, start, r.le);
    }
    case "string": {
      if (size === 0 || r.bytes[end - 1] !== 0) bad(node, start, "string is not NUL-terminated");
      const body = r.bytes.subarray(start, end - 1);
      if (body.includes(0)) bad(node, start, "string contains NUL");
      let str: string;
      try {
        str = utf8.decode(body);
      } catch {
        bad(node, start, "string is not valid UTF-8");
      }
      if (node.code === "o" && !isObjectPath(str)) bad(node, start, `${JSON.stringify(str)} is not a valid object path`);
      if (node.code === "g" && !isSignature(str)) bad(node, start, `${JSON.stringify(str)} is not a valid signature`);
      return str;
    }
    case "variant": {
      let sep = end - 1;
      while (sep >= start && r.bytes[sep] !== 0) sep--;
      if (sep < start) bad(node, start, "variant has no type separator");
      // Built char by char: a spread of a huge hostile type string would overflow the stack.
      let typeStr = "";
      for (let p = sep + 1; p < end; p++) {
        const b = r.bytes[p]!;
        if (b >= 128 || TYPE_CHARS[b] === 0) bad(node, start, `variant type string has invalid byte 0x${b.toString(16).padStart(2, "0")}`);
        typeStr += String.fromCharCode(b);
      }
      let inner: TypeNode;
      try {
        inner = parseType(typeStr);
      } catch (e) {
        if (e instanceof GVariantTypeError) bad(node, start, `variant type ${JSON.stringify(typeStr)}: ${e.message}`);
        throw e;
      }
      if (depth + typeDepth(inner) >= MAX_RECURSION_DEPTH) bad(node, start, `variant contents nest deeper than ${MAX_RECURSION_DEPTH}`);
      return { type: inner.type, value: read(r, inner, start, sep, depth + 1) };
    }
    case "maybe": {
      if (size === 0) return null;
      const el = node.element;
      let value: Value;
      if (el.fixedSize !== 0) {
        if (size !== el.fixedSize) bad(node, start, `Just of fixed size ${el.fixedSize} has ${size} bytes`);
        value = read(r, el, start, end, depth + 1);
      } else {
        if (r.bytes[end - 1] !== 0) bad(node, start, "Just of variable-size value lacks trailing NUL");
        value = read(r, el, start, end - 1, depth + 1);
      }
      return el.kind === "maybe" ? { just: value } : value;
    }
    case "array": {
      const el = node.element;
      if (el.fixedSize !== 0) {
        if (size % el.fixedSize !== 0) bad(node, start, `${size} bytes is not a multiple of element size ${el.fixedSize}`);
        if (el.kind === "basic" && el.code === "y") return r.bytes.subarray(start, end);
        const out: Value[] = [];
        for (let p = start; p < end; p += el.fixedSize) out.push(read(r, el, p, p + el.fixedSize, depth + 1));
        return out;
      }
      if (size === 0) return [];
      const w = offsetWidth(size);
      if (size < w) bad(node, start, "too small for its framing offset");
      const tableStart = start + r.offset(end - w, w);
      if (tableStart > end - w || (end - tableStart) % w !== 0) bad(node, start, "framing offset table out of bounds");
      const count = (end - tableStart) / w;
      const out: Value[] = [];
      let pos = start;
      for (let i = 0; i < count; i++) {
        const elStart = alignUp(pos - start, el.align) + start;
        const elEnd = start + r.offset(tableStart + i * w, w);
        if (elEnd < elStart || elEnd > tableStart) bad(node, start, `element ${i} bounds ${elStart - start}..${elEnd - start} out of range`);
        out.push(read(r, el, elStart, elEnd, depth + 1));
        pos = elEnd;
      }
      return out;
    }
    case "tuple": {
      if (node.members.length === 0) {
        if (size !== 1) bad(node, start, "unit tuple must be 1 byte");
        return [];
      }
      if (node.fixedSize !== 0 && size !== node.fixedSize) bad(node, start, `expected ${node.fixedSize} bytes, have ${size}`);
      const w = offsetWidth(size);
      let tableEnd = end;
      let pos = start;
      const out: Value[] = [];
      const last = node.members.length - 1;
      for (let i = 0; i <= last; i++) {
        const m = node.members[i]!;
        const mStart = start + alignUp(pos - start, m.align);
        let mEnd: number;
        if (m.fixedSize !== 0) {
          mEnd = mStart + m.fixedSize;
        } else if (i === last) {
          mEnd = tableEnd;
        } else {
          tableEnd -= w;
          if (tableEnd < start) bad(node, start, "framing offsets run past the start");
          mEnd = start + r.offset(tableEnd, w);
        }
        if (mStart > mEnd || mEnd > tableEnd) bad(node, start, `member ${i} bounds ${mStart - start}..${mEnd - start} out of range`);
        out.push(read(r, m, mStart, mEnd, depth + 1));
        pos = mEnd;
      }
      return out;
    }
  }
  throw new GVariantDecodeError(`unhandled type ${(node as TypeNode).type}`);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Decode `bytes` as `type`. Every read is bounds-checked; malformed input
 * throws GVariantDecodeError. With `strict` (the default) the bytes must also
 * be in normal form, checked by re-encoding and comparing.
 */
export function decode(type: string, bytes: Uint8Array, options: DecodeOptions = {}): Value {
  const order = options.byteOrder ?? "le";
  if (options.mode === "glib-lenient") return readUntrusted(type, bytes, order);
  const node = parseType(type);
  const value = read(new Reader(bytes, order === "le"), node, 0, bytes.length, 0);
  if (options.strict ?? true) {
    if (!sameBytes(encode(type, value, order), bytes)) {
      throw new GVariantNormalFormError(`'${type}' value of ${bytes.length} bytes is not in normal form`);
    }
  }
  return value;
}

/** True when `bytes` is a valid normal-form serialization of `type`. */
export function isNormalForm(type: string, bytes: Uint8Array, byteOrder: ByteOrder = "le"): boolean {
  try {
    decode(type, bytes, { byteOrder, strict: true });
    return true;
  } catch (e) {
    if (e instanceof GVariantDecodeError) return false;
    throw e;
  }
}
