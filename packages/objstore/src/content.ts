import { createHash, type Hash } from "node:crypto";
import { bswap32, bswap64, decode, encode, type Value } from "@ostree-ts/gvariant";
import { CorruptObjectError } from "./errors.js";
import { S_IFLNK, S_IFMT, S_IFREG, xattrsFromValue, xattrsToValue, type Xattrs } from "./metadata.js";

/** What ostree records of a content object besides its payload. */
export interface FileMeta {
  uid: number;
  gid: number;
  /** Full st_mode including S_IFREG or S_IFLNK. */
  mode: number;
  /** Symlink target; "" for regular files. */
  symlinkTarget: string;
  xattrs: Xattrs;
}

export const FILE_HEADER_TYPE = "(uuuusa(ayay))";
export const FILEZ_HEADER_TYPE = "(tuuuusa(ayay))";

export function isSymlink(meta: FileMeta): boolean {
  return (meta.mode & S_IFMT) === S_IFLNK;
}

export function isRegular(meta: FileMeta): boolean {
  return (meta.mode & S_IFMT) === S_IFREG;
}

/** Prefix a GVariant header with BE32 length and 4 zero bytes (the content-stream framing). */
function frame(header: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + header.length);
  new DataView(out.buffer).setUint32(0, header.length, false);
  out.set(header, 8);
  return out;
}

/**
 * Encodings of metadata without symlink target or xattrs (almost every file of
 * a tree shares a handful of uid/gid/mode triples), by kind and triple. Callers
 * never modify the returned bytes.
 */
const plainEncodings = new Map<string, Uint8Array>();

function cachedPlain(kind: string, meta: FileMeta, make: () => Uint8Array): Uint8Array {
  if (meta.symlinkTarget !== "" || meta.xattrs.length !== 0) return make();
  const key = `${kind}:${meta.uid}:${meta.gid}:${meta.mode}`;
  let bytes = plainEncodings.get(key);
  if (!bytes) {
    if (plainEncodings.size >= 4096) plainEncodings.clear();
    bytes = make();
    plainEncodings.set(key, bytes);
  }
  return bytes;
}

/** The framed `(uuuusa(ayay))` header that starts every content stream (and its checksum input). */
export function encodeFileHeader(meta: FileMeta): Uint8Array {
  return cachedPlain("h", meta, () =>
    frame(encode(FILE_HEADER_TYPE, [bswap32(meta.uid), bswap32(meta.gid), bswap32(meta.mode), 0, meta.symlinkTarget, xattrsToValue(meta.xattrs)])),
  );
}

/** The framed `(tuuuusa(ayay))` header of an archive-mode `.filez` object. */
export function encodeFilezHeader(meta: FileMeta, size: number): Uint8Array {
  return frame(
    encode(FILEZ_HEADER_TYPE, [
      bswap64(BigInt(size)),
      bswap32(meta.uid),
      bswap32(meta.gid),
      bswap32(meta.mode),
      0,
      meta.symlinkTarget,
      xattrsToValue(meta.xattrs),
    ]),
  );
}

function checkMode(checksum: string, mode: number): void {
  const fmt = mode & S_IFMT;
  if (fmt !== S_IFREG && fmt !== S_IFLNK) throw new CorruptObjectError(checksum, "file", `mode 0${mode.toString(8)} is not a regular file or symlink`);
  if ((mode & ~(S_IFMT | 0o7777)) !== 0) throw new CorruptObjectError(checksum, "file", `invalid mode bits 0${mode.toString(8)}`);
}

/** Split a framed header: returns the GVariant bytes and where the payload starts. */
export function unframe(buf: Uint8Array, checksum: string): { header: Uint8Array; payloadOffset: number } {
  if (buf.length < 8) throw new CorruptObjectError(checksum, "file", "truncated header");
  const len = new DataView(buf.buffer, buf.byteOffset, buf.byteLength).getUint32(0, false);
  if (len > buf.length - 8) throw new CorruptObjectError(checksum, "file", `header length ${len} exceeds object size`);
  return { header: buf.subarray(8, 8 + len), payloadOffset: 8 + len };
}

export function decodeFileHeader(header: Uint8Array, checksum = "?"): FileMeta {
  try {
    const [uid, gid, mode, , target, xattrs] = decode(FILE_HEADER_TYPE, header) as [number, number, number, number, string, Value];
    const meta = { uid: bswap32(uid), gid: bswap32(gid), mode: bswap32(mode), symlinkTarget: target, xattrs: xattrsFromValue(xattrs) };
    checkMode(checksum, meta.mode);
    return meta;
  } catch (e) {
    if (e instanceof CorruptObjectError) throw e;
    throw new CorruptObjectError(checksum, "file", `bad header: ${(e as Error).message}`);
  }
}

export function decodeFilezHeader(header: Uint8Array, checksum = "?"): { meta: FileMeta; size: number } {
  try {
    const [size, uid, gid, mode, , target, xattrs] = decode(FILEZ_HEADER_TYPE, header) as [bigint, number, number, number, number, string, Value];
    const meta = { uid: bswap32(uid), gid: bswap32(gid), mode: bswap32(mode), symlinkTarget: target, xattrs: xattrsFromValue(xattrs) };
    checkMode(checksum, meta.mode);
    const n = bswap64(size);
    if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new CorruptObjectError(checksum, "file", `size ${n} too large`);
    return { meta, size: Number(n) };
  } catch (e) {
    if (e instanceof CorruptObjectError) throw e;
    throw new CorruptObjectError(checksum, "file", `bad filez header: ${(e as Error).message}`);
  }
}

/** Incremental content checksum: header first, then payload chunks. */
export function contentHasher(meta: FileMeta): Hash {
  return createHash("sha256").update(encodeFileHeader(meta));
}

/** Content checksum of a file whose payload is in memory. */
export function contentChecksum(meta: FileMeta, payload: Uint8Array = new Uint8Array(0)): string {
  return contentHasher(meta).update(payload).digest("hex");
}

/** The bare-user `user.ostreemeta` xattr value: `(uuua(ayay))` with BE uid/gid/mode. */
export function encodeOstreeMeta(meta: FileMeta): Uint8Array {
  // The symlink target is not part of this encoding: only xattrs keep it from being shared.
  const plain = meta.xattrs.length === 0 ? { ...meta, symlinkTarget: "" } : meta;
  return cachedPlain("m", plain, () => encode("(uuua(ayay))", [bswap32(meta.uid), bswap32(meta.gid), bswap32(meta.mode), xattrsToValue(meta.xattrs)]));
}

export function decodeOstreeMeta(bytes: Uint8Array, checksum = "?"): Omit<FileMeta, "symlinkTarget"> {
  try {
    const [uid, gid, mode, xattrs] = decode("(uuua(ayay))", bytes) as [number, number, number, Value];
    const m = { uid: bswap32(uid), gid: bswap32(gid), mode: bswap32(mode), xattrs: xattrsFromValue(xattrs) };
    checkMode(checksum, m.mode);
    return m;
  } catch (e) {
    if (e instanceof CorruptObjectError) throw e;
    throw new CorruptObjectError(checksum, "file", `bad user.ostreemeta xattr: ${(e as Error).message}`);
  }
}
