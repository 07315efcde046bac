/**
 * Static-delta parts (deltas.md §4–5): the part file (compression byte +
 * payload), the payload `(a(uuu)aa(ayay)ayay)`, and the bytecode.
 */
import { createHash } from "node:crypto";
import { bswap32, decode, encode, type Value } from "@ostree-ts/gvariant";
import { compressionByte, compressionKindOf, decompress, type CompressionKind, type DecompressOptions } from "./compress.js";
import { DeltaFormatError } from "./errors.js";
import type { DeltaObject } from "./superblock.js";
import { xzDecodeWithBinary } from "./xz-decode.js";

export const PART_PAYLOAD_TYPE = "(a(uuu)aa(ayay)ayay)";

export const OP_OPEN_SPLICE_AND_CLOSE = 0x53; // 'S'
export const OP_OPEN = 0x6f; // 'o'
export const OP_WRITE = 0x77; // 'w'
export const OP_SET_READ_SOURCE = 0x72; // 'r'
export const OP_UNSET_READ_SOURCE = 0x52; // 'R'
export const OP_CLOSE = 0x63; // 'c'
export const OP_BSPATCH = 0x42; // 'B'

/** Order of ostree's n_ops_executed counters (`static-delta show`). */
export const OP_STAT_NAMES = ["openspliceclose", "open", "write", "setread", "unsetread", "close", "bspatch"] as const;
const OP_STAT_INDEX: Record<number, number> = {
  [OP_OPEN_SPLICE_AND_CLOSE]: 0,
  [OP_OPEN]: 1,
  [OP_WRITE]: 2,
  [OP_SET_READ_SOURCE]: 3,
  [OP_UNSET_READ_SOURCE]: 4,
  [OP_CLOSE]: 5,
  [OP_BSPATCH]: 6,
};

export interface ModeEntry {
  uid: number;
  gid: number;
  mode: number;
}

/** An xattr set: names without the trailing NUL. */
export type XattrSet = Array<readonly [name: string, value: Uint8Array]>;

export interface PartPayload {
  modes: ModeEntry[];
  xattrs: XattrSet[];
  blob: Uint8Array;
  ops: Uint8Array;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

export function encodePartPayload(p: PartPayload): Uint8Array {
  return encodePartPayloadChunks({ modes: p.modes, xattrs: p.xattrs, blobChunks: [p.blob], ops: p.ops });
}

/**
 * The payload with its blob given as chunks, written straight into one
 * buffer: a generic GVariant encode would copy a 32 MB blob into a growing
 * buffer and then trim it (≈ 3× the blob in transient memory per part). The
 * layout is the tuple's normal form: modes (at 0, 4-aligned), xattrs, blob,
 * ops, then the framing offsets of the first three members' ends, last first,
 * each as wide as the whole tuple needs.
 */
export function encodePartPayloadChunks(p: { modes: readonly ModeEntry[]; xattrs: readonly XattrSet[]; blobChunks: readonly Uint8Array[]; ops: Uint8Array }): Uint8Array {
  const modes = encode("a(uuu)", p.modes.map((m) => [bswap32(m.uid), bswap32(m.gid), bswap32(m.mode)]));
  const xattrs = encode("aa(ayay)", p.xattrs.map((set) => set.map(([n, v]) => [Buffer.from(`${n}\0`, "utf8"), v])));
  const blobLen = p.blobChunks.reduce((s, c) => s + c.length, 0);
  const ends = [modes.length, modes.length + xattrs.length, modes.length + xattrs.length + blobLen];
  const body = ends[2]! + p.ops.length;
  let w = 1;
  while (w < 8 && body + 3 * w > 2 ** (8 * w) - 1) w *= 2;
  const out = new Uint8Array(body + 3 * w);
  out.set(modes, 0);
  out.set(xattrs, ends[0]!);
  let at = ends[1]!;
  for (const c of p.blobChunks) {
    out.set(c, at);
    at += c.length;
  }
  out.set(p.ops, at);
  at += p.ops.length;
  for (const end of ends.reverse()) {
    let v = end;
    for (let i = 0; i < w; i++) {
      out[at++] = v % 256;
      v = Math.floor(v / 256);
    }
  }
  return out;
}

export function decodePartPayload(bytes: Uint8Array, what = "delta part"): PartPayload {
  let v: readonly Value[];
  try {
    v = decode(PART_PAYLOAD_TYPE, bytes, { strict: false }) as readonly Value[];
  } catch (e) {
    throw new DeltaFormatError(`${what}: invalid payload: ${(e as Error).message}`);
  }
  return { ...partTables(v[0]!, v[1]!, what), blob: v[2] as Uint8Array, ops: v[3] as Uint8Array };
}

/**
 * The payload's modes and xattr sets from their own serialized bytes (the
 * first two members of the payload tuple), for a payload read in pieces.
 */
export function decodePartTables(modes: Uint8Array, xattrs: Uint8Array, what = "delta part"): Pick<PartPayload, "modes" | "xattrs"> {
  try {
    return partTables(decode("a(uuu)", modes, { strict: false }), decode("aa(ayay)", xattrs, { strict: false }), what);
  } catch (e) {
    if (e instanceof DeltaFormatError) throw e;
    throw new DeltaFormatError(`${what}: invalid payload: ${(e as Error).message}`);
  }
}

function partTables(modesValue: Value, xattrsValue: Value, what: string): Pick<PartPayload, "modes" | "xattrs"> {
  const modes = (modesValue as Array<[number, number, number]>).map(([u, g, m]) => ({ uid: bswap32(u), gid: bswap32(g), mode: bswap32(m) }));
  const xattrs = (xattrsValue as Array<Array<[Uint8Array, Uint8Array]>>).map((set, i) =>
    set.map(([n, val]): readonly [string, Uint8Array] => {
      if (n.length === 0 || n[n.length - 1] !== 0) throw new DeltaFormatError(`${what}: xattr set ${i} has a name without its NUL terminator`);
      let name: string;
      try {
        name = utf8.decode(n.subarray(0, n.length - 1));
      } catch {
        throw new DeltaFormatError(`${what}: xattr set ${i} has a name that is not UTF-8`);
      }
      return [name, val];
    }),
  );
  return { modes, xattrs };
}

/** Part file = compression byte + (compressed) payload. */
export function partFileBytes(kind: CompressionKind, compressed: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + compressed.length);
  out[0] = compressionByte(kind);
  out.set(compressed, 1);
  return out;
}

export function sha256Hex(b: Uint8Array): string {
  return createHash("sha256").update(b).digest("hex");
}

export interface OpenPartOptions extends DecompressOptions {
  /** Expected sha256 of the whole part file; omitted = not checked (inline parts). */
  expectedChecksum?: string;
  /** Decompressed payload cap (bytes). */
  maxPayloadSize: number;
  label?: string;
  /** Scratch directory for the `xz` decoder's output (default the OS temp dir). */
  tmpDir?: string;
}

/** Verifies, decompresses and decodes a part file. */
export async function openPart(file: Uint8Array, options: OpenPartOptions): Promise<PartPayload> {
  const what = options.label ?? "delta part";
  if (file.length < 1) throw new DeltaFormatError(`${what}: empty part file`);
  if (options.expectedChecksum !== undefined) {
    const actual = sha256Hex(file);
    if (actual !== options.expectedChecksum) {
      throw new DeltaFormatError(`Checksum mismatch in static delta part; expected=${options.expectedChecksum} actual=${actual}`);
    }
  }
  let kind: CompressionKind;
  try {
    kind = compressionKindOf(file[0]!);
  } catch {
    throw new DeltaFormatError(`${what}: Invalid compression type '${file[0]}'`);
  }
  let payload: Uint8Array;
  try {
    payload =
      kind === "xz" && options.decoder === "xz"
        ? await xzDecodeWithBinary(file.subarray(1), options.maxPayloadSize, { xzPath: options.xzPath, tmpDir: options.tmpDir })
        : await decompress(file.subarray(1), kind, options.maxPayloadSize, options);
  } catch (e) {
    if (e instanceof DeltaFormatError) throw new DeltaFormatError(`${what}: ${e.message}`);
    throw e;
  }
  return decodePartPayload(payload, what);
}

/* ---------- bytecode ---------- */

export function writeVarint(out: number[], v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`varint operand ${v} out of range`);
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
}

/** Reads a varuint64 (≤ 10 bytes); values above 2^53 are refused (no part can address them). */
export function readVarint(buf: Uint8Array, at: { i: number }, what: string): number {
  let r = 0;
  let mul = 1;
  for (let n = 0; n < 10; n++) {
    if (at.i >= buf.length) throw new DeltaFormatError(`${what}: truncated varint at ops offset ${at.i}`);
    const c = buf[at.i++]!;
    r += (c & 0x7f) * mul;
    if (!(c & 0x80)) {
      if (!Number.isSafeInteger(r)) throw new DeltaFormatError(`${what}: varint ${r} at ops offset ${at.i} exceeds 2^53`);
      return r;
    }
    mul *= 128;
  }
  throw new DeltaFormatError(`${what}: varint longer than 10 bytes at ops offset ${at.i}`);
}

export interface Op {
  code: number;
  args: number[];
  /** Offset of the opcode byte in the ops stream. */
  at: number;
}

const NARGS: Record<number, number> = { [OP_OPEN]: 3, [OP_WRITE]: 2, [OP_SET_READ_SOURCE]: 1, [OP_UNSET_READ_SOURCE]: 0, [OP_CLOSE]: 0, [OP_BSPATCH]: 2 };

/**
 * Decodes the bytecode; `S` takes 4 operands for content objects and 2 for
 * metadata, so the part's object list is needed. Unknown opcodes and
 * truncated operands are DeltaFormatErrors.
 */
export function parseOps(ops: Uint8Array, objects: readonly DeltaObject[], what = "delta part"): Op[] {
  const out: Op[] = [];
  const at = { i: 0 };
  let k = 0;
  while (at.i < ops.length) {
    const start = at.i;
    const code = ops[at.i++]!;
    let n: number | undefined;
    if (code === OP_OPEN_SPLICE_AND_CLOSE) {
      const obj = objects[k];
      if (!obj) throw new DeltaFormatError(`${what}: opcode 'S' at offset ${start} writes object #${k}, but the part lists ${objects.length}`);
      n = obj.type === 1 ? 4 : 2;
    } else {
      n = NARGS[code];
    }
    if (n === undefined) throw new DeltaFormatError(`${what}: Unknown opcode ${code} at offset ${start}`);
    const args: number[] = [];
    for (let j = 0; j < n; j++) args.push(readVarint(ops, at, what));
    if (code === OP_OPEN_SPLICE_AND_CLOSE || code === OP_CLOSE) k++;
    out.push({ code, args, at: start });
  }
  return out;
}

/** ostree's n_ops_executed counters for `static-delta show`. */
export function opStats(ops: readonly Op[]): number[] {
  const n = [0, 0, 0, 0, 0, 0, 0];
  for (const op of ops) n[OP_STAT_INDEX[op.code]!]!++;
  return n;
}

/** Appends opcodes with LEB128 operands. */
export class OpWriter {
  private readonly bytes: number[] = [];
  op(code: number, ...args: number[]): void {
    this.bytes.push(code);
    for (const a of args) writeVarint(this.bytes, a);
  }
  get length(): number {
    return this.bytes.length;
  }
  finish(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}
