/**
 * (device, inode) → content checksum of files a checkout hardlinked from the
 * object store. A later commit of a tree built from such a checkout
 * (`commit --link-checkout-speedup`) looks files up here instead of rehashing.
 * Keys use bigint stat fields so large inode numbers stay exact.
 */
export class DevInoCache {
  private readonly map = new Map<string, string>();

  private static key(dev: bigint | number, ino: bigint | number): string {
    return `${BigInt(dev)}:${BigInt(ino)}`;
  }

  set(dev: bigint | number, ino: bigint | number, checksum: string): void {
    this.map.set(DevInoCache.key(dev, ino), checksum);
  }

  /** Checksum of the object hardlinked at (dev, ino), or undefined. */
  get(dev: bigint | number, ino: bigint | number): string | undefined {
    return this.map.get(DevInoCache.key(dev, ino));
  }

  has(dev: bigint | number, ino: bigint | number): boolean {
    return this.map.has(DevInoCache.key(dev, ino));
  }

  get size(): number {
    return this.map.size;
  }

  *entries(): IterableIterator<{ dev: bigint; ino: bigint; checksum: string }> {
    for (const [k, checksum] of this.map) {
      const [dev, ino] = k.split(":");
      yield { dev: BigInt(dev!), ino: BigInt(ino!), checksum };
    }
  }
}
