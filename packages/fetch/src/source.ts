import { open, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { Writable } from "node:stream";
import { contentHasher, CorruptObjectError, isSymlink, ObjectNotFoundError, ObjectType, objectTypeName, Repo } from "@ostree-ts/objstore";
import { checkDigest, parseFilez, SMALL, tmpSuffix, type FetchedContent } from "./filez.js";
import { HttpClient, MAX_METADATA_SIZE, type Downloaded } from "./http.js";

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

/** Received `.filez` bodies up to this size are never written to a temp file. */
const FILEZ_IN_MEMORY = 2 * SMALL;
/** Large payloads (see BIG_PAYLOAD) inflated in memory at once, in bytes. */
const BIG_BUDGET = 32 * SMALL;

/** Static-file remote over HTTP(S) (an archive repo). */
export class HttpSource implements PullSource {
  readonly kind = "http";
  /** Bytes of large payloads held in memory now (see BIG_BUDGET). */
  private bigInMemory = 0;
  /** Requests started by prefetch, by `base:rel`, until getFile takes them. */
  private readonly prefetched = new Map<string, Promise<Uint8Array | null>>();
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
    const key = `${base}:${rel}`;
    const early = this.prefetched.get(key);
    if (early !== undefined && maxSize === MAX_METADATA_SIZE) {
      this.prefetched.delete(key);
      return early;
    }
    const r = await this.http.get(this.join(base, rel), { optional: true, maxSize });
    return r ? new Uint8Array(r.body) : null;
  }

  /**
   * Start the request for a file the pull will certainly ask getFile for, so it
   * overlaps work that does not need its answer (ostree's pull has several
   * requests in flight from the start); the next getFile of it takes that answer,
   * and a failure is thrown there.
   */
  prefetch(base: "meta" | "content", rel: string): void {
    const key = `${base}:${rel}`;
    if (this.prefetched.has(key)) return;
    const p = this.http.get(this.join(base, rel), { optional: true, maxSize: MAX_METADATA_SIZE }).then((r) => (r ? new Uint8Array(r.body) : null));
    // Observed by getFile; until then a rejection must not count as unhandled.
    p.catch(() => undefined);
    this.prefetched.set(key, p);
  }

  /** A file in memory up to `o.memoryLimit` bytes, else in `dest` (see HttpClient.fetchBody); null when absent. */
  fetchBody(base: "meta" | "content", rel: string, dest: string, o: { maxSize?: number; memoryLimit?: number }): Promise<Downloaded | null> {
    return this.http.fetchBody(this.join(base, rel), dest, { optional: true, ...o });
  }

  async getMetadata(type: ObjectType, checksum: string): Promise<Uint8Array | null> {
    const base = type === ObjectType.CommitMeta ? "meta" : "content";
    return this.getFile(base, objectRel(checksum, objectTypeName(type)));
  }

  /** A content object's `.filez` as received: in memory up to 2 MiB, else in the returned temp file (caller removes it). */
  async fetchFilez(checksum: string, tmpDir: string): Promise<{ got: Downloaded; filezPath: string }> {
    const filezPath = join(tmpDir, `fetch-${checksum}-${tmpSuffix()}.filez`);
    const got = await this.http.fetchBody(this.join("content", objectRel(checksum, "filez")), filezPath, { memoryLimit: FILEZ_IN_MEMORY });
    if (got === null) throw new ObjectNotFoundError(checksum, "file");
    return { got, filezPath };
  }

  async getContent(checksum: string, tmpDir: string, verify: boolean): Promise<FetchedContent> {
    const { got, filezPath } = await this.fetchFilez(checksum, tmpDir);
    return this.decodeFilez(got, filezPath, checksum, tmpDir, verify);
  }

  /** A `.filez` from fetchFilez, decoded (and hashed when `verify`); its temp file is removed on failure. */
  async decodeFilez(got: Downloaded, filezPath: string, checksum: string, tmpDir: string, verify: boolean): Promise<FetchedContent> {
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
