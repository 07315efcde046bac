import { randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { open, readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { Readable, Writable } from "node:stream";
import { promisify } from "node:util";
import { createInflateRaw, inflateRaw, inflateRawSync } from "node:zlib";
import { contentHasher, CorruptObjectError, decodeFilezHeader, isRegular, isSymlink, unframe, type FileMeta, type Repo } from "@ostree-ts/objstore";
import { PullError } from "./errors.js";
import { MAX_METADATA_SIZE } from "./limits.js";

/*
 * Decoding a received `.filez` and storing its content in a non-archive repo.
 * Kept apart from the HTTP client (no undici here): the store worker
 * (store-pool.ts) loads this module and objstore only.
 */

/** A content object fetched and verified, ready to store. */
export interface FetchedContent {
  meta: FileMeta;
  size: number;
  /** The payload, for small objects. */
  data?: Uint8Array;
  /** A temp file holding the payload, for large objects (caller removes it). */
  payloadPath?: string;
  /** The received `.filez` file, still in tmp/ (archive targets store it as is; caller removes it). */
  filezPath?: string;
  /** The received `.filez` bytes, when small enough to stay in memory (archive targets store them as is). */
  filez?: Uint8Array;
  /** Bytes moved on the wire. */
  wireBytes: number;
  /** Returns a large in-memory payload's share of the memory budget (call once it is stored). */
  release?: () => void;
}

/** Payloads up to this size are inflated in memory. */
export const SMALL = 1 << 20;
/**
 * Payloads up to this size are also inflated in memory (on the threadpool)
 * while the caller's budget allows (`reserve`); the others stream through a temp
 * file, which writeContent then reads back (written twice, read once).
 */
export const BIG_PAYLOAD = 8 * SMALL;
const inflateRawAsync = promisify(inflateRaw);

/**
 * Unique temp-file suffixes: one random prefix per process and a counter. A
 * name is made for every object fetched and most are never created, so a
 * getrandom call (plus OpenSSL's fork check) per object was wasted work.
 */
const TMP_PREFIX = randomBytes(4).toString("hex");
let tmpCounter = 0;
export function tmpSuffix(): string {
  return `${TMP_PREFIX}${(tmpCounter++).toString(16)}`;
}

/**
 * Decode a received `.filez` (in memory or in a file): header, then the
 * raw-deflate payload, hashing as it goes when `verify`. Small payloads come
 * back in memory, large ones in a temp file.
 */
export async function parseFilez(
  src: { bytes: Uint8Array } | { path: string },
  checksum: string,
  tmpDir: string,
  verify: boolean,
  reserve: (size: number) => (() => void) | null,
): Promise<Omit<FetchedContent, "filezPath" | "wireBytes">> {
  const total = "bytes" in src ? src.bytes.length : (await stat(src.path)).size;
  if (total < 8) throw new CorruptObjectError(checksum, "file", "truncated .filez header");
  let headerBytes: Uint8Array;
  if ("bytes" in src) {
    const len = new DataView(src.bytes.buffer, src.bytes.byteOffset, 4).getUint32(0, false);
    if (len > total - 8 || len > MAX_METADATA_SIZE) throw new CorruptObjectError(checksum, "file", `header length ${len} exceeds object size`);
    headerBytes = src.bytes.subarray(0, 8 + len);
  } else {
    const fh = await open(src.path, "r");
    try {
      const prefix = Buffer.alloc(8);
      await fh.read(prefix, 0, 8, 0);
      const len = prefix.readUInt32BE(0);
      if (len > total - 8 || len > MAX_METADATA_SIZE) throw new CorruptObjectError(checksum, "file", `header length ${len} exceeds object size`);
      const buf = Buffer.alloc(8 + len);
      await fh.read(buf, 0, buf.length, 0);
      headerBytes = new Uint8Array(buf);
    } finally {
      await fh.close();
    }
  }
  const { header, payloadOffset } = unframe(headerBytes, checksum);
  const { meta, size } = decodeFilezHeader(header, checksum);
  const hasher = contentHasher(meta);
  if (isSymlink(meta)) {
    if (verify) checkDigest(checksum, hasher.digest("hex"));
    return { meta, size: 0, data: new Uint8Array(0) };
  }
  const small = size <= SMALL && total - payloadOffset <= SMALL * 2;
  const release = !small && size <= BIG_PAYLOAD && total - payloadOffset <= 2 * size + 1024 ? reserve(size) : null;
  if (small || release) {
    try {
      const raw = "bytes" in src ? src.bytes : await readFile(src.path);
      // One output chunk of the declared size: no 16 KiB pieces to collect and join.
      const opts = { maxOutputLength: size + 1, chunkSize: Math.max(64, size + 1) };
      let data: Buffer;
      try {
        data = small ? inflateRawSync(raw.subarray(payloadOffset), opts) : await inflateRawAsync(raw.subarray(payloadOffset), opts);
      } catch (e) {
        throw new CorruptObjectError(checksum, "file", `corrupted compressed payload: ${(e as Error).message}`);
      }
      if (data.length !== size) throw new CorruptObjectError(checksum, "file", `payload is ${data.length} bytes, header says ${size}`);
      if (verify) checkDigest(checksum, hasher.update(data).digest("hex"));
      return { meta, size, data: new Uint8Array(data.buffer, data.byteOffset, data.length), release: release ?? undefined };
    } catch (e) {
      release?.();
      throw e;
    }
  }
  const payloadPath = join(tmpDir, `fetch-${checksum}-${tmpSuffix()}.payload`);
  const out = await open(payloadPath, "w", 0o600);
  let n = 0;
  try {
    await pipeline(
      "bytes" in src ? Readable.from([Buffer.from(src.bytes.buffer, src.bytes.byteOffset + payloadOffset, total - payloadOffset)]) : createReadStream(src.path, { start: payloadOffset }),
      createInflateRaw(),
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          n += chunk.length;
          if (n > size) return cb(new CorruptObjectError(checksum, "file", `payload exceeds ${size} bytes`));
          if (verify) hasher.update(chunk);
          out.write(chunk).then(() => cb(), cb);
        },
      }),
    );
  } catch (e) {
    await out.close();
    await rm(payloadPath, { force: true });
    if (e instanceof CorruptObjectError) throw e;
    throw new CorruptObjectError(checksum, "file", `corrupted compressed payload: ${(e as Error).message}`);
  }
  await out.close();
  try {
    if (n !== size) throw new CorruptObjectError(checksum, "file", `payload is ${n} bytes, header says ${size}`);
    if (verify) checkDigest(checksum, hasher.digest("hex"));
  } catch (e) {
    await rm(payloadPath, { force: true });
    throw e;
  }
  return { meta, size, payloadPath };
}

/** The content checksum of a fetched object (to name what a corrupt one really hashes to). */
export async function fetchedChecksum(f: Pick<FetchedContent, "meta" | "data" | "payloadPath">): Promise<string> {
  const h = contentHasher(f.meta);
  if (f.data) return h.update(f.data).digest("hex");
  if (f.payloadPath) for await (const c of createReadStream(f.payloadPath)) h.update(c as Buffer);
  return h.digest("hex");
}

export function checkDigest(expected: string, actual: string): void {
  if (expected !== actual) throw new CorruptObjectError(expected, "file", `Corrupted file object; checksum expected='${expected}' actual='${actual}'`);
}

/** Mode-bit check of `--bareuseronly-files` (and bare-user-only targets). */
export function checkBareUserOnly(checksum: string, meta: FileMeta): void {
  const invalid = meta.mode & 0o7777 & ~0o775;
  if (isRegular(meta) && invalid !== 0) {
    // _ostree_validate_bareuseronly_mode's text (%04o of the whole mode and of the offending bits).
    const o4 = (n: number) => n.toString(8).padStart(4, "0");
    throw new PullError(`Content object ${checksum}: invalid mode 0${o4(meta.mode)} with bits 0${o4(invalid)}`);
  }
}

/**
 * Store a fetched content object in a non-archive repo under `checksum`.
 * writeContent hashes what it writes and refuses a mismatch before anything
 * is stored; the error then carries ostree's wording, with what the object
 * really hashes to.
 */
export async function writeFetched(repo: Repo, checksum: string, f: Pick<FetchedContent, "meta" | "size" | "data" | "payloadPath">, fsync: boolean | undefined): Promise<void> {
  const payload = f.data ? { data: f.data } : { path: f.payloadPath!, size: f.size };
  try {
    await repo.writeContent(f.meta, payload, checksum, { fsync });
  } catch (e) {
    if (e instanceof CorruptObjectError) checkDigest(checksum, await fetchedChecksum(f));
    throw e;
  }
}
