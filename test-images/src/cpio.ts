import { gzipSync } from "node:zlib";

/** One member of a newc cpio archive. */
export interface CpioEntry {
  /** Path without leading slash, e.g. "bin/busybox". */
  name: string;
  type: "file" | "dir" | "symlink";
  mode: number;
  /** File content, or the symlink target for symlinks. */
  data?: Buffer | string;
}

const TYPE_BITS = { file: 0o100000, dir: 0o040000, symlink: 0o120000 } as const;

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

function header(ino: number, mode: number, nlink: number, mtime: number, size: number, nameSize: number): string {
  const f = [ino, mode, 0, 0, nlink, mtime, size, 0, 0, 0, 0, nameSize, 0];
  return `070701${f.map((v) => v.toString(16).padStart(8, "0")).join("")}`;
}

/**
 * A "newc" cpio archive (the initramfs format) with fixed inode numbers,
 * uid/gid 0 and one mtime, in the given order: same input, same bytes.
 */
export function cpioNewc(entries: CpioEntry[], mtime: number): Buffer {
  const parts: Buffer[] = [];
  const push = (ino: number, mode: number, nlink: number, name: string, data: Buffer) => {
    const nameBuf = Buffer.from(`${name}\0`);
    const h = Buffer.from(header(ino, mode, nlink, mtime, data.length, nameBuf.length), "ascii");
    parts.push(h, nameBuf, Buffer.alloc(pad4(h.length + nameBuf.length)), data, Buffer.alloc(pad4(data.length)));
  };
  entries.forEach((e, i) => {
    const data = e.type === "dir" ? Buffer.alloc(0) : Buffer.isBuffer(e.data) ? e.data : Buffer.from(e.data ?? "");
    push(i + 1, TYPE_BITS[e.type] | (e.mode & 0o7777), e.type === "dir" ? 2 : 1, e.name, data);
  });
  push(0, 0, 1, "TRAILER!!!", Buffer.alloc(0));
  return Buffer.concat(parts);
}

/** gzip with a zero mtime in the header, as initramfs-tools' compressors produce it. */
export function gzipDeterministic(data: Buffer): Buffer {
  return gzipSync(data, { level: 9 });
}
