/**
 * The iteration order of a GLib 2.74 GHashTable with string keys. ostree
 * builds several a{sv} dictionaries (summary metadata, delta indexes) through
 * GVariantDict, whose serialized order is its hash table's bucket order, so
 * byte-identical files need the same layout: g_str_hash (djb2 over signed
 * chars), bucket = hash*11 mod a prime, quadratic probing, GLib's resize rule.
 * ostree also prints some listings (refs, aliases) straight out of such a
 * table, so the CLI replays them through the same map.
 */
const MIN_SHIFT = 3;
const PRIME_MOD = [1, 2, 3, 7, 13, 31, 61, 127, 251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071, 262139, 524287, 1048573, 2097143, 4194301, 8388593, 16777213, 33554393, 67108859, 134217689, 268435399, 536870909, 1073741789, 2147483647];

const utf8 = new TextEncoder();

export function gStrHash(s: string): number {
  let h = 5381;
  for (const b of utf8.encode(s)) h = (Math.imul(h, 33) + (b > 127 ? b - 256 : b)) >>> 0;
  return h < 2 ? 2 : h;
}

/**
 * Insert-only string-keyed map that iterates like GHashTable (what GVariantDict needs).
 * `hash` replaces g_str_hash for tables keyed by other GLib hashes over a string
 * encoding of the key (ostree_collection_ref_hash); a result below 2 becomes 2, as in GHashTable.
 */
export class GStrHashMap<V> {
  constructor(private readonly hash: (key: string) => number = gStrHash) {}

  private hashOf(key: string): number {
    const h = this.hash(key) >>> 0;
    return h < 2 ? 2 : h;
  }

  private shift = MIN_SHIFT;
  private hashes: number[] = new Array<number>(1 << MIN_SHIFT).fill(0);
  private keys: string[] = [];
  private values: V[] = [];
  private nnodes = 0;

  private bucket(hash: number): number {
    return (Math.imul(hash, 11) >>> 0) % PRIME_MOD[this.shift]!;
  }

  set(key: string, value: V): this {
    const hash = this.hashOf(key);
    const mask = this.hashes.length - 1;
    let i = this.bucket(hash);
    for (let step = 1; this.hashes[i] !== 0; step++) {
      if (this.hashes[i] === hash && this.keys[i] === key) {
        this.values[i] = value;
        return this;
      }
      i = (i + step) & mask;
    }
    this.hashes[i] = hash;
    this.keys[i] = key;
    this.values[i] = value;
    this.nnodes++;
    // No deletions here, so "occupied" equals the node count.
    const size = this.hashes.length;
    if (size <= this.nnodes + Math.floor(this.nnodes / 16)) this.grow();
    return this;
  }

  private grow(): void {
    const oldSize = this.hashes.length;
    let n = Math.trunc(this.nnodes * 1.333);
    let shift = 0;
    for (; n; n >>= 1) shift++;
    this.shift = Math.max(shift, MIN_SHIFT);
    const size = 1 << this.shift;
    const mask = size - 1;
    for (let i = oldSize; i < size; i++) this.hashes[i] = 0;
    const placed = new Uint8Array(size);
    // GLib relocates in place: walk old buckets, evicting occupants of target slots as it goes.
    for (let i = 0; i < oldSize; i++) {
      let hash = this.hashes[i]!;
      if (hash === 0 || placed[i]) continue;
      this.hashes[i] = 0;
      let key = this.keys[i]!;
      let value = this.values[i]!;
      for (;;) {
        let j = this.bucket(hash);
        for (let step = 1; placed[j]; step++) j = (j + step) & mask;
        placed[j] = 1;
        const evicted = this.hashes[j]!;
        this.hashes[j] = hash;
        if (evicted === 0) {
          this.keys[j] = key;
          this.values[j] = value;
          break;
        }
        hash = evicted;
        [key, this.keys[j]] = [this.keys[j]!, key];
        [value, this.values[j]] = [this.values[j]!, value];
      }
    }
  }

  has(key: string): boolean {
    return this.slot(key) >= 0;
  }

  get(key: string): V | undefined {
    const i = this.slot(key);
    return i < 0 ? undefined : this.values[i];
  }

  get size(): number {
    return this.nnodes;
  }

  private slot(key: string): number {
    const hash = this.hashOf(key);
    const mask = this.hashes.length - 1;
    let i = this.bucket(hash);
    for (let step = 1; this.hashes[i] !== 0; step++) {
      if (this.hashes[i] === hash && this.keys[i] === key) return i;
      i = (i + step) & mask;
    }
    return -1;
  }

  /** Entries in GHashTableIter order. */
  entries(): Array<[string, V]> {
    const out: Array<[string, V]> = [];
    for (let i = 0; i < this.hashes.length; i++) if (this.hashes[i] !== 0) out.push([this.keys[i]!, this.values[i]!]);
    return out;
  }
}
