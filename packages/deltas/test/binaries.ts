import { existsSync, readFileSync } from "node:fs";

/** A real ELF binary of this machine (first `max` bytes), for tests that want realistic content. */
export function realBinary(max = 1 << 20): Uint8Array {
  const path = ["/usr/bin/ostree", "/usr/bin/git", "/usr/bin/python3", process.execPath].find(existsSync)!;
  const buf = readFileSync(path);
  return new Uint8Array(buf.buffer, buf.byteOffset, Math.min(buf.length, max));
}
