/**
 * Iteration order of a GLib GHashTable keyed by g_str_hash (GLib 2.74). ostree
 * prints several listings (refs, aliases) straight out of such a table, so
 * byte-identical output means replaying its bucket layout: open addressing
 * with quadratic probing, index = hash*11 mod prime, grow/shrink as GLib does.
 */
const MIN_SHIFT = 3;
const PRIME_MOD = [1, 2, 3, 7, 13, 31, 61, 127, 251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071, 262139, 524287, 1048573, 2097143, 4194301, 8388593, 16777213, 33554393, 67108859, 134217689, 268435399, 536870909, 1073741789, 2147483647];

const utf8 = new TextEncoder();

/** g_str_hash: djb2 over *signed* chars. */
export function gStrHash(s: string): number {
  let h = 5381;
  for (const b of utf8.encode(s)) h = (Math.imul(h, 33) + (b >= 128 ? b - 256 : b)) >>> 0;
  return h;
}

export class GHashOrder<V> {
  private size = 1 << MIN_SHIFT;
  private mod = PRIME_MOD[MIN_SHIFT]!;
  private mask = this.size - 1;
  private hashes: number[] = new Array(this.size).fill(0);
  private keys: (string | undefined)[] = new Array(this.size);
  private values: (V | undefined)[] = new Array(this.size);
  private nnodes = 0;
  private noccupied = 0;

  private index(hash: number): number {
    return (Math.imul(hash, 11) >>> 0) % this.mod;
  }

  /** g_hash_table_insert: a present key keeps its slot and gets the new value. */
  insert(key: string, value: V): void {
    let hash = gStrHash(key);
    if (hash < 2) hash = 2;
    let i = this.index(hash);
    let step = 0;
    while (this.hashes[i] !== 0) {
      if (this.hashes[i] === hash && this.keys[i] === key) {
        this.values[i] = value;
        return;
      }
      step++;
      i = (i + step) & this.mask;
    }
    this.hashes[i] = hash;
    this.keys[i] = key;
    this.values[i] = value;
    this.nnodes++;
    this.noccupied++;
    this.maybeResize();
  }

  has(key: string): boolean {
    return this.keys.includes(key);
  }

  get(key: string): V | undefined {
    const i = this.keys.indexOf(key);
    return i < 0 ? undefined : this.values[i];
  }

  get count(): number {
    return this.nnodes;
  }

  private maybeResize(): void {
    const size = this.size;
    if ((size > this.nnodes * 4 && size > 1 << MIN_SHIFT) || size <= this.noccupied + Math.floor(this.noccupied / 16)) this.resize();
  }

  private resize(): void {
    const oldSize = this.size;
    let n = Math.trunc(this.nnodes * 1.333);
    let shift = 0;
    while (n) {
      n >>= 1;
      shift++;
    }
    shift = Math.max(shift, MIN_SHIFT);
    this.size = 1 << shift;
    this.mod = PRIME_MOD[shift]!;
    this.mask = this.size - 1;
    for (let i = oldSize; i < this.size; i++) this.hashes[i] = 0;
    const moved = new Uint8Array(Math.max(this.size, oldSize));
    for (let i = 0; i < oldSize; i++) {
      let nodeHash = this.hashes[i]!;
      if (nodeHash < 2) {
        this.hashes[i] = 0;
        continue;
      }
      if (moved[i]) continue;
      this.hashes[i] = 0;
      let key = this.keys[i];
      let value = this.values[i];
      for (;;) {
        let j = this.index(nodeHash);
        let step = 0;
        while (moved[j]) {
          step++;
          j = (j + step) & this.mask;
        }
        moved[j] = 1;
        const replaced = this.hashes[j]!;
        this.hashes[j] = nodeHash;
        if (replaced < 2) {
          this.keys[j] = key;
          this.values[j] = value;
          break;
        }
        nodeHash = replaced;
        [key, this.keys[j]] = [this.keys[j], key];
        [value, this.values[j]] = [this.values[j], value];
      }
    }
    this.hashes.length = this.size;
    this.keys.length = this.size;
    this.values.length = this.size;
    this.noccupied = this.nnodes;
  }

  /** Entries in GHashTableIter order. */
  entries(): Array<[string, V]> {
    const out: Array<[string, V]> = [];
    for (let i = 0; i < this.size; i++) if (this.hashes[i]! >= 2) out.push([this.keys[i]!, this.values[i] as V]);
    return out;
  }
}
