import { randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { open, readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { Readable, Writable } from "node:stream";
import { promisify } from "node:util";
import { createInflateRaw, inflateRaw, inflateRawSync } from "node:zlib";
import {
  contentHasher,
  CorruptObjectError,
  decodeFilezHeader,
  isSymlink,
  ObjectNotFoundError,
  ObjectType,
  objectTypeName,
  Repo,
  unframe,
  type FileMeta,
} from "@ostree-ts/objstore";
import { HttpClient, MAX_METADATA_SIZE, type Downloaded } from "./http.js";

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

/** Where a pull reads from: `meta` paths go to `url`, `content` paths to `contenturl`. */
export interface PullSource {
  readonly kind: "http" | "local";
  /** A repo-relative file (config, summary, refs/…, deltas/…); null when absent. */
  getFile(base: "meta" | "content", rel: string, maxSize?: number): Promise<Uint8Array | null>;
  /** A metadata object's bytes (not yet verified), or null when absent. */
  getMetadata(type: ObjectType, checksum: string): Promise<Uint8Array | null>;
  /** Fetch a content object and check it hashes to `checksum` (throws CorruptObjectError otherwise). */
  getContent(checksum: string, tmpDir: string, verify: boolean): Promise<FetchedContent>;
  close(): Promise<void>;
}

function objectRel(checksum: string, ext: string): string {
  return `objects/${checksum.slice(0, 2)}/${checksum.slice(2)}.${ext}`;
}

/** Payloads up to this size are inflated in memory. */
const SMALL = 1 << 20;
/** Received `.filez` bodies up to this size are never written to a temp file. */
const FILEZ_IN_MEMORY = 2 * SMALL;
/**
 * Payloads up to this size are also inflated in memory (on the threadpool)
 * while their total stays within BIG_BUDGET; the others stream through a temp
 * file, which writeContent then reads back (written twice, read once).
 */
const BIG_PAYLOAD = 8 * SMALL;
const BIG_BUDGET = 32 * SMALL;
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

/** Static-file remote over HTTP(S) (an archive repo). */
export class HttpSource implements PullSource {
  readonly kind = "http";
  /** Bytes of large payloads held in memory now (see BIG_BUDGET). */
  private bigInMemory = 0;
  constructor(
    readonly http: HttpClient,
    readonly url: string,
    readonly contentUrl: string,
  ) {}

  private join(base: "meta" | "content", rel: string): string {
    const b = base === "meta" ? this.url : this.contentUrl;
    return `${b.replace(/\/+$/, "")}/${rel}`;
  }

  async getFile(base: "meta" | "content", rel: string, maxSize = MAX_METADATA_SIZE): Promise<Uint8Array | null> {
    const r = await this.http.get(this.join(base, rel), { optional: true, maxSize });
    return r ? new Uint8Array(r.body) : null;
  }

  /** A file in memory up to `o.memoryLimit` bytes, else in `dest` (see HttpClient.fetchBody); null when absent. */
  fetchBody(base: "meta" | "content", rel: string, dest: string, o: { maxSize?: number; memoryLimit?: number }): Promise<Downloaded | null> {
    return this.http.fetchBody(this.join(base, rel), dest, { optional: true, ...o });
  }

  async getMetadata(type: ObjectType, checksum: string): Promise<Uint8Array | null> {
    const base = type === ObjectType.CommitMeta ? "meta" : "content";
    return this.getFile(base, objectRel(checksum, objectTypeName(type)));
  }

  async getContent(checksum: string, tmpDir: string, verify: boolean): Promise<FetchedContent> {
    const filezPath = join(tmpDir, `fetch-${checksum}-${tmpSuffix()}.filez`);
    const got = await this.http.fetchBody(this.join("content", objectRel(checksum, "filez")), filezPath, { memoryLimit: FILEZ_IN_MEMORY });
    if (got === null) throw new ObjectNotFoundError(checksum, "file");
    const reserve = (size: number): (() => void) | null => {
      if (this.bigInMemory + size > BIG_BUDGET) return null;
      this.bigInMemory += size;
      let held = true;
      return () => {
        if (held) this.bigInMemory -= size;
        held = false;
      };
    };
    if (got.data) {
      const filez = new Uint8Array(got.data.buffer, got.data.byteOffset, got.data.length);
      return { ...(await parseFilez({ bytes: filez }, checksum, tmpDir, verify, reserve)), filez, wireBytes: got.bytes };
    }
    try {
      const parsed = await parseFilez({ path: filezPath }, checksum, tmpDir, verify, reserve);
      return { ...parsed, filezPath, wireBytes: got.bytes };
    } catch (e) {
      await rm(filezPath, { force: true });
      throw e;
    }
  }

  async close(): Promise<void> {
    await this.http.close();
  }
}

/**
 * Decode a received `.filez` (in memory or in a file): header, then the
 * raw-deflate payload, hashing as it goes when `verify`. Small payloads come
 * back in memory, large ones in a temp file.
 */
async function parseFilez(
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
export async function fetchedChecksum(f: FetchedContent): Promise<string> {
  const h = contentHasher(f.meta);
  if (f.data) return h.update(f.data).digest("hex");
  if (f.payloadPath) for await (const c of createReadStream(f.payloadPath)) h.update(c as Buffer);
  return h.digest("hex");
}

export function checkDigest(expected: string, actual: string): void {
  if (expected !== actual) throw new CorruptObjectError(expected, "file", `Corrupted file object; checksum expected='${expected}' actual='${actual}'`);
}

/** A repository on this machine (`pull-local`, `file://` remotes). */
export class LocalSource implements PullSource {
  readonly kind = "local";
  constructor(readonly repo: Repo) {}

  async getFile(_base: "meta" | "content", rel: string): Promise<Uint8Array | null> {
    try {
      return new Uint8Array(await readFile(join(this.repo.path, rel)));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "ENOTDIR" || code === "EISDIR") return null;
      throw e;
    }
  }

  async getMetadata(type: ObjectType, checksum: string): Promise<Uint8Array | null> {
    try {
      return await this.repo.loadMetadataBytes(type, checksum);
    } catch (e) {
      if (e instanceof ObjectNotFoundError) return null;
      throw e;
    }
  }

  async getContent(checksum: string, tmpDir: string, verify: boolean): Promise<FetchedContent> {
    const obj = await this.repo.openContent(checksum);
    const hasher = contentHasher(obj.meta);
    if (isSymlink(obj.meta)) {
      if (verify) checkDigest(checksum, hasher.digest("hex"));
      return { meta: obj.meta, size: 0, data: new Uint8Array(0), wireBytes: 0 };
    }
    if (obj.size <= SMALL) {
      const chunks: Buffer[] = [];
      for await (const c of obj.payload()) chunks.push(c as Buffer);
      const data = Buffer.concat(chunks);
      if (data.length !== obj.size) throw new CorruptObjectError(checksum, "file", `payload is ${data.length} bytes, header says ${obj.size}`);
      if (verify) checkDigest(checksum, hasher.update(data).digest("hex"));
      return { meta: obj.meta, size: obj.size, data: new Uint8Array(data.buffer, data.byteOffset, data.length), wireBytes: 0 };
    }
    const payloadPath = join(tmpDir, `fetch-${checksum}-${tmpSuffix()}.payload`);
    const out = await open(payloadPath, "w", 0o600);
    try {
      await pipeline(
        obj.payload(),
        new Writable({
          write(chunk: Buffer, _enc, cb) {
            hasher.update(chunk);
            out.write(chunk).then(() => cb(), cb);
          },
        }),
      );
      if (verify) checkDigest(checksum, hasher.digest("hex"));
    } catch (e) {
      await out.close();
      await rm(payloadPath, { force: true });
      throw e;
    }
    await out.close();
    return { meta: obj.meta, size: obj.size, payloadPath, wireBytes: 0 };
  }

  async close(): Promise<void> {}
}
