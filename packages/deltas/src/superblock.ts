/**
 * The static-delta superblock (deltas.md §2) and its signed wrapper (§7).
 *
 * Byte order: GVariant framing is little-endian; the generation timestamp is
 * always big-endian; part-header version/size/usize and fallback sizes are in
 * the delta's declared endianness (`ostree.endianness`, 'l' or 'B').
 */
import { createHash } from "node:crypto";
import { bswap32, bswap64, decode, encode, lookup, variant, type Value, type Variant } from "@ostree-ts/gvariant";
import { DeltaFormatError } from "./errors.js";

export const SUPERBLOCK_TYPE = "(a{sv}tayay(a{sv}aya(say)sstayay)aya(uayttay)a(yaytt))";
export const SIGNED_SUPERBLOCK_TYPE = "(taya{sv})";
export const COMMIT_TYPE = "(a{sv}aya(say)sstayay)";
/** "OSTSGNDT", stored big-endian. */
export const SIGNED_MAGIC = 0x4f535453474e4454n;
/** OSTREE_DELTAPART_VERSION: readers reject newer parts. */
export const DELTAPART_VERSION = 0;
/** One part-header object record: type byte + 32-byte checksum. */
export const OBJTYPE_CSUM_LEN = 33;

export type Endianness = "l" | "B";
export type MetadataEntries = Array<readonly [key: string, value: Variant]>;

export interface DeltaObject {
  /** ostree object type number (1 file, 2 dirtree, 3 dirmeta, …). */
  type: number;
  checksum: string;
}

export interface PartHeader {
  version: number;
  /** sha256 (hex) of the whole part file. */
  checksum: string;
  /** Part file size. */
  size: number;
  /** Sum of the uncompressed sizes of the part's objects. */
  usize: number;
  objects: DeltaObject[];
}

export interface FallbackEntry {
  type: number;
  checksum: string;
  /** Stored (compressed) size: the `.filez` size for files. */
  size: number;
  usize: number;
}

export interface Superblock {
  /** a{sv} in file order (user keys, ostree.endianness, inline parts, commitmeta). */
  metadata: MetadataEntries;
  /** Generation time, seconds since the epoch. */
  timestamp: number;
  from: string | null;
  to: string;
  /** The TO commit object's exact bytes. */
  commit: Uint8Array;
  /** Always empty in practice ("recursive deltas"). */
  dependencies: Uint8Array;
  parts: PartHeader[];
  fallbacks: FallbackEntry[];
  /** Byte order of the non-canonical integers. */
  endianness: Endianness;
  /** True when `ostree.endianness` was absent and the order was guessed. */
  endiannessGuessed: boolean;
  /** ostree prints "invalid" when the key is absent and the guess found nothing. */
  endiannessInvalid: boolean;
}

const HOST: Endianness = "l";

function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");
}

function bin(h: string): Uint8Array {
  return new Uint8Array(Buffer.from(h, "hex"));
}

function u64(v: bigint, swap: boolean, what: string): number {
  const x = swap ? bswap64(v) : v;
  if (x > BigInt(Number.MAX_SAFE_INTEGER)) throw new DeltaFormatError(`superblock: ${what} ${x} is too large`);
  return Number(x);
}

function csum(b: Uint8Array, what: string): string {
  if (b.length !== 32) throw new DeltaFormatError(`superblock: ${what} checksum has ${b.length} bytes, expected 32`);
  return hex(b);
}

export function parseObjectList(objs: Uint8Array, what = "part"): DeltaObject[] {
  if (objs.length % OBJTYPE_CSUM_LEN !== 0) {
    throw new DeltaFormatError(`${what}: object list of ${objs.length} bytes is not a multiple of ${OBJTYPE_CSUM_LEN}`);
  }
  const out: DeltaObject[] = [];
  for (let i = 0; i < objs.length; i += OBJTYPE_CSUM_LEN) {
    const type = objs[i]!;
    if (type < 1 || type > 6 || type === 4 || type === 5) throw new DeltaFormatError(`${what}: object #${i / OBJTYPE_CSUM_LEN} has invalid type ${type}`);
    out.push({ type, checksum: hex(objs.subarray(i + 1, i + OBJTYPE_CSUM_LEN)) });
  }
  return out;
}

export function encodeObjectList(objects: readonly DeltaObject[]): Uint8Array {
  const out = new Uint8Array(objects.length * OBJTYPE_CSUM_LEN);
  objects.forEach((o, i) => {
    out[i * OBJTYPE_CSUM_LEN] = o.type;
    out.set(bin(o.checksum), i * OBJTYPE_CSUM_LEN + 1);
  });
  return out;
}

/** ostree's _ostree_delta_get_endianness, including its heuristic for deltas without the key. */
function detectEndianness(metadata: readonly Value[], headers: Array<readonly Value[]>): { e: Endianness; guessed: boolean; invalid: boolean } {
  const v = lookup(metadata, "ostree.endianness");
  if (v && v.type === "y") {
    const c = v.value as number;
    if (c === 0x6c) return { e: "l", guessed: false, invalid: false };
    if (c === 0x42) return { e: "B", guessed: false, invalid: false };
    return { e: HOST, guessed: false, invalid: true };
  }
  let swapped = false;
  let totalSize = 0n;
  let totalObjects = 0n;
  for (const h of headers) {
    const size = h[2] as bigint;
    const usize = h[3] as bigint;
    totalObjects += BigInt((h[4] as Uint8Array).length / OBJTYPE_CSUM_LEN);
    totalSize += size;
    if (size > usize && Number(size) / Number(usize) > 1.2) {
      swapped = true;
      break;
    }
  }
  if (!swapped && totalObjects > 0n && totalSize / totalObjects > 0xffff_ffffn) swapped = true;
  if (swapped) return { e: HOST === "l" ? "B" : "l", guessed: true, invalid: false };
  return { e: HOST, guessed: true, invalid: true };
}

/** Decodes a plain (unsigned) superblock; throws DeltaFormatError on anything malformed. */
export function decodeSuperblock(bytes: Uint8Array): Superblock {
  let v: readonly Value[];
  try {
    v = decode(SUPERBLOCK_TYPE, bytes, { strict: false }) as readonly Value[];
  } catch (e) {
    throw new DeltaFormatError(`invalid static delta superblock: ${(e as Error).message}`);
  }
  const metadata = (v[0] as Array<[string, Variant]>).map(([k, val]) => [k, val] as const);
  const headers = v[6] as Array<readonly Value[]>;
  const { e, guessed, invalid } = detectEndianness(v[0] as readonly Value[], headers);
  const swap = e !== HOST;
  const fromB = v[2] as Uint8Array;
  const commitValue = v[4] as Value;
  const commit = encode(COMMIT_TYPE, commitValue);
  const to = csum(v[3] as Uint8Array, "TO");
  const parts = headers.map((h, i): PartHeader => {
    const version = swap ? bswap32(h[0] as number) : (h[0] as number);
    return {
      version,
      checksum: csum(h[1] as Uint8Array, `part ${i}`),
      size: u64(h[2] as bigint, swap, `part ${i} size`),
      usize: u64(h[3] as bigint, swap, `part ${i} usize`),
      objects: parseObjectList(h[4] as Uint8Array, `superblock part ${i}`),
    };
  });
  const fallbacks = (v[7] as Array<readonly Value[]>).map((f, i): FallbackEntry => ({
    type: f[0] as number,
    checksum: csum(f[1] as Uint8Array, `fallback ${i}`),
    size: u64(f[2] as bigint, swap, `fallback ${i} size`),
    usize: u64(f[3] as bigint, swap, `fallback ${i} usize`),
  }));
  return {
    metadata,
    timestamp: Number(bswap64(v[1] as bigint)),
    from: fromB.length === 0 ? null : csum(fromB, "FROM"),
    to,
    commit,
    dependencies: v[5] as Uint8Array,
    parts,
    fallbacks,
    endianness: e,
    endiannessGuessed: guessed,
    endiannessInvalid: invalid,
  };
}

/** sha256 of the TO commit bytes carried in the superblock; must equal `to`. */
export function verifySuperblockCommit(sb: Superblock): void {
  const actual = createHash("sha256").update(sb.commit).digest("hex");
  if (actual !== sb.to) throw new DeltaFormatError(`superblock commit object hashes to ${actual}, expected TO ${sb.to}`);
}

export interface EncodeSuperblockInput {
  metadata: MetadataEntries;
  timestamp: number;
  from: string | null;
  to: string;
  commit: Uint8Array;
  parts: PartHeader[];
  fallbacks: FallbackEntry[];
  endianness: Endianness;
}

/** Serializes a superblock as ostree 2022.7 writes it. */
export function encodeSuperblock(sb: EncodeSuperblockInput): Uint8Array {
  const swap = sb.endianness !== HOST;
  const w64 = (n: number) => (swap ? bswap64(BigInt(n)) : BigInt(n));
  const commitValue = decode(COMMIT_TYPE, sb.commit, { strict: false });
  return encode(SUPERBLOCK_TYPE, [
    sb.metadata.map(([k, val]) => [k, val]),
    bswap64(BigInt(sb.timestamp)),
    sb.from === null ? new Uint8Array(0) : bin(sb.from),
    bin(sb.to),
    commitValue,
    new Uint8Array(0),
    sb.parts.map((p) => [swap ? bswap32(p.version) : p.version, bin(p.checksum), w64(p.size), w64(p.usize), encodeObjectList(p.objects)]),
    sb.fallbacks.map((f) => [f.type, bin(f.checksum), w64(f.size), w64(f.usize)]),
  ]);
}

/** The metadata entry ostree writes for the endianness. */
export function endiannessEntry(e: Endianness): readonly [string, Variant] {
  return ["ostree.endianness", variant("y", e === "l" ? 0x6c : 0x42)];
}

export interface SignedSuperblock {
  /** The plain superblock bytes the signatures cover. */
  superblock: Uint8Array;
  /** `ostree.sign.<type>` → `aay` of signatures. */
  signatures: MetadataEntries;
}

/** True when the file starts with the signed-superblock magic (as ostree tests it). */
export function isSignedSuperblock(bytes: Uint8Array): boolean {
  if (bytes.length < 8) return false;
  return Buffer.from(bytes.buffer, bytes.byteOffset, 8).toString("latin1") === "OSTSGNDT";
}

export function decodeSignedSuperblock(bytes: Uint8Array): SignedSuperblock {
  let v: readonly Value[];
  try {
    v = decode(SIGNED_SUPERBLOCK_TYPE, bytes, { strict: false }) as readonly Value[];
  } catch (e) {
    throw new DeltaFormatError(`invalid signed static delta superblock: ${(e as Error).message}`);
  }
  if (bswap64(v[0] as bigint) !== SIGNED_MAGIC) throw new DeltaFormatError("signed static delta superblock: bad magic");
  const signatures = (v[2] as Array<[string, Variant]>).map(([k, val]) => [k, val] as const);
  return { superblock: new Uint8Array(v[1] as Uint8Array), signatures };
}

/** Wraps plain superblock bytes with signatures: `{ "ostree.sign.<type>": <aay> }`. */
export function encodeSignedSuperblock(superblock: Uint8Array, signatures: Record<string, Uint8Array[]>): Uint8Array {
  const dict = Object.entries(signatures).map(([type, sigs]) => [`ostree.sign.${type}`, variant("aay", sigs)]);
  return encode(SIGNED_SUPERBLOCK_TYPE, [bswap64(SIGNED_MAGIC), superblock, dict]);
}

/** Reads a superblock file's bytes, unwrapping a signed one. */
export function readSuperblockBytes(bytes: Uint8Array): { superblock: Superblock; signed: SignedSuperblock | null } {
  if (isSignedSuperblock(bytes)) {
    const signed = decodeSignedSuperblock(bytes);
    return { superblock: decodeSuperblock(signed.superblock), signed };
  }
  return { superblock: decodeSuperblock(bytes), signed: null };
}

/** Inline part bytes stored in the superblock metadata under `key`, if any. */
export function inlinePart(sb: Superblock, key: string): Uint8Array | null {
  const entry = sb.metadata.find(([k]) => k === key);
  if (!entry) return null;
  const v = entry[1];
  if (v.type !== "(yay)") throw new DeltaFormatError(`superblock metadata ${key}: expected (yay), got ${v.type}`);
  const [c, payload] = v.value as [number, Uint8Array];
  const out = new Uint8Array(1 + payload.length);
  out[0] = c;
  out.set(payload, 1);
  return out;
}
