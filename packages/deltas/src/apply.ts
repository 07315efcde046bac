/**
 * Applying static deltas (deltas.md §5, §8). Parts are executed into any
 * repository mode (also archive, which ostree 2022.7 refuses): every object
 * is built in memory and stored through Repo.writeContent/writeMetadata with
 * its expected checksum, so nothing that hashes differently is ever stored.
 *
 * Before anything is written a part is (1) checked against its header
 * checksum (unless inline), (2) decompressed with a cap derived from its
 * declared sizes, and (3) its whole program is validated: opcodes, operand
 * ranges against the blob and tables, object count and open/close pairing.
 * A part failing any of these writes nothing. What can only be detected
 * while running (a bsdiff control out of bounds, a read source missing, an
 * object hashing wrong) stops the part; objects already stored by then were
 * each verified.
 */
import { accessSync, closeSync, constants, fstatSync, lstatSync, openSync, readSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { delimiter, dirname, join } from "node:path";
import type { Variant } from "@ostree-ts/gvariant";
import { CorruptObjectError, decodeOstreeMeta, ObjectType, readXattrs, type FileMeta, type Repo } from "@ostree-ts/objstore";
import { bspatch } from "./bspatch.js";
import { DeltaError, DeltaFormatError } from "./errors.js";
import { commitmetaKey, partPath } from "./naming.js";
import {
  OP_BSPATCH,
  OP_CLOSE,
  OP_OPEN,
  OP_OPEN_SPLICE_AND_CLOSE,
  OP_SET_READ_SOURCE,
  OP_UNSET_READ_SOURCE,
  OP_WRITE,
  decodePartTables,
  openPart,
  parseOps,
  sha256Hex,
  type Op,
  type PartPayload,
} from "./part.js";
import { DELTAPART_VERSION, inlinePart, readSuperblockBytes, verifySuperblockCommit, type PartHeader, type Superblock } from "./superblock.js";
import { COMPRESSION_XZ, type DecompressOptions } from "./compress.js";
import { xzDecodeToFile, type XzDecoded } from "./xz-decode.js";

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

/** A delta that is well-formed but cannot be applied here (missing FROM, fallbacks offline, …). */
export class DeltaApplyError extends DeltaError {
  override name = "DeltaApplyError";
}

export interface ApplyOptions extends DecompressOptions {
  /** Skip the part-file checksum (ostree does so for inline parts). */
  skipChecksum?: boolean;
  /** Absolute cap on a decompressed part payload (default 1 GiB). */
  maxPayloadSize?: number;
  /** Accept bsdiff patches mendsley's bspatch accepts but no generator emits. */
  lenientBspatch?: boolean;
  /** Scratch directory for part decompression (the repo's tmp/ when applying into a repo). */
  tmpDir?: string;
  /**
   * Have the temp files of a part's objects created ahead on the threadpool
   * (Repo.createTempsAhead), so each create's wait on the file system overlaps
   * building the next objects. Worth it where one thread executes parts
   * (apply-offline v1 → v2 wall −15 %); with two threads executing parts at
   * once their waits already overlap, and it only added CPU (pull by delta
   * v1 → v2: +0.2 s).
   */
  tempsAhead?: boolean;
}

export interface ApplyPartResult {
  /** False when every object of the part was already present. */
  executed: boolean;
  objectsWritten: number;
}

const DEFAULT_MAX_PAYLOAD = 1 << 30;

let xzBinary: boolean | undefined;
/**
 * Parts decompress with the system `xz` when it exists: it runs in another
 * process, so the next part decompresses while this one executes (the WASM
 * decoder would block this thread). Without it, the WASM decoder is used.
 */
function defaultDecoder(): "xz" | "wasm" {
  xzBinary ??= onPath("xz");
  return xzBinary ? "xz" : "wasm";
}

/** Whether an executable of that name is on PATH (a lookup, not a 40 ms `xz --version` spawn). */
function onPath(name: string): boolean {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return true;
    } catch {
      // Not in this directory.
    }
  }
  return false;
}

/** Payload cap for a part: objects + bsdiff/rollsum overhead, bounded by the absolute cap. */
function payloadCap(header: PartHeader, options: ApplyOptions): number {
  const abs = options.maxPayloadSize ?? DEFAULT_MAX_PAYLOAD;
  return Math.min(abs, 2 * header.usize + 64 * header.objects.length + (1 << 20));
}

function fail(what: string, op: Op, msg: string): never {
  throw new DeltaFormatError(`${what}: opcode '${String.fromCharCode(op.code)}' at ops offset ${op.at}: ${msg}`);
}

/** Static checks of a whole program before anything is written. */
export function validateProgram(payload: PartPayload, header: PartHeader, what = "delta part"): Op[] {
  return checkProgram(payload, payload.blob.length, header, what);
}

function checkProgram(payload: PartTables, blobLen: number, header: PartHeader, what: string): Op[] {
  const ops = parseOps(payload.ops, header.objects, what);
  const inBlob = (op: Op, off: number, len: number, name: string) => {
    if (off > blobLen || len > blobLen - off) fail(what, op, `${name} [${off}, ${off + len}) outside the ${blobLen}-byte payload blob`);
  };
  const modeOk = (op: Op, mi: number, xi: number) => {
    if (mi >= payload.modes.length) fail(what, op, `mode index ${mi} out of range (${payload.modes.length} modes)`);
    if (xi >= payload.xattrs.length) fail(what, op, `xattr index ${xi} out of range (${payload.xattrs.length} xattr sets)`);
  };
  let k = 0;
  let open: { size: number; written: number; patched: boolean } | null = null;
  let readSource = false;
  for (const op of ops) {
    const obj = header.objects[k];
    switch (op.code) {
      case OP_OPEN_SPLICE_AND_CLOSE: {
        if (open) fail(what, op, "object already open");
        if (obj!.type === ObjectType.File) {
          const [mi, xi, len, off] = op.args as [number, number, number, number];
          modeOk(op, mi, xi);
          const fmt = payload.modes[mi]!.mode & S_IFMT;
          if (fmt !== S_IFREG && fmt !== S_IFLNK) fail(what, op, `mode 0${payload.modes[mi]!.mode.toString(8)} is neither a regular file nor a symlink`);
          inBlob(op, off, len, "content");
        } else {
          const [len, off] = op.args as [number, number];
          inBlob(op, off, len, "metadata");
        }
        k++;
        break;
      }
      case OP_OPEN: {
        if (open) fail(what, op, "object already open");
        if (!obj) fail(what, op, `object #${k} is not in the part's object list (${header.objects.length})`);
        if (obj.type !== ObjectType.File) fail(what, op, `object #${k} is not a content object`);
        const [mi, xi, size] = op.args as [number, number, number];
        modeOk(op, mi, xi);
        if ((payload.modes[mi]!.mode & S_IFMT) !== S_IFREG) fail(what, op, "OPEN of a non-regular file");
        if (size > header.usize) fail(what, op, `object size ${size} exceeds the part's declared usize ${header.usize}`);
        open = { size, written: 0, patched: false };
        break;
      }
      case OP_WRITE: {
        if (!open) fail(what, op, "no open object");
        const [len, off] = op.args as [number, number];
        if (len > open.size - open.written) fail(what, op, `write of ${len} bytes overruns object size ${open.size} (at ${open.written})`);
        if (!readSource) inBlob(op, off, len, "write");
        open.written += len;
        break;
      }
      case OP_SET_READ_SOURCE: {
        inBlob(op, op.args[0]!, 32, "read source checksum");
        readSource = true;
        break;
      }
      case OP_UNSET_READ_SOURCE:
        readSource = false;
        break;
      case OP_BSPATCH: {
        if (!open) fail(what, op, "no open object");
        if (!readSource) fail(what, op, "no read source set");
        if (open.written !== 0 || open.patched) fail(what, op, "object already has data");
        const [off, len] = op.args as [number, number];
        inBlob(op, off, len, "bsdiff patch");
        open.patched = true;
        open.written = open.size;
        break;
      }
      case OP_CLOSE: {
        if (!open) fail(what, op, "no open object");
        if (open.written !== open.size) fail(what, op, `object #${k} closed after ${open.written} of ${open.size} bytes`);
        open = null;
        readSource = false;
        k++;
        break;
      }
    }
  }
  if (open) throw new DeltaFormatError(`${what}: program ends with object #${k} still open`);
  if (k !== header.objects.length) throw new DeltaFormatError(`${what}: program writes ${k} objects, the part lists ${header.objects.length}`);
  return ops;
}

/** A payload's modes, xattr sets and program: what is kept in memory while it runs. */
type PartTables = Pick<PartPayload, "modes" | "xattrs" | "ops">;

/** The payload's blob, by ranges: in memory, or read from the decoded file as ops need it. */
interface BlobReader {
  readonly length: number;
  /** Bytes [off, off + len): valid until the next call. */
  view(off: number, len: number): Uint8Array;
}

function memoryBlob(blob: Uint8Array): BlobReader {
  return { length: blob.length, view: (off, len) => blob.subarray(off, off + len) };
}

/**
 * A payload left in `xz`'s output file: its tail (the tuple's framing), modes,
 * xattrs and program are read; the blob (nearly all of a part: up to 32 MB) is
 * read a range at a time as ops use it, into one reused buffer, so a part
 * executing holds its largest object's bytes, not the whole payload.
 */
function filePayload(decoded: XzDecoded, what: string): { tables: PartTables; blob: BlobReader } {
  const size = decoded.size;
  // GLib's framing offset width for a container of this size; the tuple's three framed members end there.
  const w = size <= 0xff ? 1 : size <= 0xffff ? 2 : size <= 0xffffffff ? 4 : 8;
  if (size < 3 * w) throw new DeltaFormatError(`${what}: invalid payload: ${size} bytes`);
  const tail = Buffer.allocUnsafe(3 * w);
  decoded.readAt(tail, size - 3 * w);
  const end = (k: number) => Number(tail.readUIntLE(3 * w - (k + 1) * w, Math.min(w, 6)));
  const [modesEnd, xattrsEnd, blobEnd] = [end(0), end(1), end(2)];
  const opsEnd = size - 3 * w;
  if (w === 8 || !(modesEnd <= xattrsEnd && xattrsEnd <= blobEnd && blobEnd <= opsEnd)) throw new DeltaFormatError(`${what}: invalid payload: bad framing`);
  const head = new Uint8Array(xattrsEnd);
  decoded.readAt(head, 0);
  const ops = new Uint8Array(opsEnd - blobEnd);
  decoded.readAt(ops, blobEnd);
  const tables = { ...decodePartTables(head.subarray(0, modesEnd), head.subarray(modesEnd), what), ops };
  let buf = new Uint8Array(0);
  const blob: BlobReader = {
    length: blobEnd - xattrsEnd,
    view(off, len) {
      if (len > buf.length) buf = Buffer.allocUnsafeSlow(Math.max(len, Math.min(2 * buf.length, 16 << 20)));
      const v = buf.subarray(0, len);
      decoded.readAt(v, xattrsEnd + off);
      return v;
    },
  };
  return { tables, blob };
}

function metaFor(payload: PartTables, mi: number, xi: number, symlinkTarget = ""): FileMeta {
  const m = payload.modes[mi]!;
  return { uid: m.uid, gid: m.gid, mode: m.mode, symlinkTarget, xattrs: payload.xattrs[xi]! };
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Grow-only buffers reused across objects and parts: objects are built in one and read
 * sources read into the other, instead of allocating (and leaving to the GC and malloc)
 * one buffer per object — thousands per delta, up to a kernel image each. The object
 * store has consumed an object's bytes when writeContent returns.
 */
class Scratch {
  private buf = new Uint8Array(0);
  take(size: number): Uint8Array {
    if (size > this.buf.length) this.buf = Buffer.allocUnsafeSlow(Math.max(size, Math.min(2 * this.buf.length, 64 << 20)));
    return this.buf.subarray(0, size);
  }
}

/**
 * Objects written between turns of the event loop: writes are synchronous, and
 * the temp files created ahead for them (Repo.createTempsAhead) are handed over
 * only when the loop runs.
 */
const YIELD_EVERY = 4;
const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Runs a validated program against a repository. */
async function execute(repo: Repo, payload: PartTables, blob: BlobReader, header: PartHeader, ops: Op[], what: string, options: ApplyOptions): Promise<number> {
  let k = 0;
  let written = 0;
  let source: { checksum: string; data: Uint8Array } | null = null;
  const cache: { last: { checksum: string; data: Uint8Array } | null } = { last: null };
  const objectScratch = new Scratch();
  const sourceScratch = new Scratch();
  let open: { meta: FileMeta; buf: Uint8Array; at: number } | null = null;
  for (const op of ops) {
    const obj = header.objects[k];
    switch (op.code) {
      case OP_OPEN_SPLICE_AND_CLOSE: {
        if (obj!.type === ObjectType.File) {
          const [mi, xi, len, off] = op.args as [number, number, number, number];
          const bytes = blob.view(off, len);
          const isLink = (payload.modes[mi]!.mode & S_IFMT) === S_IFLNK;
          let target = "";
          if (isLink) {
            try {
              target = utf8.decode(bytes);
            } catch {
              fail(what, op, `symlink target of ${obj!.checksum} is not UTF-8`);
            }
          }
          await repo.writeContent(metaFor(payload, mi, xi, target), { data: isLink ? new Uint8Array(0) : bytes }, obj!.checksum);
        } else {
          const [len, off] = op.args as [number, number];
          await repo.writeMetadata(obj!.type as ObjectType, blob.view(off, len), obj!.checksum);
        }
        written++;
        k++;
        if (options.tempsAhead && k % YIELD_EVERY === 0) await yieldToLoop();
        break;
      }
      case OP_OPEN: {
        const [mi, xi, size] = op.args as [number, number, number];
        // Unzeroed: validation proved that WRITEs or one BSPATCH fill every byte before CLOSE.
        open = { meta: metaFor(payload, mi, xi), buf: objectScratch.take(size), at: 0 };
        break;
      }
      case OP_WRITE: {
        const [len, off] = op.args as [number, number];
        if (source) {
          if (off > source.data.length || len > source.data.length - off) {
            fail(what, op, `write [${off}, ${off + len}) outside read source ${source.checksum} of ${source.data.length} bytes`);
          }
          open!.buf.set(source.data.subarray(off, off + len), open!.at);
        } else {
          open!.buf.set(blob.view(off, len), open!.at);
        }
        open!.at += len;
        break;
      }
      case OP_SET_READ_SOURCE: {
        const off = op.args[0]!;
        const id = blob.view(off, 32);
        const checksum = Buffer.from(id.buffer, id.byteOffset, 32).toString("hex");
        if (cache.last?.checksum !== checksum) {
          let data: Uint8Array;
          try {
            data = await readSource(repo, checksum, sourceScratch, () => fail(what, op, `read source ${checksum} is not a regular file`));
          } catch (e) {
            if (e instanceof DeltaFormatError) throw e;
            throw new DeltaApplyError(`${what}: read source ${checksum}: ${(e as Error).message}`);
          }
          cache.last = { checksum, data };
        }
        source = cache.last;
        break;
      }
      case OP_UNSET_READ_SOURCE:
        source = null;
        break;
      case OP_BSPATCH: {
        const [off, len] = op.args as [number, number];
        bspatch(source!.data, blob.view(off, len), open!.buf.length, { lenient: options.lenientBspatch, label: `object ${obj!.checksum}` }, open!.buf);
        open!.at = open!.buf.length;
        break;
      }
      case OP_CLOSE: {
        await repo.writeContent(open!.meta, { data: open!.buf }, obj!.checksum);
        open = null;
        source = null;
        written++;
        k++;
        if (options.tempsAhead && k % YIELD_EVERY === 0) await yieldToLoop();
        break;
      }
    }
  }
  return written;
}

/**
 * A read source's payload. An object stored in a bare-mode repo is the
 * payload itself: its mode comes from a synchronous lstat (bare,
 * bare-user-only) or its `user.ostreemeta` xattr (bare-user), then one
 * synchronous read, with no threadpool round trip (a part can set ~600
 * sources). Archive objects, and objects only in a parent repo, go through
 * the stream.
 */
async function readSource(repo: Repo, checksum: string, scratch: Scratch, notRegular: () => never): Promise<Uint8Array> {
  const path = repo.isArchive ? null : repo.storedObjectPath(checksum, ObjectType.File);
  const st = path ? lstatSync(path, { throwIfNoEntry: false }) : undefined;
  if (path && st) {
    let mode = st.mode;
    if (repo.mode === "bare-user") {
      const meta = readXattrs(path).find(([name]) => name === "user.ostreemeta");
      if (!meta) throw new CorruptObjectError(checksum, "file", "missing user.ostreemeta xattr");
      mode = decodeOstreeMeta(meta[1], checksum).mode;
    }
    if ((mode & S_IFMT) !== S_IFREG || !st.isFile()) notRegular();
    return readWhole(path, scratch);
  }
  const obj = await repo.readContentBytes(checksum);
  if ((obj.meta.mode & S_IFMT) !== S_IFREG) notRegular();
  return obj.data;
}

/** A file's bytes in `scratch` (valid until its next use): one open, fstat and read. */
function readWhole(path: string, scratch: Scratch): Uint8Array {
  const fd = openSync(path, "r");
  try {
    const size = fstatSync(fd).size;
    const out = scratch.take(size);
    for (let at = 0; at < size; ) {
      const n = readSync(fd, out, at, size - at, at);
      if (n === 0) throw new DeltaApplyError(`${path} shrank while reading (${at} of ${size} bytes)`);
      at += n;
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

async function haveAll(repo: Repo, header: PartHeader): Promise<boolean> {
  for (const o of header.objects) if (!(await repo.hasObject(o.checksum, o.type as ObjectType))) return false;
  return true;
}

/**
 * Applies one part (the unit an HTTP fetcher downloads). `partBytes` is the
 * part file; its checksum is verified against the superblock unless
 * `skipChecksum`. Parts whose objects are all present are skipped.
 */
export async function applyPart(repo: Repo, superblock: Superblock, partIndex: number, partBytes: Uint8Array, options: ApplyOptions = {}): Promise<ApplyPartResult> {
  const header = superblock.parts[partIndex];
  if (header && header.version <= DELTAPART_VERSION && (header.objects.length === 0 || (await haveAll(repo, header)))) return { executed: false, objectsWritten: 0 };
  return executePrepared(repo, await preparePart(superblock, partIndex, partBytes, { tmpDir: repo.tmpDir, ...options }), options);
}

/** A part checked, decompressed and validated, ready to execute (nothing written yet). */
export interface PreparedPart {
  index: number;
  header: PartHeader;
  payload: PartTables;
  blob: BlobReader;
  ops: Op[];
  /** Releases the decoded file the blob is read from (executePrepared does, when done). */
  release(): void;
}

/** Stages 1–2 of applying a part: checksum, size, decompression with cap, program validation. */
export async function preparePart(superblock: Superblock, partIndex: number, partBytes: Uint8Array, options: ApplyOptions = {}): Promise<PreparedPart> {
  return (await fetchPart(superblock, partIndex, partBytes, options)).prepare();
}

/** A part checked and decompressed but, with the system `xz`, still in a temp file. */
export interface FetchedPart {
  /** Loads the payload (now in memory) and validates its program. */
  prepare(): PreparedPart;
  /** Releases the decoded output when the part will not run. */
  discard(): void;
}

/**
 * Stage 1 and the decompression of stage 2. With the system `xz` the payload stays in
 * an unlinked temp file until `prepare()`, so a part decoded ahead of its turn (while
 * the previous one executes) holds no memory; the checks are openPart's, in its order.
 */
export async function fetchPart(superblock: Superblock, partIndex: number, partBytes: Uint8Array, options: ApplyOptions): Promise<FetchedPart> {
  const header = superblock.parts[partIndex];
  const what = `delta part ${partIndex}`;
  if (!header) throw new DeltaFormatError(`${what}: superblock has only ${superblock.parts.length} parts`);
  if (header.version > DELTAPART_VERSION) throw new DeltaFormatError(`Delta part has too new version ${header.version}`);
  if (!options.skipChecksum && partBytes.length !== header.size) {
    throw new DeltaFormatError(`${what}: part file is ${partBytes.length} bytes, superblock says ${header.size}`);
  }
  const decoder = options.decoder ?? defaultDecoder();
  const validated = (payload: PartTables, blob: BlobReader, release: () => void): PreparedPart => ({
    index: partIndex,
    header,
    payload,
    blob,
    ops: checkProgram(payload, blob.length, header, what),
    release,
  });
  if (decoder !== "xz" || partBytes.length < 1 || partBytes[0] !== COMPRESSION_XZ) {
    const payload = await openPart(partBytes, {
      ...options,
      decoder,
      expectedChecksum: options.skipChecksum ? undefined : header.checksum,
      maxPayloadSize: payloadCap(header, options),
      label: what,
    });
    return { prepare: () => validated(payload, memoryBlob(payload.blob), () => undefined), discard: () => undefined };
  }
  if (!options.skipChecksum) {
    const actual = sha256Hex(partBytes);
    if (actual !== header.checksum) throw new DeltaFormatError(`Checksum mismatch in static delta part; expected=${header.checksum} actual=${actual}`);
  }
  let decoded;
  try {
    decoded = await xzDecodeToFile(partBytes.subarray(1), payloadCap(header, options), { xzPath: options.xzPath, tmpDir: options.tmpDir });
  } catch (e) {
    if (e instanceof DeltaFormatError) throw new DeltaFormatError(`${what}: ${e.message}`);
    throw e;
  }
  return {
    prepare: () => {
      try {
        const { tables, blob } = filePayload(decoded, what);
        return validated(tables, blob, () => decoded.close());
      } catch (e) {
        decoded.close();
        throw e;
      }
    },
    discard: () => decoded.close(),
  };
}

/** Stage 3: writes the part's objects, each verified against its checksum. */
export async function executePrepared(repo: Repo, prepared: PreparedPart, options: ApplyOptions = {}): Promise<ApplyPartResult> {
  const { header, payload, blob, ops } = prepared;
  const what = `delta part ${prepared.index}`;
  if (options.tempsAhead) repo.createTempsAhead(header.objects.length);
  try {
    return { executed: true, objectsWritten: await execute(repo, payload, blob, header, ops, what, options) };
  } catch (e) {
    if (e instanceof DeltaError) throw e;
    // Checksum mismatches from the object store (CorruptObjectError) mean a hostile/corrupt part.
    throw new DeltaFormatError(`Executing ${what}: ${(e as Error).message}`);
  } finally {
    repo.releaseTemps();
    prepared.release();
  }
}

export interface LoadedDelta {
  superblock: Superblock;
  /** Set when the superblock file was signed. */
  signed: ReturnType<typeof readSuperblockBytes>["signed"];
  /** Directory holding the part files. */
  dir: string;
  /** Part file bytes: inline (from the superblock) or read from `dir`. */
  readPart(i: number): Promise<{ bytes: Uint8Array; inline: boolean }>;
}

/** Opens a delta given its directory or its superblock file. */
export async function loadDelta(path: string): Promise<LoadedDelta> {
  const st = await stat(path);
  const sbPath = st.isDirectory() ? join(path, "superblock") : path;
  const dir = st.isDirectory() ? path : dirname(path);
  const { superblock, signed } = readSuperblockBytes(new Uint8Array(await readFile(sbPath)));
  verifySuperblockCommit(superblock);
  return {
    superblock,
    signed,
    dir,
    async readPart(i) {
      const inline = inlinePart(superblock, partPath(superblock.from, superblock.to, i));
      if (inline) return { bytes: inline, inline: true };
      try {
        return { bytes: new Uint8Array(await readFile(join(dir, String(i)))), inline: false };
      } catch (e) {
        throw new DeltaApplyError(`Opening deltapart '${i}': ${(e as Error).message}`);
      }
    },
  };
}

export interface ApplyOfflineResult {
  from: string | null;
  to: string;
  partsExecuted: number;
  objectsWritten: number;
}

/**
 * Runs `parts` one at a time, in order, with the next two fetched and decoded
 * ahead (ostree fetches at most two parts at once): at the start both decode at
 * once, later one decodes while the current one executes. Decoded parts wait in
 * temp files, so this costs no memory; those ahead of a failed part are discarded.
 */
export async function runPartsAhead(
  parts: readonly number[],
  fetch: (partIndex: number) => Promise<FetchedPart>,
  run: (prepared: PreparedPart) => Promise<void>,
): Promise<void> {
  const ahead: Array<Promise<FetchedPart>> = [];
  let fetched = 0;
  const fill = () => {
    while (ahead.length < 2 && fetched < parts.length) {
      const p = fetch(parts[fetched++]!);
      p.catch(() => undefined);
      ahead.push(p);
    }
  };
  fill();
  try {
    while (ahead.length > 0) {
      const current = (await ahead.shift()!).prepare();
      fill();
      await run(current);
    }
  } finally {
    for (const p of ahead) p.then((f) => f.discard(), () => undefined);
  }
}

/**
 * `ostree static-delta apply-offline PATH`: applies every part, then stores
 * the TO commit's detached metadata and the commit itself (last, so a commit
 * object never exists without its objects). No ref is changed.
 */
export async function applyOffline(repo: Repo, path: string, options: ApplyOptions = {}): Promise<ApplyOfflineResult> {
  const delta = await loadDelta(path);
  const sb = delta.superblock;
  if (sb.from !== null && !(await repo.hasObject(sb.from, ObjectType.Commit))) {
    throw new DeltaApplyError(`Commit ${sb.from}, which is the delta source, is not in repository`);
  }
  if (sb.fallbacks.length > 0) throw new DeltaApplyError("Cannot execute delta offline: contains nonempty http fallback entries");
  let partsExecuted = 0;
  let objectsWritten = 0;
  const haveTo = await repo.hasObject(sb.to, ObjectType.Commit);
  // Parts to run (ostree skips those whose objects are all present).
  const todo: number[] = [];
  for (let i = 0; i < sb.parts.length; i++) {
    const h = sb.parts[i]!;
    if (h.version > DELTAPART_VERSION) throw new DeltaFormatError(`Delta part has too new version ${h.version}`);
    if (h.objects.length > 0 && !(await haveAll(repo, h))) todo.push(i);
  }
  const fetch = (i: number) =>
    delta.readPart(i).then(({ bytes, inline }) => fetchPart(sb, i, bytes, { tmpDir: repo.tmpDir, ...options, skipChecksum: options.skipChecksum || inline }));
  await runPartsAhead(todo, fetch, async (current) => {
    const r = await executePrepared(repo, current, { tempsAhead: true, ...options });
    partsExecuted++;
    objectsWritten += r.objectsWritten;
  });
  if (!haveTo) {
    const meta = sb.metadata.find(([k]) => k === commitmetaKey(sb.from, sb.to));
    if (meta) {
      if (meta[1].type !== "a{sv}") throw new DeltaFormatError(`superblock ${meta[0]}: expected a{sv}, got ${meta[1].type}`);
      await repo.writeCommitMeta(sb.to, (meta[1].value as Array<[string, Variant]>).map(([k, v]) => [k, v] as const));
    }
    await repo.writeMetadata(ObjectType.Commit, sb.commit, sb.to);
  }
  return { from: sb.from, to: sb.to, partsExecuted, objectsWritten };
}
