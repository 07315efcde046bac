// OSTree stores some integers big-endian inside little-endian GVariants
// (uid/gid/mode, commit timestamps); these convert between the two.

export function bswap16(v: number): number {
  return ((v & 0xff) << 8) | ((v >>> 8) & 0xff);
}

export function bswap32(v: number): number {
  return (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | ((v >>> 24) & 0xff)) >>> 0;
}

export function bswap64(v: bigint): bigint {
  let out = 0n;
  let x = BigInt.asUintN(64, v);
  for (let i = 0; i < 8; i++) {
    out = (out << 8n) | (x & 0xffn);
    x >>= 8n;
  }
  return out;
}
