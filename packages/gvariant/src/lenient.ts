// GLib's reading of untrusted, possibly non-normal GVariant data
// (g_variant_new_from_bytes(..., trusted=FALSE) followed by the accessors or
// g_variant_get_normal_form()), as GLib 2.74 does it. Nothing here throws on
// bad bytes: every accessor yields a defined default instead, because ostree
// reads some untrusted metadata (detached .commitmeta) this way and stores
// what it read. Framing rules follow gvariant-serialiser.c; the checks are
// ported by behaviour, including its quirks (see the comments below).
import { encode } from "./encode.js";
import { alignUp, isObjectPath, isSignature, offsetWidth, parseType, typeDepth, type TypeNode } from "./types.js";
import { readBasic } from "./basic.js";
import type { ByteOrder, Value } from "./values.js";

const MAX_RECURSION_DEPTH = 128;
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
/** A child GLib returns as "data NULL": zeros for a fixed-size type, zero bytes otherwise. */
const NO_DATA = -1;

interface Ctx {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  readonly le: boolean;
}

function ctxOf(bytes: Uint8Array, le: boolean): Ctx {
  return { bytes, view: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), le };
}

function readLE(c: Ctx, pos: number, width: number): number {
  let v = 0;
  for (let i = width - 1; i >= 0; i--) v = v * 256 + c.bytes[pos + i]!;
  return v;
}

/** g_variant_serialiser_is_string: NUL-terminated, no NUL before it, valid UTF-8. */
function stringAt(c: Ctx, start: number, size: number): string | null {
  if (start === NO_DATA || size === 0 || c.bytes[start + size - 1] !== 0) return null;
  const body = c.bytes.subarray(start, start + size - 1);
  if (body.includes(0)) return null;
  try {
    return utf8.decode(body);
  } catch {
    return null;
  }
}

/** gvs_variant_get_child: the contained type and the bounds of its data, or null for GLib's `()` fallback. */
function variantChild(c: Ctx, start: number, size: number, depth: number): { node: TypeNode; size: number } | null {
  if (start === NO_DATA || size === 0) return null;
  let sep = size - 1;
  while (sep > 0 && c.bytes[start + sep] !== 0) sep--;
  if (c.bytes[start + sep] !== 0) return null;
  let typeStr = "";
  for (let p = start + sep + 1; p < start + size; p++) {
    const b = c.bytes[p]!;
    if (b >= 128) return null;
    typeStr += String.fromCharCode(b);
  }
  let node: TypeNode;
  try {
    node = parseType(typeStr);
  } catch {
    return null;
  }
  if (node.fixedSize !== 0 && node.fixedSize !== sep) return null;
  if (depth + typeDepth(node) >= MAX_RECURSION_DEPTH) return null;
  return { node, size: sep };
}

/** Per-member layout of a tuple, as GLib's GVariantMemberInfo: start = roundDown(base + a, mask + 1) + c from the end offset of member `i`. */
interface MemberInfo {
  node: TypeNode;
  i: number;
  a: number;
  alignBlock: number;
  c: number;
  ending: "fixed" | "last" | "offset";
}

const memberCache = new WeakMap<TypeNode, MemberInfo[]>();

// The same arithmetic as gvarianttypeinfo.c's table generation; the
// bit operations are written as modulo arithmetic so offsets above 2^31 stay exact.
function memberInfos(node: Extract<TypeNode, { kind: "tuple" }>): MemberInfo[] {
  let infos = memberCache.get(node);
  if (infos) return infos;
  infos = [];
  let i = -1;
  let a = 0;
  let b = 0;
  let c = 0;
  node.members.forEach((m, idx) => {
    const d = m.align - 1;
    if (d <= b) c = alignUp(c, d + 1);
    else {
      a += alignUp(c, b + 1);
      b = d;
      c = 0;
    }
    const block = b + 1;
    const aligned = c - (c % block);
    const last = idx === node.members.length - 1;
    infos!.push({ node: m, i, a: a + aligned + b, alignBlock: block, c: c % block, ending: m.fixedSize !== 0 ? "fixed" : last ? "last" : "offset" });
    if (m.fixedSize === 0) {
      i++;
      a = b = c = 0;
    } else c += m.fixedSize;
  });
  memberCache.set(node, infos);
  return infos;
}

/** gvs_tuple_get_member_bounds; an invalid end is Infinity (GLib's G_MAXSIZE). */
function memberBounds(c: Ctx, start: number, size: number, w: number, m: MemberInfo): [number, number] {
  let mStart = m.i !== -1 && w * (m.i + 1) <= size ? readLE(c, start + size - w * (m.i + 1), w) : 0;
  mStart += m.a;
  mStart = mStart - (mStart % m.alignBlock) + m.c;
  let mEnd: number;
  if (m.ending === "last" && w * (m.i + 1) <= size) mEnd = size - w * (m.i + 1);
  else if (m.ending === "fixed") mEnd = mStart + m.node.fixedSize;
  else if (m.ending === "offset" && w * (m.i + 2) <= size) mEnd = readLE(c, start + size - w * (m.i + 2), w);
  else mEnd = Infinity;
  return [mStart, mEnd];
}

interface ArrayFrame {
  w: number;
  dataSize: number;
  length: number;
  normal: boolean;
}

/** gvs_variable_sized_array_get_frame_offsets: a bad table means no children. */
function arrayFrame(c: Ctx, start: number, size: number): ArrayFrame {
  if (size === 0) return { w: 0, dataSize: 0, length: 0, normal: true };
  const w = offsetWidth(size);
  const lastEnd = readLE(c, start + size - w, w);
  if (lastEnd > size || (size - lastEnd) % w !== 0) return { w, dataSize: 0, length: 0, normal: false };
  const length = (size - lastEnd) / w;
  // An over-wide offset size still yields the children; only normality fails.
  const normal = length === 0 || totalSize(lastEnd, length) === size;
  return { w, dataSize: lastEnd, length, normal };
}

/** gvs_calculate_total_size. */
function totalSize(body: number, n: number): number {
  if (body + n <= 0xff) return body + n;
  if (body + 2 * n <= 0xffff) return body + 2 * n;
  if (body + 4 * n <= 0xffffffff) return body + 4 * n;
  return body + 8 * n;
}

function zeroCtx(node: TypeNode): Ctx {
  return ctxOf(new Uint8Array(node.fixedSize), true);
}

function read(c: Ctx, node: TypeNode, start: number, size: number, depth: number): Value {
  if (start === NO_DATA && node.fixedSize !== 0) return read(zeroCtx(node), node, 0, node.fixedSize, depth);
  if (start === NO_DATA) size = 0;
  switch (node.kind) {
    case "basic":
      return readBasic(c.view, node.code, start, c.le);
    case "string": {
      const s = stringAt(c, start, size);
      if (node.code === "s") return s ?? "";
      if (node.code === "o") return s !== null && isObjectPath(s) ? s : "/";
      return s !== null && isSignature(s) ? s : "";
    }
    case "variant": {
      const child = variantChild(c, start, size, depth);
      if (!child) return { type: "()", value: [] };
      return { type: child.node.type, value: read(c, child.node, child.size === 0 ? NO_DATA : start, child.size, depth + 1) };
    }
    case "maybe": {
      const el = node.element;
      let value: Value;
      if (el.fixedSize !== 0) {
        if (size !== el.fixedSize) return null;
        value = read(c, el, start, size, depth + 1);
      } else {
        if (size === 0) return null;
        value = read(c, el, size === 1 ? NO_DATA : start, size - 1, depth + 1);
      }
      return el.kind === "maybe" ? { just: value } : value;
    }
    case "array": {
      const el = node.element;
      if (el.fixedSize !== 0) {
        if (size % el.fixedSize !== 0) return el.kind === "basic" && el.code === "y" ? new Uint8Array(0) : [];
        if (el.kind === "basic" && el.code === "y") return c.bytes.subarray(start, start + size);
        const out: Value[] = [];
        for (let p = 0; p < size; p += el.fixedSize) out.push(read(c, el, start + p, el.fixedSize, depth + 1));
        return out;
      }
      const f = arrayFrame(c, start, size);
      const tableStart = start + f.dataSize;
      const out: Value[] = [];
      let ordered = true;
      for (let i = 0; i < f.length; i++) {
        const end = readLE(c, tableStart + i * f.w, f.w);
        // GLib blanks every element from the first out-of-order offset on.
        if (i > 0 && end < readLE(c, tableStart + (i - 1) * f.w, f.w)) ordered = false;
        if (!ordered) {
          out.push(read(c, el, NO_DATA, 0, depth + 1));
          continue;
        }
        const elStart = i > 0 ? alignUp(readLE(c, tableStart + (i - 1) * f.w, f.w), el.align) : 0;
        const ok = elStart < end && end <= size && end <= f.dataSize;
        out.push(read(c, el, ok ? start + elStart : NO_DATA, ok ? end - elStart : 0, depth + 1));
      }
      return out;
    }
    case "tuple": {
      const n = node.members.length;
      if (n === 0) return [];
      const infos = memberInfos(node);
      const w = offsetWidth(size);
      // gvs_tuple_get_child's ordering check: members from the first one whose
      // bounds overlap or run backwards get no data. When member 0 itself is
      // bad GLib's "first bad - 1" wraps to G_MAXSIZE and nothing is blanked.
      let firstBad = n;
      let prevEnd = 0;
      for (let k = 0; k < n; k++) {
        const [s, e] = memberBounds(c, start, size, w, infos[k]!);
        if (s > e || s < prevEnd || e > size) {
          firstBad = k === 0 ? n : k;
          break;
        }
        prevEnd = e;
      }
      const lastEnd = memberBounds(c, start, size, w, infos[n - 1]!)[1];
      const out: Value[] = [];
      for (let k = 0; k < n; k++) {
        const m = infos[k]!;
        let ok = k < firstBad && w * (m.i + (m.ending === "offset" ? 2 : 1)) <= size;
        let s = 0;
        let e = 0;
        if (ok) {
          [s, e] = memberBounds(c, start, size, w, m);
          ok = s < e && e <= size && e <= lastEnd;
        }
        out.push(read(c, m.node, ok ? start + s : NO_DATA, ok ? e - s : 0, depth + 1));
      }
      return out;
    }
  }
  throw new Error(`unhandled type ${(node as TypeNode).type}`);
}

/** g_variant_serialised_is_normal, which differs from "re-encodes to the same bytes" in one place: a variable-size tuple whose members can all be empty is also normal as zero bytes. */
function isNormal(c: Ctx, node: TypeNode, start: number, size: number, depth: number): boolean {
  if (depth >= MAX_RECURSION_DEPTH) return false;
  switch (node.kind) {
    case "maybe": {
      const el = node.element;
      if (size === 0) return true;
      if (el.fixedSize !== 0) return size === el.fixedSize && isNormal(c, el, start, size, depth + 1);
      if (c.bytes[start + size - 1] !== 0) return false;
      return isNormal(c, el, size === 1 ? NO_DATA : start, size - 1, depth + 1);
    }
    case "array": {
      const el = node.element;
      if (el.fixedSize !== 0) {
        if (size % el.fixedSize !== 0) return false;
        for (let p = 0; p < size; p += el.fixedSize) if (!isNormal(c, el, start + p, el.fixedSize, depth + 1)) return false;
        return true;
      }
      const f = arrayFrame(c, start, size);
      if (!f.normal || (size !== 0 && f.length === 0)) return false;
      let offset = 0;
      for (let i = 0; i < f.length; i++) {
        const end = readLE(c, start + f.dataSize + i * f.w, f.w);
        if (end < offset || end > f.dataSize) return false;
        while (offset % el.align !== 0) {
          if (!(offset < end && c.bytes[start + offset] === 0)) return false;
          offset++;
        }
        if (!isNormal(c, el, end === offset ? NO_DATA : start + offset, end - offset, depth + 1)) return false;
        offset = end;
      }
      return true;
    }
    case "tuple": {
      if (start === NO_DATA && size !== 0) return false;
      const w = offsetWidth(size);
      let offsetPtr = size;
      let offset = 0;
      const infos = memberInfos(node);
      for (const m of infos) {
        while (offset % m.node.align !== 0) {
          if (offset > size || c.bytes[start + offset] !== 0) return false;
          offset++;
        }
        let end: number;
        if (m.ending === "fixed") end = offset + m.node.fixedSize;
        else if (m.ending === "last") end = offsetPtr;
        else {
          if (offsetPtr < w) return false;
          offsetPtr -= w;
          if (offsetPtr < offset) return false;
          end = readLE(c, start + offsetPtr, w);
        }
        if (end < offset || end > offsetPtr) return false;
        if (!isNormal(c, m.node, end === offset ? NO_DATA : start + offset, end - offset, depth + 1)) return false;
        offset = end;
      }
      if (node.fixedSize !== 0) {
        if (infos.length === 0) {
          if (c.bytes[start + offset++] !== 0) return false;
        } else {
          while (offset % node.align !== 0) if (c.bytes[start + offset++] !== 0) return false;
        }
      }
      if (offsetPtr !== offset) return false;
      return size === 0 || totalSize(offset, (size - offsetPtr) / w) === size;
    }
    case "variant": {
      const child = variantChild(c, start, size, depth);
      // GLib's `()` fallback has no data but a size of 1: never normal.
      if (!child) return false;
      return isNormal(c, child.node, child.size === 0 ? NO_DATA : start, child.size, depth + 1);
    }
    case "basic":
      if (start === NO_DATA) return false;
      return node.code !== "b" || c.bytes[start]! < 2;
    case "string": {
      const s = stringAt(c, start, size);
      if (s === null) return false;
      return node.code === "s" || (node.code === "o" ? isObjectPath(s) : isSignature(s));
    }
  }
}

function topStart(node: TypeNode, bytes: Uint8Array): number {
  // g_variant_new_from_bytes: a fixed-size type given the wrong number of bytes reads as zeros.
  return node.fixedSize !== 0 && bytes.length !== node.fixedSize ? NO_DATA : 0;
}

/**
 * Read untrusted `bytes` as `type` the way GLib does: never throws for bad
 * data; whatever is not valid reads as GLib's default for that place
 * (0 / false / "" / "/" for an object path / no children / Nothing / a `()`
 * variant). Big-endian input only swaps the numbers; framing offsets are
 * little-endian in both orders.
 */
export function readUntrusted(type: string, bytes: Uint8Array, byteOrder: ByteOrder = "le"): Value {
  const node = parseType(type);
  const start = topStart(node, bytes);
  return read(ctxOf(bytes, byteOrder === "le"), node, start, start === NO_DATA ? node.fixedSize : bytes.length, 0);
}

/**
 * g_variant_get_normal_form() of untrusted `bytes`: the bytes themselves when
 * GLib deems them normal, otherwise the serialization of readUntrusted().
 */
export function normalForm(type: string, bytes: Uint8Array, byteOrder: ByteOrder = "le"): Uint8Array {
  const node = parseType(type);
  const start = topStart(node, bytes);
  const c = ctxOf(bytes, byteOrder === "le");
  if (start !== NO_DATA && isNormal(c, node, 0, bytes.length, 0)) return bytes.slice();
  return encode(type, read(c, node, start, start === NO_DATA ? node.fixedSize : bytes.length, 0), byteOrder);
}
