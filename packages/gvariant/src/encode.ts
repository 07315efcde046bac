import { GVariantEncodeError } from "./errors.js";
import { alignUp, isObjectPath, isSignature, parseType, type TypeNode } from "./types.js";
import type { ByteOrder, Just, Value, Variant } from "./values.js";
import { isVariant } from "./values.js";

const utf8 = new TextEncoder();

// ES2024 String.prototype.isWellFormed (Node 20+); the shared tsconfig targets ES2023 libs.
interface WellFormedCheck {
  isWellFormed(): boolean;
}

/** Growable output buffer; positions are absolute, which equals container-relative alignment because every container starts aligned. */
class Sink {
  buf = new Uint8Array(256);
  view = new DataView(this.buf.buffer);
  pos = 0;

  reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.pos + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  pad(align: number): void {
    const target = alignUp(this.pos, align);
    this.reserve(target - this.pos);
    this.buf.fill(0, this.pos, target);
    this.pos = target;
  }

  bytes(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  byte(b: number): void {
    this.reserve(1);
    this.buf[this.pos++] = b;
  }

  /** Append framing offsets (relative to `start`) with the minimal width for the container's final size. */
  frame(start: number, offsets: number[]): void {
    if (offsets.length === 0) return;
    const body = this.pos - start;
    let w = 1;
    while (w < 8 && body + offsets.length * w > 2 ** (8 * w) - 1) w *= 2;
    this.reserve(offsets.length * w);
    for (const off of offsets) {
      // Division rather than shifts: offsets may exceed 32 bits.
      let v = off;
      for (let i = 0; i < w; i++) {
        this.buf[this.pos++] = v % 256;
        v = Math.floor(v / 256);
      }
    }
  }
}

function fail(node: TypeNode, value: unknown, why: string): never {
  const shown = typeof value === "bigint" ? `${value}n` : (() => { try { return JSON.stringify(value); } catch { return String(value); } })();
  throw new GVariantEncodeError(`cannot encode ${shown?.slice(0, 80)} as '${node.type}': ${why}`);
}

function intRange(node: TypeNode, v: Value, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) fail(node, v, `expected an integer in ${min}..${max}`);
  return v;
}

function bigRange(node: TypeNode, v: Value, min: bigint, max: bigint): bigint {
  const b = typeof v === "number" && Number.isSafeInteger(v) ? BigInt(v) : v;
  if (typeof b !== "bigint" || b < min || b > max) fail(node, v, `expected a bigint in ${min}..${max}`);
  return b;
}

function writeBasic(s: Sink, node: Extract<TypeNode, { kind: "basic" }>, v: Value, le: boolean): void {
  s.reserve(node.fixedSize);
  const dv = s.view;
  const p = s.pos;
  switch (node.code) {
    case "b":
      if (typeof v !== "boolean") fail(node, v, "expected a boolean");
      dv.setUint8(p, v ? 1 : 0);
      break;
    case "y":
      dv.setUint8(p, intRange(node, v, 0, 0xff));
      break;
    case "n":
      dv.setInt16(p, intRange(node, v, -0x8000, 0x7fff), le);
      break;
    case "q":
      dv.setUint16(p, intRange(node, v, 0, 0xffff), le);
      break;
    case "i":
    case "h":
      dv.setInt32(p, intRange(node, v, -0x80000000, 0x7fffffff), le);
      break;
    case "u":
      dv.setUint32(p, intRange(node, v, 0, 0xffffffff), le);
      break;
    case "x":
      dv.setBigInt64(p, bigRange(node, v, -(2n ** 63n), 2n ** 63n - 1n), le);
      break;
    case "t":
      dv.setBigUint64(p, bigRange(node, v, 0n, 2n ** 64n - 1n), le);
      break;
    case "d":
      if (typeof v !== "number") fail(node, v, "expected a number");
      dv.setFloat64(p, v, le);
      break;
  }
  s.pos += node.fixedSize;
}

function write(s: Sink, node: TypeNode, v: Value, le: boolean): void {
  switch (node.kind) {
    case "basic":
      return writeBasic(s, node, v, le);
    case "string": {
      if (typeof v !== "string") fail(node, v, "expected a string");
      if (v.includes("\0")) fail(node, v, "strings cannot contain NUL");
      if (!(v as unknown as WellFormedCheck).isWellFormed()) fail(node, v, "string has unpaired UTF-16 surrogates");
      if (node.code === "o" && !isObjectPath(v)) fail(node, v, "not a valid object path");
      if (node.code === "g" && !isSignature(v)) fail(node, v, "not a valid signature");
      s.bytes(utf8.encode(v));
      s.byte(0);
      return;
    }
    case "variant": {
      if (!isVariant(v)) fail(node, v, "expected { type, value }");
      const inner = parseType((v as Variant).type);
      const start = s.pos;
      write(s, inner, (v as Variant).value, le);
      if (s.pos < start) fail(node, v, "internal");
      s.byte(0);
      s.bytes(utf8.encode(inner.type));
      return;
    }
    case "maybe": {
      if (v === null) return;
      let inner: Value = v;
      if (node.element.kind === "maybe") {
        if (typeof v !== "object" || !("just" in (v as object))) fail(node, v, "nested maybe needs { just }");
        inner = (v as Just).just;
      }
      write(s, node.element, inner, le);
      if (node.element.fixedSize === 0) s.byte(0);
      return;
    }
    case "array": {
      const el = node.element;
      if (el.kind === "basic" && el.code === "y" && v instanceof Uint8Array) return s.bytes(v);
      if (!Array.isArray(v)) fail(node, v, "expected an array");
      const items = v as readonly Value[];
      if (el.fixedSize !== 0) {
        for (const item of items) write(s, el, item, le);
        return;
      }
      const start = s.pos;
      const offsets: number[] = [];
      for (const item of items) {
        s.pad(el.align);
        write(s, el, item, le);
        offsets.push(s.pos - start);
      }
      s.frame(start, offsets);
      return;
    }
    case "tuple": {
      if (node.members.length === 0) {
        s.byte(0);
        return;
      }
      if (!Array.isArray(v) || v.length !== node.members.length) {
        fail(node, v, `expected an array of ${node.members.length} members`);
      }
      const items = v as readonly Value[];
      const start = s.pos;
      const offsets: number[] = [];
      const last = node.members.length - 1;
      for (let i = 0; i <= last; i++) {
        const m = node.members[i]!;
        s.pad(m.align);
        write(s, m, items[i]!, le);
        if (m.fixedSize === 0 && i !== last) offsets.push(s.pos - start);
      }
      if (node.fixedSize !== 0) {
        s.pad(node.align);
        return;
      }
      s.frame(start, offsets.reverse());
      return;
    }
  }
}

/** Serialize `value` as `type` in GVariant normal form. */
export function encode(type: string, value: Value, byteOrder: ByteOrder = "le"): Uint8Array {
  const s = new Sink();
  write(s, parseType(type), value, byteOrder === "le");
  return s.buf.slice(0, s.pos);
}
