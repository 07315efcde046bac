/**
 * Linear-time suffix array construction (SA-IS, Nong–Zhang–Chan 2009).
 *
 * The text has an implicit sentinel smaller than every symbol, so a suffix
 * that is a proper prefix of another sorts first — the order bsdiff's
 * qsufsort produces. The reduced problem is stored inside the output array
 * (names at `m + pos/2`, then compacted to its tail), so the only extra
 * memory is one type *bit* per symbol and two bucket arrays per level:
 * level 0 needs n/8 bytes beyond the 4n-byte result; deeper levels at most
 * n/16 type bytes plus 4·(n/2)·2 bytes of buckets, all freed on return.
 *
 * The induction scans, where nearly all the time goes, read the type bits
 * only when two neighbouring symbols are equal: a suffix's type follows from
 * comparing its first symbol with its successor's, which sit in the same
 * cache line, so each step costs one random memory access instead of two.
 */

type Text = Uint8Array | Int32Array;

/** Maximum text length: positions must fit in an Int32Array. */
export const MAX_SUFFIX_ARRAY_INPUT = 0x7fff_fffe;

/**
 * Suffix array of `text`: `out[i]` is the start of the i-th smallest suffix.
 * `out` (length ≥ text.length) may be supplied to avoid an allocation; only
 * its first text.length entries are written.
 */
export function suffixArray(text: Uint8Array, out?: Int32Array): Int32Array {
  const n = text.length;
  if (n > MAX_SUFFIX_ARRAY_INPUT) throw new RangeError(`suffixArray: input of ${n} bytes exceeds ${MAX_SUFFIX_ARRAY_INPUT}`);
  const sa = out ?? new Int32Array(n);
  if (sa.length < n) throw new RangeError(`suffixArray: output array has ${sa.length} slots, need ${n}`);
  sais(text, sa.length === n ? sa : sa.subarray(0, n), n, 256);
  return sa;
}

export function bucketBounds(count: Int32Array, bkt: Int32Array, k: number, end: boolean): void {
  let sum = 0;
  for (let c = 0; c < k; c++) {
    sum += count[c]!;
    bkt[c] = end ? sum : sum - count[c]!;
  }
}

export function induce(T: Text, SA: Int32Array, t: Uint8Array, count: Int32Array, bkt: Int32Array, n: number, k: number): void {
  // L-type suffixes, left to right; the virtual sentinel induces n-1 first. Only LMS and
  // L-type suffixes are in SA during this scan, and the predecessor j of either is L-type
  // exactly when T[j] >= T[j+1] (an LMS suffix's predecessor always is, with T[j] > T[j+1]).
  bucketBounds(count, bkt, k, false);
  SA[bkt[T[n - 1]!]!++] = n - 1;
  for (let i = 0; i < n; i++) {
    const p = SA[i]!;
    if (p <= 0) continue;
    const c = T[p - 1]!;
    if (c >= T[p]!) SA[bkt[c]!++] = p - 1;
  }
  // S-type suffixes, right to left: the predecessor j is S-type when T[j] < T[j+1], L-type
  // when greater, and only for equal symbols its type bit decides.
  bucketBounds(count, bkt, k, true);
  for (let i = n - 1; i >= 0; i--) {
    const p = SA[i]!;
    if (p <= 0) continue;
    const j = p - 1;
    const c = T[j]!;
    const d = T[p]!;
    if (c < d || (c === d && ((t[j >> 3]! >> (j & 7)) & 1) === 1)) SA[--bkt[c]!] = j;
  }
}

export function sais(T: Text, SA: Int32Array, n: number, k: number): void {
  if (n === 0) return;
  if (n === 1) {
    SA[0] = 0;
    return;
  }
  // Bit i of t is 1 for an S-type suffix, 0 for L-type; the last symbol is L (sentinel follows).
  const t = new Uint8Array((n + 7) >> 3);
  let nextS = 0;
  for (let i = n - 2; i >= 0; i--) {
    const a = T[i]!;
    const b = T[i + 1]!;
    nextS = a < b || (a === b && nextS === 1) ? 1 : 0;
    if (nextS === 1) t[i >> 3]! |= 1 << (i & 7);
  }
  const count = new Int32Array(k);
  for (let i = 0; i < n; i++) count[T[i]!]!++;
  const bkt = new Int32Array(k);

  // Stage 1: sort LMS substrings by induction from arbitrarily ordered LMS suffixes.
  // (An LMS position i: bit i set, bit i-1 clear.)
  bucketBounds(count, bkt, k, true);
  SA.fill(-1);
  for (let i = n - 1; i >= 1; i--) {
    if (((t[i >> 3]! >> (i & 7)) & 1) === 1 && ((t[(i - 1) >> 3]! >> ((i - 1) & 7)) & 1) === 0) SA[--bkt[T[i]!]!] = i;
  }
  induce(T, SA, t, count, bkt, n, k);

  let m = 0;
  for (let i = 0; i < n; i++) {
    const p = SA[i]!;
    if (p > 0 && ((t[p >> 3]! >> (p & 7)) & 1) === 1 && ((t[(p - 1) >> 3]! >> ((p - 1) & 7)) & 1) === 0) SA[m++] = p;
  }

  // Name LMS substrings; equal substrings share a name. LMS positions are at
  // least two apart, so pos>>1 gives each a distinct slot in SA[m..n).
  SA.fill(-1, m, n);
  let name = 0;
  let prev = -1;
  for (let i = 0; i < m; i++) {
    const pos = SA[i]!;
    let diff = false;
    for (let d = 0; ; d++) {
      const a = pos + d;
      const b = prev + d;
      if (prev === -1 || a === n || b === n || T[a] !== T[b] || ((t[a >> 3]! >> (a & 7)) & 1) !== ((t[b >> 3]! >> (b & 7)) & 1)) {
        diff = true;
        break;
      }
      if (d > 0 && ((t[a >> 3]! >> (a & 7)) & 1) === 1 && ((t[(a - 1) >> 3]! >> ((a - 1) & 7)) & 1) === 0) break;
    }
    if (diff) {
      name++;
      prev = pos;
    }
    SA[m + (pos >> 1)] = name - 1;
  }
  for (let i = n - 1, j = n - 1; i >= m; i--) {
    const v = SA[i]!;
    if (v >= 0) SA[j--] = v;
  }

  // Stage 2: sort LMS suffixes (recursively if names repeat).
  const s1 = SA.subarray(n - m, n);
  const sa1 = SA.subarray(0, m);
  if (name < m) {
    sais(s1, sa1, m, name);
  } else {
    for (let i = 0; i < m; i++) sa1[s1[i]!] = i;
  }
  for (let i = 1, j = 0; i < n; i++) {
    if (((t[i >> 3]! >> (i & 7)) & 1) === 1 && ((t[(i - 1) >> 3]! >> ((i - 1) & 7)) & 1) === 0) s1[j++] = i;
  }
  for (let i = 0; i < m; i++) sa1[i] = s1[sa1[i]!]!;

  // Stage 3: induce the full order from the sorted LMS suffixes.
  SA.fill(-1, m, n);
  bucketBounds(count, bkt, k, true);
  for (let i = m - 1; i >= 0; i--) {
    const j = SA[i]!;
    SA[i] = -1;
    SA[--bkt[T[j]!]!] = j;
  }
  induce(T, SA, t, count, bkt, n, k);
}
