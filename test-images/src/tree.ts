import { createHash } from "node:crypto";
import { closeSync, lstatSync, openSync, readSync, readdirSync, readlinkSync, lutimesSync, type Stats } from "node:fs";
import { join } from "node:path";

/** One filesystem entry of a tree, as the digest and the benchmarks see it. */
export interface TreeEntry {
  /** Path relative to the tree root, "/"-separated, no leading slash. */
  path: string;
  type: "file" | "dir" | "symlink" | "other";
  /** Permission bits including setuid/setgid/sticky (no file-type bits). */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Symlink target, for symlinks. */
  target?: string;
  dev: number;
  ino: number;
  nlink: number;
}

function entryType(st: Stats): TreeEntry["type"] {
  if (st.isFile()) return "file";
  if (st.isDirectory()) return "dir";
  if (st.isSymbolicLink()) return "symlink";
  return "other";
}

/**
 * Every entry below `root` (root itself excluded), depth-first in byte order of
 * names so the listing never depends on the filesystem's readdir order.
 */
export function walkTree(root: string): TreeEntry[] {
  const out: TreeEntry[] = [];
  const visit = (rel: string): void => {
    const names = readdirSync(rel === "" ? root : join(root, rel)).sort(compareBytes);
    for (const name of names) {
      const p = rel === "" ? name : `${rel}/${name}`;
      const st = lstatSync(join(root, p));
      const type = entryType(st);
      const e: TreeEntry = {
        path: p,
        type,
        mode: st.mode & 0o7777,
        uid: st.uid,
        gid: st.gid,
        size: type === "file" ? st.size : 0,
        dev: st.dev,
        ino: st.ino,
        nlink: st.nlink,
      };
      if (type === "symlink") e.target = readlinkSync(join(root, p));
      out.push(e);
      if (type === "dir") visit(p);
    }
  };
  visit("");
  return out;
}

/** Byte-wise (UTF-8) comparison, the order ostree and `LC_ALL=C sort` use. */
export function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

const CHUNK = 1 << 20;

/** SHA-256 of a file's content, streamed in 1 MiB reads. */
export function fileSha256(path: string): string {
  const h = createHash("sha256");
  const fd = openSync(path, "r");
  try {
    const buf = Buffer.allocUnsafe(CHUNK);
    for (;;) {
      const n = readSync(fd, buf, 0, CHUNK, null);
      if (n === 0) break;
      h.update(n === CHUNK ? buf : buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return h.digest("hex");
}

export interface TreeDigest {
  /** SHA-256 over the canonical listing (see treeDigest). */
  digest: string;
  files: number;
  dirs: number;
  symlinks: number;
  /** Sum of regular file sizes (hardlinked files counted once per path). */
  bytes: number;
}

/**
 * Digest of a tree's content as ostree would commit it: names, types,
 * permission bits, uid/gid, file contents and symlink targets. Mtimes are
 * left out (ostree does not store them) and so is inode identity, so a copy
 * of a tree has the same digest as the original.
 */
export function treeDigest(root: string): TreeDigest {
  const h = createHash("sha256");
  const res: TreeDigest = { digest: "", files: 0, dirs: 0, symlinks: 0, bytes: 0 };
  const contentCache = new Map<string, string>();
  for (const e of walkTree(root)) {
    let payload = "";
    if (e.type === "file") {
      const key = `${e.dev}:${e.ino}`;
      let sum = contentCache.get(key);
      if (sum === undefined) {
        sum = fileSha256(join(root, e.path));
        if (e.nlink > 1) contentCache.set(key, sum);
      }
      payload = sum;
      res.files++;
      res.bytes += e.size;
    } else if (e.type === "symlink") {
      payload = e.target ?? "";
      res.symlinks++;
    } else if (e.type === "dir") {
      res.dirs++;
    }
    h.update(`${e.path}\0${e.type}\0${e.mode.toString(8)}\0${e.uid}\0${e.gid}\0${e.size}\0${payload}\n`);
  }
  res.digest = h.digest("hex");
  return res;
}

/** Sets every entry's mtime/atime (symlinks included, not followed) to `epoch` seconds. */
export function setTreeMtimes(root: string, epoch: number): void {
  for (const e of walkTree(root)) lutimesSync(join(root, e.path), epoch, epoch);
  lutimesSync(root, epoch, epoch);
}
