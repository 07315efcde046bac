import { randomBytes } from "node:crypto";
import type { BigIntStats, Stats } from "node:fs";
import { open, readFile, readlink, rm } from "node:fs/promises";
import { getAttribute, listAttributes, setAttribute } from "@napi-rs/xattr";
import { contentHasher, S_IFLNK, S_IFMT, S_IFREG, type FileMeta, type Xattrs } from "@ostree-ts/objstore";

/** A bounded number of concurrent filesystem operations. */
export class Limiter {
  private active = 0;
  private readonly waiters: Array<() => void> = [];

  constructor(readonly limit: number) {}

  async acquire(): Promise<void> {
    if (this.active < this.limit) {
      this.active++;
      return;
    }
    await new Promise<void>((r) => this.waiters.push(r));
  }

  /** Hand the slot to the next waiter, or free it. */
  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.active--;
  }
}

export function tempName(prefix: string): string {
  return `${prefix}${randomBytes(6).toString("hex")}`;
}

export async function setXattrs(path: string, xattrs: Xattrs): Promise<void> {
  for (const [name, value] of xattrs) await setAttribute(path, name, Buffer.from(value.buffer, value.byteOffset, value.byteLength));
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

/** `rm -rf` of one entry; a symlink is removed, never followed. */
export async function rmRf(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true });
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
