import { isValidFilename } from "./filename.js";
import type { DirTree } from "./metadata.js";

/*
 * A direct dirtree reader. The generic GVariant reader decodes and then
 * re-encodes the value to prove it was in normal form: for a checkout, which
 * decodes every dirtree of the commit, that was a large share of its CPU time
 * and garbage. This one reads the fixed type (a(say)a(sayay)) and checks the
 * normal-form rules as it goes. It only ever accepts: anything it is not sure
 * of (not normal form, a bad name, a checksum of the wrong length) is left to
 * decodeDirTreeGeneric, which gives the authoritative answer and error.
 */

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Thrown inside fastDirTree when the bytes are not what the fast path accepts. */
const NOT_FAST = new Error("not on the fast path");

/** Bytes per framing offset that GLib reads for a container of `size` bytes. */
function widthOf(size: number): number {
  if (size === 0) return 0;
  if (size <= 0xff) return 1;
  if (size <= 0xffff) return 2;
  return size <= 0xffffffff ? 4 : 8;
}

/** The width GLib's serialiser picks for `body` bytes followed by `count` offsets. */
function canonicalWidth(body: number, count: number): number {
  let w = 1;
  while (w < 8 && body + count * w > 2 ** (8 * w) - 1) w *= 2;
  return w;
}

function readOffset(b: Buffer, pos: number, w: number): number {
  switch (w) {
    case 1:
      return b[pos]!;
    case 2:
      return b.readUInt16LE(pos);
    case 4:
      return b.readUInt32LE(pos);
    default:
      // Offsets past 2^53 cannot index anything we could have read.
      return Number(b.readBigUInt64LE(pos));
  }
}

/**
 * Element boundaries of an array of variable-size elements at [start, end):
 * `ends[i]` is element i's end (absolute); element 0 starts at `start`.
 */
function arrayElements(b: Buffer, start: number, end: number, ends: number[]): void {
  const size = end - start;
  ends.length = 0;
  if (size === 0) return;
  const w = widthOf(size);
  const body = readOffset(b, end - w, w);
  if (body > size || (size - body) % w !== 0) throw NOT_FAST;
  const count = (size - body) / w;
  if (count === 0 || canonicalWidth(body, count) !== w) throw NOT_FAST;
  let prev = 0;
  for (let i = 0; i < count; i++) {
    const e = readOffset(b, start + body + i * w, w);
    if (e < prev || e > body) throw NOT_FAST;
    ends.push(start + e);
    prev = e;
  }
}

/**
 * A tuple of variable-size members at [start, end), all but the last of them
 * `framed` (an offset at the tuple's end gives their end): the member
 * boundaries, checked for normal form. `out[k]` is member k's end (absolute).
 */
function tupleBounds(b: Buffer, start: number, end: number, framed: number, out: number[]): void {
  const size = end - start;
  const w = widthOf(size);
  if (size < framed * w) throw NOT_FAST;
  const body = size - framed * w;
  if (canonicalWidth(body, framed) !== w) throw NOT_FAST;
  let prev = 0;
  for (let k = 0; k < framed; k++) {
    // Framing offsets are stored last member first.
    const e = readOffset(b, end - (k + 1) * w, w);
    if (e < prev || e > body) throw NOT_FAST;
    out[k] = start + e;
    prev = e;
  }
  out[framed] = start + body;
}

/** The string member at [start, end): NUL-terminated, no other NUL, valid UTF-8, a valid filename. */
function name(b: Buffer, start: number, end: number): string {
  if (end <= start || b[end - 1] !== 0) throw NOT_FAST;
  const nul = b.indexOf(0, start);
  if (nul !== end - 1) throw NOT_FAST;
  const s = utf8.decode(b.subarray(start, end - 1));
  if (!isValidFilename(s)) throw NOT_FAST;
  return s;
}

function checksumAt(b: Buffer, start: number, end: number): string {
  if (end - start !== 32) throw NOT_FAST;
  return b.toString("hex", start, end);
}

/** The dirtree, or undefined when the fast path cannot vouch for these bytes. */
export function fastDirTree(bytes: Uint8Array): DirTree | undefined {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  try {
    const top: number[] = [];
    tupleBounds(b, 0, b.length, 1, top);
    const filesEnd = top[0]!;
    const dirsEnd = top[1]!;
    const ends: number[] = [];
    const m: number[] = [];
    const files: DirTree["files"] = [];
    arrayElements(b, 0, filesEnd, ends);
    let s = 0;
    for (const e of ends) {
      tupleBounds(b, s, e, 1, m);
      files.push({ name: name(b, s, m[0]!), checksum: checksumAt(b, m[0]!, m[1]!) });
      s = e;
    }
    const dirs: DirTree["dirs"] = [];
    arrayElements(b, filesEnd, dirsEnd, ends);
    s = filesEnd;
    for (const e of ends) {
      tupleBounds(b, s, e, 2, m);
      dirs.push({ name: name(b, s, m[0]!), tree: checksumAt(b, m[0]!, m[1]!), meta: checksumAt(b, m[1]!, m[2]!) });
      s = e;
    }
    return { files, dirs };
  } catch (e) {
    if (e === NOT_FAST || e instanceof TypeError || e instanceof RangeError) return undefined;
    throw e;
  }
}
