import { randomBytes } from "node:crypto";
import type { BigIntStats, Stats } from "node:fs";
import { rmSync } from "node:fs";
import { open, readFile, readlink } from "node:fs/promises";
import { getAttribute, getAttributeSync, listAttributes, listAttributesSync, setAttributeSync } from "@napi-rs/xattr";
import { contentHasher, S_IFLNK, S_IFMT, S_IFREG, type FileMeta, type Xattrs } from "@ostree-ts/objstore";

export function tempName(prefix: string): string {
  return `${prefix}${randomBytes(6).toString("hex")}`;
}

export function setXattrsSync(path: string, xattrs: Xattrs): void {
  for (const [name, value] of xattrs) setAttributeSync(path, name, Buffer.from(value.buffer, value.byteOffset, value.byteLength));
}

/** xattrs of a path (not following symlinks), sorted by name as ostree stores them. */
export async function getXattrs(path: string): Promise<Xattrs> {
  let names: string[];
  try {
    names = await listAttributes(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? "";
    if (code === "ENOTSUP" || code === "EOPNOTSUPP") return [];
    throw e;
  }
  names.sort();
  const out: Array<readonly [string, Uint8Array]> = [];
  for (const n of names) out.push([n, new Uint8Array((await getAttribute(path, n)) ?? Buffer.alloc(0))]);
  return out;
}

/** getXattrs without the threadpool, for the checkout loop. */
export function getXattrsSync(path: string): Xattrs {
  let names: string[];
  try {
    names = listAttributesSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? "";
    if (code === "ENOTSUP" || code === "EOPNOTSUPP") return [];
    throw e;
  }
  names.sort();
  return names.map((n) => [n, new Uint8Array(getAttributeSync(path, n) ?? Buffer.alloc(0))] as const);
}

/** `rm -rf` of one entry; a symlink is removed, never followed. */
export function rmRf(path: string): void {
  rmSync(path, { recursive: true, force: true });
}

/**
 * Content checksum of a file on disk, as ostree_checksum_file_at computes it
 * (for union-identical comparisons and commit-vs-directory diffs).
 */
export async function checksumPath(
  path: string,
  st: Stats | BigIntStats,
  opts: { ignoreXattrs?: boolean; canonical?: boolean; uid?: number; gid?: number } = {},
): Promise<string> {
  const mode = Number(st.mode);
  const fmt = mode & S_IFMT;
  let uid = opts.uid ?? Number(st.uid);
  let gid = opts.gid ?? Number(st.gid);
  let m = mode;
  if (opts.canonical) {
    uid = 0;
    gid = 0;
    if (fmt === S_IFREG) m = mode & (S_IFREG | 0o755);
  }
  const xattrs = opts.ignoreXattrs ? [] : await getXattrs(path);
  if (fmt === S_IFLNK) {
    const meta: FileMeta = { uid, gid, mode: m, symlinkTarget: await readlink(path), xattrs };
    return contentHasher(meta).digest("hex");
  }
  const meta: FileMeta = { uid, gid, mode: m, symlinkTarget: "", xattrs };
  const h = contentHasher(meta);
  if (Number(st.size) <= 1 << 20) {
    h.update(await readFile(path));
  } else {
    const fh = await open(path, "r");
    try {
      for await (const chunk of fh.createReadStream({ autoClose: false })) h.update(chunk as Buffer);
    } finally {
      await fh.close();
    }
  }
  return h.digest("hex");
}
