import { closeSync, constants as FS, fstatSync, lstatSync, openSync, readFileSync, readlinkSync, readSync } from "node:fs";
import { join } from "node:path";
import { getAttributeSync } from "@napi-rs/xattr";
import {
  CorruptObjectError,
  decodeDirMeta,
  decodeDirTree,
  decodeFilezHeader,
  decodeOstreeMeta,
  ObjectNotFoundError,
  ObjectType,
  objectTypeName,
  S_IFLNK,
  S_IFMT,
  unframe,
  type DirMeta,
  type DirTree,
  type FileMeta,
  type Repo,
} from "@ostree-ts/objstore";
import type { ProbedFile } from "./tree.js";

/*
 * Synchronous object reads for the checkout loop. A checkout is a long run of
 * tiny metadata syscalls with nothing else to do meanwhile; doing them on the
 * main thread avoids a libuv threadpool round trip and a promise per call,
 * which dominated the async version's time.
 */

/** Archive objects up to this size are read whole by the probe, so the copy needs no second open. */
export const SMALL_OBJECT = 1 << 20;

/**
 * A probed file; for small archive objects whose payload was asked for, the
 * whole `.filez` and where its deflate stream starts. `raw` lives in a
 * scratch buffer shared by all probes: it is valid until the next
 * probeFileSync call.
 */
export interface Probed extends ProbedFile {
  raw?: Buffer;
  /** Archive objects: where the deflate stream starts, and the `.filez` size. */
  payloadOffset?: number;
  storedSize?: number;
  /** Set when the object was found in the `core.parent` repo: hardlink rules follow its mode. */
  repo?: Repo;
}

/** Without the payload, one read of this much holds the header of nearly every archive object. */
const HEAD_READ = 4096;

/** Reused for every small archive object: no allocation (and no page faults) per file. */
let scratch = Buffer.allocUnsafe(64 << 10);

function scratchOf(size: number): Buffer {
  if (scratch.length < size) scratch = Buffer.allocUnsafe(Math.min(SMALL_OBJECT, Math.max(size, scratch.length * 2)));
  return scratch.subarray(0, size);
}

/** Decoded user.ostreemeta by its bytes: a tree has few distinct (uid, gid, mode, xattrs) combinations. */
const ostreeMetaCache = new Map<string, Omit<FileMeta, "symlinkTarget">>();

function sizeOf(meta: FileMeta, stSize: number): number {
  return (meta.mode & S_IFMT) === S_IFLNK ? 0 : stSize;
}

function readFully(fd: number, buf: Buffer, position: number): number {
  let off = 0;
  while (off < buf.length) {
    const n = readSync(fd, buf, off, buf.length - off, position + off);
    if (n === 0) break;
    off += n;
  }
  return off;
}

const objectDirs = new WeakMap<Repo, string>();

/** repo.objectPath for a content object without path.join's normalisation (checksums are validated hex). */
function contentPath(repo: Repo, checksum: string): string {
  let dir = objectDirs.get(repo);
  if (dir === undefined) {
    dir = join(repo.path, "objects");
    objectDirs.set(repo, dir);
  }
  return `${dir}/${checksum.slice(0, 2)}/${checksum.slice(2)}.${repo.isArchive ? "filez" : "file"}`;
}

/**
 * probeFile without the threadpool. An object missing here is looked up in the
 * `core.parent` repo (once `repo.parentRepo()` has been awaited), as ostree
 * does, when payloads are stored alike: both archive or both bare-family
 * (`.file` payloads are the file's bytes in every bare mode).
 */
export function probeFileSync(repo: Repo, checksum: string, payload = true): Probed {
  try {
    return probeLocalSync(repo, checksum, payload);
  } catch (e) {
    const parent = repo.loadedParent;
    if (!(e instanceof ObjectNotFoundError) || !parent || parent.isArchive !== repo.isArchive) throw e;
    const p = probeFileSync(parent, checksum, payload);
    return p.repo ? p : { ...p, repo: parent };
  }
}

/**
 * One lstat (+ getxattr for bare-user), or one open+fstat+read for archive:
 * of the whole object when it is small and `payload` says it will be copied,
 * else of its first HEAD_READ bytes.
 */
function probeLocalSync(repo: Repo, checksum: string, payload: boolean): Probed {
  const objectPath = contentPath(repo, checksum);
  if (repo.mode === "archive") return probeArchive(objectPath, checksum, payload);
  let st;
  try {
    st = lstatSync(objectPath);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") throw new ObjectNotFoundError(checksum, "file");
    throw e;
  }
  if (st.isDirectory()) throw new CorruptObjectError(checksum, "file", `object ${objectPath} is a directory`);
  if (repo.mode === "bare-user") {
    if (!st.isFile()) throw new CorruptObjectError(checksum, "file", `bare-user object ${objectPath} is not a regular file`);
    const raw = getAttributeSync(objectPath, "user.ostreemeta");
    if (!raw) throw new CorruptObjectError(checksum, "file", "missing user.ostreemeta xattr");
    const key = raw.toString("latin1");
    let m = ostreeMetaCache.get(key);
    if (!m) {
      m = decodeOstreeMeta(new Uint8Array(raw.buffer, raw.byteOffset, raw.length), checksum);
      if (ostreeMetaCache.size < 4096) ostreeMetaCache.set(key, m);
    }
    let symlinkTarget = "";
    if ((m.mode & S_IFMT) === S_IFLNK) {
      const content = readFileSync(objectPath);
      if (content.length === 0 || content[content.length - 1] !== 0) {
        throw new CorruptObjectError(checksum, "file", "bare-user symlink object lacks its NUL terminator");
      }
      symlinkTarget = content.subarray(0, content.length - 1).toString("utf8");
    }
    const meta = { uid: m.uid, gid: m.gid, mode: m.mode, xattrs: m.xattrs, symlinkTarget };
    return { checksum, objectPath, meta, size: sizeOf(meta, st.size), xattrsLoaded: true };
  }
  if (!st.isFile() && !st.isSymbolicLink()) throw new CorruptObjectError(checksum, "file", `object ${objectPath} is not a regular file or symlink`);
  const userOnly = repo.mode === "bare-user-only";
  const symlinkTarget = st.isSymbolicLink() ? readlinkSync(objectPath) : "";
  const meta: FileMeta = { uid: userOnly ? 0 : st.uid, gid: userOnly ? 0 : st.gid, mode: st.mode, symlinkTarget, xattrs: [] };
  return { checksum, objectPath, meta, size: sizeOf(meta, st.size), xattrsLoaded: userOnly };
}

/**
 * Decoded `.filez` headers of regular files by everything after their size
 * field: a tree has few distinct (uid, gid, mode, xattrs) combinations.
 * Equal bytes after the size mean an equal, equally valid header: the size is
 * a fixed-width field with nothing to check but its range, and the framing
 * depends only on the total length, which is equal too.
 */
const filezMetaCache = new Map<string, FileMeta>();

export function decodeFilezCached(header: Uint8Array, checksum: string): { meta: FileMeta; size: number } {
  const b = Buffer.from(header.buffer, header.byteOffset, header.byteLength);
  const key = b.length > 8 ? b.toString("latin1", 8) : undefined;
  const known = key === undefined ? undefined : filezMetaCache.get(key);
  if (known) {
    // The size is stored big-endian (ostree byte-swaps the GVariant's guint64).
    const size = b.readBigUInt64BE(0);
    if (size <= BigInt(Number.MAX_SAFE_INTEGER)) return { meta: { ...known }, size: Number(size) };
  }
  const r = decodeFilezHeader(header, checksum);
  if (key !== undefined && (r.meta.mode & S_IFMT) !== S_IFLNK && filezMetaCache.size < 4096) filezMetaCache.set(key, r.meta);
  return r;
}

function probeArchive(objectPath: string, checksum: string, payload: boolean): Probed {
  let fd: number;
  try {
    // O_NOFOLLOW: a symlinked object is refused, not followed; O_NONBLOCK: a FIFO cannot hang us.
    fd = openSync(objectPath, FS.O_RDONLY | FS.O_NOFOLLOW | FS.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new ObjectNotFoundError(checksum, "file");
    if (code === "ELOOP") throw new CorruptObjectError(checksum, "file", `object ${objectPath} is not a regular file`);
    throw e;
  }
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) throw new CorruptObjectError(checksum, "file", `object ${objectPath} is a directory`);
    if (!st.isFile()) throw new CorruptObjectError(checksum, "file", `object ${objectPath} is not a regular file`);
    const whole = payload && st.size <= SMALL_OBJECT;
    const buf = scratchOf(whole ? st.size : Math.min(st.size, HEAD_READ));
    const got = readFully(fd, buf, 0);
    if (got < 8) throw new CorruptObjectError(checksum, "file", "truncated header");
    const len = buf.readUInt32BE(0);
    if (len > st.size) throw new CorruptObjectError(checksum, "file", `header length ${len} exceeds object size`);
    let head = buf;
    if (got < 8 + len) {
      if (whole) throw new CorruptObjectError(checksum, "file", "truncated header");
      head = Buffer.allocUnsafe(8 + len);
      if (readFully(fd, head, 0) < head.length) throw new CorruptObjectError(checksum, "file", "truncated header");
    }
    const { header } = unframe(new Uint8Array(head.buffer, head.byteOffset, 8 + len), checksum);
    const { meta, size } = decodeFilezCached(header, checksum);
    const p: Probed = { checksum, objectPath, meta, size: sizeOf(meta, size), xattrsLoaded: true, payloadOffset: 8 + len, storedSize: st.size };
    if (whole) p.raw = buf.subarray(0, got);
    return p;
  } finally {
    closeSync(fd);
  }
}

function loadMetadataSync(repo: Repo, type: ObjectType, checksum: string): Uint8Array {
  try {
    const b = readFileSync(repo.objectPath(checksum, type));
    return new Uint8Array(b.buffer, b.byteOffset, b.length);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    if (repo.loadedParent) return loadMetadataSync(repo.loadedParent, type, checksum);
    throw new ObjectNotFoundError(checksum, objectTypeName(type));
  }
}

export function readDirTreeSync(repo: Repo, checksum: string): DirTree {
  return decodeDirTree(loadMetadataSync(repo, ObjectType.DirTree, checksum), checksum);
}

export function readDirMetaSync(repo: Repo, checksum: string): DirMeta {
  return decodeDirMeta(loadMetadataSync(repo, ObjectType.DirMeta, checksum), checksum);
}
