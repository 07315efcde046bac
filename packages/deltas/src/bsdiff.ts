/**
 * bsdiff patch generation, producing the raw stream that ostree's vendored
 * bspatch (mendsley/bsdiff 4.3, the static-delta `B` opcode) reads: no
 * header, no bzip2 — a sequence of controls `x, y, z` (8-byte sign-magnitude
 * little-endian), each followed by `x` diff bytes and `y` extra bytes.
 *
 * The matching loop is Colin Percival's, ported statement for statement from
 * the bsdiff.c ostree 2022.7 ships, so on the same inputs the output is
 * byte-identical to ostree's. Only the suffix sort differs (SA-IS instead of
 * qsufsort); both yield the same suffix array.
 *
 * Memory: the suffix array takes 4 bytes per old byte (4·(old+1)); SA-IS adds
 * one type bit per old byte plus, while recursing, up to 4 bytes of buckets
 * per old byte; the search may add 2 bytes per old byte of suffix keys (see
 * suffixKeys); the patch is new.length + 24 bytes per control (grown by
 * 1.5×). Budget 8·old + 2·new beyond the two inputs (ostree's qsufsort needs
 * 16·old + new).
 */
import { DeltaLimitError } from "./errors.js";
import { MAX_SUFFIX_ARRAY_INPUT, sais } from "./sais.js";

export interface BsdiffOptions {
  /** Refuse when old.length + new.length exceeds this (bytes). */
  maxInputSize?: number;
}

/** Extra bytes per old byte at peak, for memory budgeting (see module doc). */
export const BSDIFF_BYTES_PER_OLD_BYTE = 8;
/** Extra bytes per new byte at peak (the patch buffer). */
export const BSDIFF_BYTES_PER_NEW_BYTE = 2;

/** Estimated peak working memory of `bsdiff(old, new)` beyond its inputs. */
export function bsdiffMemoryEstimate(oldSize: number, newSize: number): number {
  return Math.ceil(BSDIFF_BYTES_PER_OLD_BYTE * oldSize + BSDIFF_BYTES_PER_NEW_BYTE * newSize) + 4096;
}

/** Writes `v` as bsdiff's 8-byte sign-magnitude little-endian integer. */
export function writeOfft(buf: Uint8Array, at: number, v: number): void {
  const y = v < 0 ? -v : v;
  const lo = y % 0x1_0000_0000;
  const hi = (y - lo) / 0x1_0000_0000;
  buf[at] = lo & 0xff;
  buf[at + 1] = (lo >>> 8) & 0xff;
  buf[at + 2] = (lo >>> 16) & 0xff;
  buf[at + 3] = lo >>> 24;
  buf[at + 4] = hi & 0xff;
  buf[at + 5] = (hi >>> 8) & 0xff;
  buf[at + 6] = (hi >>> 16) & 0xff;
  buf[at + 7] = ((hi >>> 24) & 0x7f) | (v < 0 ? 0x80 : 0);
}

export class Sink {
  buf: Uint8Array;
  len = 0;
  constructor(capacity: number) {
    this.buf = new Uint8Array(capacity);
  }
  reserve(extra: number): void {
    const need = this.len + extra;
    if (need <= this.buf.length) return;
    const next = new Uint8Array(Math.max(need, Math.floor(this.buf.length * 1.5) + 1024));
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }
  result(): Uint8Array {
    // Hand back an exact-size buffer unless trimming would cost a large copy for little gain.
    const slack = this.buf.length - this.len;
    return slack > 65536 && slack > this.len >> 4 ? this.buf.slice(0, this.len) : this.buf.subarray(0, this.len);
  }
}

/** Generates a bsdiff patch turning `oldBuf` into `newBuf`. */
export function bsdiff(oldBuf: Uint8Array, newBuf: Uint8Array, options: BsdiffOptions = {}): Uint8Array {
  checkBsdiffInputs(oldBuf.length, newBuf.length, options);
  return bsdiffCore(oldBuf, newBuf);
}

export function checkBsdiffInputs(oldsize: number, newsize: number, options: BsdiffOptions = {}): void {
  const cap = options.maxInputSize;
  if (cap !== undefined && oldsize + newsize > cap) {
    throw new DeltaLimitError(`bsdiff: inputs of ${oldsize} + ${newsize} bytes exceed maxInputSize ${cap}`);
  }
  if (oldsize >= MAX_SUFFIX_ARRAY_INPUT) {
    throw new DeltaLimitError(`bsdiff: old input of ${oldsize} bytes exceeds the suffix array limit ${MAX_SUFFIX_ARRAY_INPUT}`);
  }
}

/**
 * Arrays a bsdiff worker keeps from job to job (grown, never shrunk), so its
 * largest suffix array is allocated once instead of per pair: per-pair
 * allocations of up to 4·old bytes left the allocator's arenas fragmented
 * and the process RSS far above the live data.
 */
export interface BsdiffScratch {
  I: Int32Array;
  keys: Uint16Array;
}

/**
 * The matching loop, inputs already checked. It references only `Sink`,
 * `search`, `suffixKeys`, `prefixBuckets`, `writeOfft` and `sais` (and sais'
 * helpers), never module state,
 * so bsdiff-pool.ts can rebuild it inside a worker from its source text.
 */
export function bsdiffCore(oldBuf: Uint8Array, newBuf: Uint8Array, scratch?: BsdiffScratch): Uint8Array {
  const oldsize = oldBuf.length;
  const newsize = newBuf.length;
  // I[0] is the empty suffix, as in qsufsort; I[1..] the sorted suffixes.
  let I: Int32Array;
  if (scratch) {
    if (scratch.I.length < oldsize + 1) scratch.I = new Int32Array(oldsize + 1);
    I = scratch.I.subarray(0, oldsize + 1);
  } else {
    I = new Int32Array(oldsize + 1);
  }
  I[0] = oldsize;
  sais(oldBuf, I.subarray(1), oldsize, 256);
  const buckets = prefixBuckets(oldBuf);
  // The suffix keys cost one random pass over old (2 bytes per old byte); they pay off only
  // where bsdiff searches at most positions (compressed or unrelated content), so they are
  // built once the searches outnumber a quarter of the old bytes.
  let keys: Uint16Array = new Uint16Array(0);
  let shorts: Int32Array = new Int32Array(4).fill(-1);
  let searches = 0;
  const keysAfter = Math.max(1024, oldsize >>> 2);
  const found = new Int32Array(1);

  // A patch is the new file plus 24 bytes per control: 1/16 of headroom avoids growing (a
  // 1.5× copy) for all but control-dense patches.
  const sink = new Sink(newsize + (newsize >>> 4) + 24 * 64);
  const old = oldBuf;
  const nw = newBuf;

  let scan = 0;
  let len = 0;
  let pos = 0;
  let lastscan = 0;
  let lastpos = 0;
  let lastoffset = 0;
  while (scan < newsize) {
    let oldscore = 0;
    let scsc: number;
    for (scsc = scan += len; scan < newsize; scan++) {
      if (++searches === keysAfter) {
        if (scratch) {
          if (scratch.keys.length < oldsize + 1) scratch.keys = new Uint16Array(oldsize + 1);
          keys = scratch.keys.subarray(0, oldsize + 1);
        } else {
          keys = new Uint16Array(oldsize + 1);
        }
        shorts = suffixKeys(I, old, keys);
      }
      len = search(I, old, nw, scan, oldsize, found, buckets, keys, shorts);
      pos = found[0]!;

      for (; scsc < scan + len; scsc++) {
        if (scsc + lastoffset < oldsize && old[scsc + lastoffset] === nw[scsc]) oldscore++;
      }
      if ((len === oldscore && len !== 0) || len > oldscore + 8) break;
      if (scan + lastoffset < oldsize && old[scan + lastoffset] === nw[scan]) oldscore--;
    }

    if (len !== oldscore || scan === newsize) {
      let s = 0;
      let Sf = 0;
      let lenf = 0;
      for (let i = 0; lastscan + i < scan && lastpos + i < oldsize; ) {
        if (old[lastpos + i] === nw[lastscan + i]) s++;
        i++;
        if (s * 2 - i > Sf * 2 - lenf) {
          Sf = s;
          lenf = i;
        }
      }

      let lenb = 0;
      if (scan < newsize) {
        s = 0;
        let Sb = 0;
        for (let i = 1; scan >= lastscan + i && pos >= i; i++) {
          if (old[pos - i] === nw[scan - i]) s++;
          if (s * 2 - i > Sb * 2 - lenb) {
            Sb = s;
            lenb = i;
          }
        }
      }

      if (lastscan + lenf > scan - lenb) {
        const overlap = lastscan + lenf - (scan - lenb);
        s = 0;
        let Ss = 0;
        let lens = 0;
        for (let i = 0; i < overlap; i++) {
          if (nw[lastscan + lenf - overlap + i] === old[lastpos + lenf - overlap + i]) s++;
          if (nw[scan - lenb + i] === old[pos - lenb + i]) s--;
          if (s > Ss) {
            Ss = s;
            lens = i + 1;
          }
        }
        lenf += lens - overlap;
        lenb -= lens;
      }

      const extra = scan - lenb - (lastscan + lenf);
      sink.reserve(24 + lenf + extra);
      const out = sink.buf;
      let o = sink.len;
      writeOfft(out, o, lenf);
      writeOfft(out, o + 8, extra);
      writeOfft(out, o + 16, pos - lenb - (lastpos + lenf));
      o += 24;
      for (let i = 0; i < lenf; i++) out[o + i] = nw[lastscan + i]! - old[lastpos + i]!;
      o += lenf;
      out.set(nw.subarray(lastscan + lenf, lastscan + lenf + extra), o);
      sink.len = o + extra;

      lastscan = scan - lenb;
      lastpos = pos - lenb;
      lastoffset = pos - scan;
    }
  }
  return sink.result();
}

/**
 * Where each two-byte prefix starts in bsdiff's suffix array I (I[0] = the
 * empty suffix, then the sorted suffixes): `B[k]` is the index of the first
 * suffix whose first two bytes, as a big-endian 16-bit key, are ≥ k; the
 * one-byte suffix (the last byte, c) sorts just before the keys c·256…
 * `B[65536]` = oldsize + 1. 256 KiB, one pass over the old file.
 */
export function prefixBuckets(old: Uint8Array): Int32Array {
  const n = old.length;
  const B = new Int32Array(65537);
  for (let i = 0; i + 1 < n; i++) B[((old[i]! << 8) | old[i + 1]!) + 1]!++;
  const last = n > 0 ? old[n - 1]! << 8 : 65537;
  let below = 0;
  for (let k = 0; k <= 65536; k++) {
    below += B[k]!;
    B[k] = below + 1 + (k >= last ? 1 : 0);
  }
  return B;
}

/**
 * Bytes 2–3 of every suffix in suffix-array order, as a big-endian 16-bit key
 * (`keys[x]` for suffix I[x]), so a probe inside the query's two-byte bucket
 * is usually decided by one read of this array instead of two dependent
 * cache misses (I[x], then old[I[x]]). Suffixes shorter than 4 bytes have no
 * key: their indexes in I are returned (-1 for none) and always compared in full.
 */
export function suffixKeys(I: Int32Array, old: Uint8Array, keys: Uint16Array): Int32Array {
  const oldsize = old.length;
  const shorts = new Int32Array(4).fill(-1);
  for (let x = 0; x < I.length; x++) {
    const ix = I[x]!;
    if (ix + 4 <= oldsize) keys[x] = (old[ix + 2]! << 8) | old[ix + 3]!;
    else shorts[oldsize - ix] = x;
  }
  return shorts;
}

/**
 * bsdiff's binary search for the longest match of new[scan..] among the
 * suffixes I[0..oldsize]; same probes and decisions as the recursive C
 * version, so the same result. Two shortcuts that cannot change an outcome:
 * the common prefix already known to be shared by both bounds is skipped,
 * and a probe outside the query's two-byte bucket (`buckets`, from
 * prefixBuckets) is decided without reading memory — its first two bytes
 * already order it — and one inside it by its bytes 2–3 (`keys`, from
 * suffixKeys) unless those equal the query's, which saves most of the
 * cache misses of a search. Either way the probe's outcome and common
 * prefix length are what the full comparison would give.
 */
export function search(I: Int32Array, old: Uint8Array, nw: Uint8Array, scan: number, oldsize: number, found: Int32Array, buckets: Int32Array, keys: Uint16Array, shorts: Int32Array): number {
  const nsize = nw.length - scan;
  let st = 0;
  let en = oldsize;
  let lcpSt = 0;
  let lcpEn = 0;
  // Whether lcpSt / lcpEn are the exact common prefix (bounded by the shorter length) of
  // the query and that bound, not just a lower bound: then the final extension, which
  // reads I and old at two random places each, is skipped. I[0] is the empty suffix.
  let exactSt = true;
  let exactEn = false;
  // [lo, hi): the suffixes sharing the query's first two bytes. The one-byte suffix is not
  // ordered by a two-byte key (it may be a prefix of the query), so it is always compared.
  let lo = 0;
  let hi = oldsize + 1;
  let single = -1;
  // The query's bytes 2–3, or -1 when it is shorter than 4 bytes or there are no keys.
  let q2 = -1;
  if (nsize >= 2 && oldsize >= 2) {
    const q = (nw[scan]! << 8) | nw[scan + 1]!;
    lo = buckets[q]!;
    hi = buckets[q + 1]!;
    single = buckets[old[oldsize - 1]! << 8]! - 1;
    if (nsize >= 4 && keys.length > 0) q2 = (nw[scan + 2]! << 8) | nw[scan + 3]!;
  }
  while (en - st >= 2) {
    const x = st + ((en - st) >>> 1);
    let k = lcpSt < lcpEn ? lcpSt : lcpEn;
    if (x !== single) {
      if (x < lo) {
        st = x;
        lcpSt = 0;
        exactSt = false;
        continue;
      }
      if (x >= hi) {
        en = x;
        lcpEn = 0;
        exactEn = false;
        continue;
      }
      // In the bucket, so bytes 0–1 are equal; a suffix of ≥ 4 bytes and a query of ≥ 4
      // bytes then share exactly 2 or 3 bytes when their keys differ, else at least 4.
      if (q2 >= 0 && x !== shorts[2] && x !== shorts[3]) {
        const kx = keys[x]!;
        if (kx !== q2) {
          const lcp = (kx ^ q2) > 0xff ? 2 : 3;
          if (kx < q2) {
            st = x;
            lcpSt = lcp;
            exactSt = true;
          } else {
            en = x;
            lcpEn = lcp;
            exactEn = true;
          }
          continue;
        }
        if (k < 4) k = 4;
      }
    }
    const ix = I[x]!;
    const lim = Math.min(oldsize - ix, nsize);
    while (k < lim && old[ix + k] === nw[scan + k]) k++;
    if (k < lim && old[ix + k]! < nw[scan + k]!) {
      st = x;
      lcpSt = k;
      exactSt = true;
    } else {
      en = x;
      lcpEn = k;
      exactEn = true;
    }
  }
  let x = lcpSt;
  if (!exactSt) {
    const a = I[st]!;
    const xl = Math.min(oldsize - a, nsize);
    while (x < xl && old[a + x] === nw[scan + x]) x++;
  }
  let y = lcpEn;
  if (!exactEn) {
    const b = I[en]!;
    const yl = Math.min(oldsize - b, nsize);
    while (y < yl && old[b + y] === nw[scan + y]) y++;
  }
  found[0] = x > y ? I[st]! : I[en]!;
  return x > y ? x : y;
}
