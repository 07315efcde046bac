import { bswap32, bswap64, decode, encode, GVariantError, type Value, type Variant } from "@ostree-ts/gvariant";
import { binToChecksum, fromHex, sha256Hex } from "./checksum.js";
import { fastDirTree } from "./dirtree-fast.js";
import { CorruptObjectError } from "./errors.js";
import { isValidFilename } from "./filename.js";

/** Extended attributes as ostree stores them: name (without the NUL) → raw value, sorted by name bytes. */
export type Xattrs = ReadonlyArray<readonly [name: string, value: Uint8Array]>;

export type MetadataDict = ReadonlyArray<readonly [key: string, value: Variant]>;

export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;

export interface DirMeta {
  uid: number;
  gid: number;
  mode: number;
  xattrs: Xattrs;
}

export interface DirTreeFile {
  name: string;
  checksum: string;
}

export interface DirTreeDir {
  name: string;
  tree: string;
  meta: string;
}

export interface DirTree {
  files: DirTreeFile[];
  dirs: DirTreeDir[];
}

export interface Commit {
  metadata: MetadataDict;
  /** Parent commit checksum, or null (stored as an empty `ay`). */
  parent: string | null;
  related: ReadonlyArray<readonly [string, string]>;
  subject: string;
  body: string;
  /** Seconds since the epoch, UTC. */
  timestamp: number;
  rootTree: string;
  rootMeta: string;
}

export const COMMIT_TYPE = "(a{sv}aya(say)sstayay)";
export const DIRTREE_TYPE = "(a(say)a(sayay))";
export const DIRMETA_TYPE = "(uuua(ayay))";
export const COMMITMETA_TYPE = "a{sv}";
export const XATTRS_TYPE = "a(ayay)";
/** The `summary` file (here, not in summary.ts, so a pull decoding one does not load the summary writer). */
export const SUMMARY_TYPE = "(a(s(taya{sv}))a{sv})";

const utf8 = new TextEncoder();
const utf8d = new TextDecoder();

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/** strcmp order on UTF-8 bytes, which is how ostree sorts names. */
export function compareNames(a: string, b: string): number {
  if (a === b) return 0;
  // Code-unit order equals byte order for ASCII, the overwhelmingly common case.
  if (/^[\x00-\x7f]*$/.test(a) && /^[\x00-\x7f]*$/.test(b)) return a < b ? -1 : 1;
  return compareBytes(utf8.encode(a), utf8.encode(b));
}

/** xattrs as the GVariant `a(ayay)` value: names NUL-terminated, sorted by strcmp. */
export function xattrsToValue(xattrs: Xattrs): Value[] {
  const entries = xattrs.map(([name, value]) => {
    const n = utf8.encode(name);
    const withNul = new Uint8Array(n.length + 1);
    withNul.set(n);
    return [withNul, value] as const;
  });
  entries.sort((a, b) => compareBytes(a[0], b[0]));
  return entries.map((e) => [e[0], e[1]]);
}

export function xattrsFromValue(v: Value): Xattrs {
  return (v as Value[][]).map((e) => {
    const name = e[0] as Uint8Array;
    const end = name.length > 0 && name[name.length - 1] === 0 ? name.length - 1 : name.length;
    return [utf8d.decode(name.subarray(0, end)), new Uint8Array(e[1] as Uint8Array)] as const;
  });
}

export { isValidFilename };

/** ot_util_filename_validate's text for a name a dirtree must not contain. */
function filenameProblem(name: string): string {
  if (name === "") return "Invalid empty filename";
  if (name === ".") return "Invalid self-referential filename '.'";
  if (name === "..") return "Invalid path uplink filename '..'";
  if (name.includes("/")) return `Invalid / in filename ${name}`;
  return `Invalid NUL in filename ${JSON.stringify(name)}`;
}

/** A dirtree entry named `..`, `.`, "" or containing `/`; the message is ostree's. */
export class InvalidFilenameError extends CorruptObjectError {
  override name = "InvalidFilenameError";
  constructor(
    checksum: string,
    readonly filename: string,
  ) {
    super(checksum, "dirtree", filenameProblem(filename));
    this.message = filenameProblem(filename);
  }
}

function corrupt(checksum: string, type: string, e: unknown): never {
  if (e instanceof CorruptObjectError) throw e;
  const why = e instanceof GVariantError ? e.message : e instanceof Error ? e.message : String(e);
  throw new CorruptObjectError(checksum, type, why);
}

export function encodeDirMeta(m: DirMeta): Uint8Array {
  return encode(DIRMETA_TYPE, [bswap32(m.uid), bswap32(m.gid), bswap32(m.mode), xattrsToValue(m.xattrs)]);
}

export function decodeDirMeta(bytes: Uint8Array, checksum = "?"): DirMeta {
  try {
    const [uid, gid, mode, xattrs] = decode(DIRMETA_TYPE, bytes) as [number, number, number, Value];
    const m = { uid: bswap32(uid), gid: bswap32(gid), mode: bswap32(mode), xattrs: xattrsFromValue(xattrs) };
    if ((m.mode & S_IFMT) !== S_IFDIR) throw new CorruptObjectError(checksum, "dirmeta", `mode 0${m.mode.toString(8)} is not a directory`);
    if ((m.mode & ~(S_IFMT | 0o7777)) !== 0) throw new CorruptObjectError(checksum, "dirmeta", `invalid mode bits 0${m.mode.toString(8)}`);
    return m;
  } catch (e) {
    corrupt(checksum, "dirmeta", e);
  }
}

export function encodeDirTree(t: DirTree): Uint8Array {
  return encode(DIRTREE_TYPE, [
    t.files.map((f) => [f.name, fromHex(f.checksum)]),
    t.dirs.map((d) => [d.name, fromHex(d.tree), fromHex(d.meta)]),
  ]);
}

/**
 * A dirtree object, refused with ostree's errors unless it is in normal form
 * with valid names. Well-formed trees take fastDirTree's direct reader (every
 * checkout, pull, fsck and traverse decodes each dirtree of a commit); anything
 * it cannot vouch for gets the generic reader's authoritative answer.
 */
export function decodeDirTree(bytes: Uint8Array, checksum = "?"): DirTree {
  return fastDirTree(bytes) ?? decodeDirTreeGeneric(bytes, checksum);
}

/** decodeDirTree through the generic GVariant reader (exported for the fast reader's tests). */
export function decodeDirTreeGeneric(bytes: Uint8Array, checksum = "?"): DirTree {
  try {
    const [files, dirs] = decode(DIRTREE_TYPE, bytes) as [Value[][], Value[][]];
    const check = (name: string) => {
      if (!isValidFilename(name)) throw new InvalidFilenameError(checksum, name);
      return name;
    };
    return {
      files: files.map((f) => ({ name: check(f[0] as string), checksum: binToChecksum(f[1] as Uint8Array, "file checksum") })),
      dirs: dirs.map((d) => ({
        name: check(d[0] as string),
        tree: binToChecksum(d[1] as Uint8Array, "dirtree checksum"),
        meta: binToChecksum(d[2] as Uint8Array, "dirmeta checksum"),
      })),
    };
  } catch (e) {
    corrupt(checksum, "dirtree", e);
  }
}

export function encodeCommit(c: Commit): Uint8Array {
  return encode(COMMIT_TYPE, [
    c.metadata.map(([k, v]) => [k, v]),
    c.parent ? fromHex(c.parent) : new Uint8Array(0),
    c.related.map(([name, csum]) => [name, fromHex(csum)]),
    c.subject,
    c.body,
    bswap64(BigInt(c.timestamp)),
    fromHex(c.rootTree),
    fromHex(c.rootMeta),
  ]);
}

export function decodeCommit(bytes: Uint8Array, checksum = "?"): Commit {
  try {
    const v = decode(COMMIT_TYPE, bytes) as Value[];
    const parentBin = v[1] as Uint8Array;
    const metadata = (v[0] as Value[][]).map((e) => {
      if (e[0] === "") throw new CorruptObjectError(checksum, "commit", "empty metadata key");
      return [e[0] as string, e[1] as Variant] as const;
    });
    return {
      metadata,
      parent: parentBin.length === 0 ? null : binToChecksum(parentBin, "parent checksum"),
      related: (v[2] as Value[][]).map((r) => [r[0] as string, binToChecksum(r[1] as Uint8Array, "related checksum")] as const),
      subject: v[3] as string,
      body: v[4] as string,
      // Stored as guint64; ostree hands it to GDateTime as gint64, so pre-1970 dates read back negative.
      timestamp: Number(BigInt.asIntN(64, bswap64(v[5] as bigint))),
      rootTree: binToChecksum(v[6] as Uint8Array, "root dirtree checksum"),
      rootMeta: binToChecksum(v[7] as Uint8Array, "root dirmeta checksum"),
    };
  } catch (e) {
    corrupt(checksum, "commit", e);
  }
}

export function encodeMetadataDict(d: MetadataDict): Uint8Array {
  return encode(COMMITMETA_TYPE, d.map(([k, v]) => [k, v]));
}

export function decodeMetadataDict(bytes: Uint8Array, checksum = "?", type = "commitmeta"): MetadataDict {
  try {
    return (decode(COMMITMETA_TYPE, bytes) as Value[][]).map((e) => [e[0] as string, e[1] as Variant] as const);
  } catch (e) {
    corrupt(checksum, type, e);
  }
}

/** sha256(root dirtree ‖ root dirmeta), ostree's "content checksum" of a commit. */
export function commitContentChecksum(c: Commit): string {
  return sha256Hex(fromHex(c.rootTree), fromHex(c.rootMeta));
}

/** The empty dirtree (single byte 00) that ostree uses for empty directories. */
export const EMPTY_DIRTREE = encodeDirTree({ files: [], dirs: [] });
