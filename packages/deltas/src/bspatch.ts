/**
 * bspatch for the raw bsdiff stream of ostree's static-delta `B` opcode
 * (see bsdiff.ts for the format). The output size is declared by the caller
 * (the preceding OPEN's size); the patch can neither grow it nor read or
 * write outside `old`, `patch` or the output.
 */
import { DeltaFormatError } from "./errors.js";

const INT_MAX = 0x7fff_ffff;

export interface BspatchOptions {
  /**
   * Accept what mendsley's bspatch (and so ostree 2022.7) accepts: diff
   * bytes whose old position lies outside `old` are added to nothing, seeks
   * may leave `old`, and bytes after the last control are ignored. Off by
   * default: no generator emits such patches, so they are treated as hostile.
   */
  lenient?: boolean;
  /** Name used in error messages (e.g. the object being patched). */
  label?: string;
}

/** Reads bsdiff's 8-byte sign-magnitude integer; exact up to 2^53. */
export function readOfft(buf: Uint8Array, at: number): number {
  const lo = (buf[at]! | (buf[at + 1]! << 8) | (buf[at + 2]! << 16) | (buf[at + 3]! << 24)) >>> 0;
  const hi = (buf[at + 4]! | (buf[at + 5]! << 8) | (buf[at + 6]! << 16) | ((buf[at + 7]! & 0x7f) << 24)) >>> 0;
  const mag = hi * 0x1_0000_0000 + lo;
  return buf[at + 7]! & 0x80 && mag !== 0 ? -mag : mag;
}

/**
 * Adds `n` diff bytes from `patch[p…]` onto `out[o…]` (which already holds
 * the old bytes). bsdiff diff data is mostly zero, so it is scanned a 32-bit
 * word at a time and only non-zero words are added byte by byte.
 */
function addDiff(out: Uint8Array, o: number, patch: Uint8Array, p: number, n: number): void {
  let i = 0;
  const base = patch.byteOffset + p;
  for (; i < n && ((base + i) & 3) !== 0; i++) {
    const d = patch[p + i]!;
    if (d !== 0) out[o + i] = out[o + i]! + d;
  }
  const words = (n - i) >>> 2;
  if (words > 0) {
    const w = new Uint32Array(patch.buffer, base + i, words);
    for (let k = 0; k < words; k++) {
      if (w[k] === 0) continue;
      const j = i + k * 4;
      for (let t = j; t < j + 4; t++) {
        const d = patch[p + t]!;
        if (d !== 0) out[o + t] = out[o + t]! + d;
      }
    }
    i += words * 4;
  }
  for (; i < n; i++) {
    const d = patch[p + i]!;
    if (d !== 0) out[o + i] = out[o + i]! + d;
  }
}

/**
 * Applies `patch` to `old`, producing exactly `newSize` bytes, in `out` when
 * given (its length must be `newSize`; the caller's OPEN buffer, so the
 * object is not allocated twice).
 */
export function bspatch(old: Uint8Array, patch: Uint8Array, newSize: number, options: BspatchOptions = {}, out?: Uint8Array): Uint8Array {
  const lenient = options.lenient === true;
  const what = options.label === undefined ? "bsdiff patch" : `bsdiff patch for ${options.label}`;
  if (!Number.isSafeInteger(newSize) || newSize < 0) {
    throw new DeltaFormatError(`${what}: invalid declared output size ${newSize}`);
  }
  const oldsize = old.length;
  const plen = patch.length;
  if (out !== undefined && out.length !== newSize) throw new RangeError(`bspatch: output buffer is ${out.length} bytes, declared size ${newSize}`);
  // Every output byte is written below (diff or extra) before a successful return.
  out ??= Buffer.allocUnsafe(newSize);
  const fail = (ctl: number, at: number, msg: string): never => {
    throw new DeltaFormatError(`${what}: control #${ctl} at patch offset ${at}: ${msg}`);
  };

  let p = 0;
  let oldpos = 0;
  let newpos = 0;
  for (let ctl = 0; newpos < newSize; ctl++) {
    const at = p;
    if (plen - p < 24) fail(ctl, at, `truncated control (${plen - p} of 24 bytes left)`);
    const x = readOfft(patch, p);
    const y = readOfft(patch, p + 8);
    const z = readOfft(patch, p + 16);
    p += 24;

    if (x < 0 || x > INT_MAX) fail(ctl, at, `diff length ${x} out of range`);
    if (y < 0 || y > INT_MAX) fail(ctl, at, `extra length ${y} out of range`);
    if (newpos + x > newSize) fail(ctl, at, `diff length ${x} at output ${newpos} overruns declared size ${newSize}`);
    if (plen - p < x) fail(ctl, at, `truncated diff data (${x} bytes needed, ${plen - p} left)`);
    if (x > 0 && (oldpos < 0 || oldpos + x > oldsize)) {
      if (!lenient) fail(ctl, at, `diff reads old [${oldpos}, ${oldpos + x}) outside old size ${oldsize}`);
      for (let i = 0; i < x; i++) {
        const o = oldpos + i;
        out[newpos + i] = o >= 0 && o < oldsize ? patch[p + i]! + old[o]! : patch[p + i]!;
      }
    } else if (x > 0) {
      out.set(old.subarray(oldpos, oldpos + x), newpos);
      addDiff(out, newpos, patch, p, x);
    }
    p += x;
    newpos += x;
    oldpos += x;

    if (newpos + y > newSize) fail(ctl, at, `extra length ${y} at output ${newpos} overruns declared size ${newSize}`);
    if (plen - p < y) fail(ctl, at, `truncated extra data (${y} bytes needed, ${plen - p} left)`);
    out.set(patch.subarray(p, p + y), newpos);
    p += y;
    newpos += y;

    oldpos += z;
    if (!Number.isSafeInteger(oldpos)) fail(ctl, at, `seek ${z} overflows the old position`);
    if (!lenient && (oldpos < 0 || oldpos > oldsize)) fail(ctl, at, `seek ${z} moves old position to ${oldpos}, outside [0, ${oldsize}]`);
  }
  if (!lenient && p !== plen) {
    throw new DeltaFormatError(`${what}: ${plen - p} trailing bytes after the last control (patch offset ${p})`);
  }
  return out;
}
