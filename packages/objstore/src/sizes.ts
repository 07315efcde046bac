import { constants as FS, createReadStream } from "node:fs";
import { mkdir, open, rename, rm } from "node:fs/promises";
import { dirname } from "node:path";
import pako from "pako";
import { variant, type Variant } from "@ostree-ts/gvariant";
import { fromHex } from "./checksum.js";
import { contentHasher, encodeFilezHeader, isSymlink, type FileMeta } from "./content.js";
import { ObjectType } from "./object-types.js";
import type { PayloadSource, Repo } from "./repo.js";

/** Unsigned LEB128, as ostree's _ostree_write_varuint64. */
export function encodeVarUint64(n: number): number[] {
  const out: number[] = [];
  let v = BigInt(n);
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    out.push(b);
  } while (v > 0n);
  return out;
}

export interface SizeEntry {
  type: ObjectType;
  archived: number;
  unpacked: number;
}

/**
 * The `ostree.sizes` index ostree builds during an archive-mode commit with
 * --generate-sizes: one entry per file/dirtree/dirmeta object written (first
 * write wins), sorted by hex checksum.
 */
export class SizeIndex {
  private readonly entries = new Map<string, SizeEntry>();

  add(checksum: string, type: ObjectType, unpacked: number, archived: number): void {
    if (type !== ObjectType.File && type !== ObjectType.DirTree && type !== ObjectType.DirMeta) return;
    if (!this.entries.has(checksum)) this.entries.set(checksum, { type, archived, unpacked });
  }

  clear(): void {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }

  /** The `aay` value of `ostree.sizes`. */
  toVariant(): Variant {
    const keys = [...this.entries.keys()].sort();
    return variant(
      "aay",
      keys.map((k) => {
        const e = this.entries.get(k)!;
        return new Uint8Array([...fromHex(k), ...encodeVarUint64(e.archived), ...encodeVarUint64(e.unpacked), e.type]);
      }),
    );
  }
}

const CHUNK = 1 << 20;

/**
 * Write an archive-mode content object compressing with pako, a port of the
 * reference zlib: its raw-deflate output is byte-identical to what C ostree
 * writes through system zlib, so the `.filez` size recorded in ostree.sizes
 * equals ostree's. (Node's bundled zlib fork compresses differently.)
 * Returns the content checksum and the stored object size.
 */
export async function writeArchiveContentPako(
  repo: Repo,
  meta: FileMeta,
  source: PayloadSource,
  fsync: boolean,
): Promise<{ checksum: string; archived: number }> {
  const hasher = contentHasher(meta);
  const symlinkObj = isSymlink(meta);
  const size = symlinkObj ? 0 : "data" in source ? source.data.length : source.size;
  const tmp = repo.tmpPath();
  const fh = await open(tmp, FS.O_WRONLY | FS.O_CREAT | FS.O_EXCL, 0o644);
  let archived = 0;
  try {
    const header = encodeFilezHeader(meta, size);
    await fh.write(header);
    archived += header.length;
    if (!symlinkObj) {
      const pending: Uint8Array[] = [];
      const deflate = new pako.Deflate({ level: repo.zlibLevel() as pako.DeflateFunctionOptions["level"], raw: true });
      deflate.onData = (c: Uint8Array) => pending.push(c);
      const flush = async () => {
        for (const c of pending.splice(0)) {
          await fh.write(c);
          archived += c.length;
        }
      };
      let seen = 0;
      if ("data" in source) {
        hasher.update(source.data);
        for (let off = 0; off < source.data.length; off += CHUNK) {
          deflate.push(source.data.subarray(off, off + CHUNK), false);
          await flush();
        }
        seen = source.data.length;
      } else {
        for await (const chunk of createReadStream(source.path, { highWaterMark: CHUNK })) {
          const c = chunk as Buffer;
          hasher.update(c);
          deflate.push(c, false);
          seen += c.length;
          await flush();
        }
      }
      if (seen !== size) throw new Error(`${"path" in source ? source.path : "payload"}: read ${seen} bytes, expected ${size} (file changed during commit?)`);
      deflate.push(new Uint8Array(0), true);
      if (deflate.err) throw new Error(`deflate failed: ${deflate.msg}`);
      await flush();
    }
    if (fsync) await fh.datasync();
  } catch (e) {
    await fh.close();
    await rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  const checksum = hasher.digest("hex");
  const dest = repo.objectWritePath(checksum, ObjectType.File);
  try {
    if (!(await repo.hasLooseObject(checksum, ObjectType.File))) {
      await mkdir(dirname(dest), { recursive: true });
      await rename(tmp, dest);
      repo.noteContentWritten(size);
    }
  } finally {
    await rm(tmp, { force: true });
  }
  return { checksum, archived };
}
