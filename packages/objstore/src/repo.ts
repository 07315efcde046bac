import { randomBytes } from "node:crypto";
import {
  closeSync,
  constants as FS,
  createReadStream,
  fchmodSync,
  fchownSync,
  fdatasyncSync,
  futimesSync,
  lchownSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writevSync,
} from "node:fs";
import { type FileHandle, chmod, chown, lchown, link, lstat, lutimes, mkdir, open, readFile, readlink, readdir, rename, rm, stat, symlink, unlink } from "node:fs/promises";
import { join } from "node:path";
import { Readable, Transform, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import { createDeflateRaw, createInflateRaw, deflateRaw, deflateRawSync } from "node:zlib";
import { getAttributeSync, listAttributesSync, setAttributeSync } from "@napi-rs/xattr";
import { sha256Hex } from "./checksum.js";
import { assertChecksum } from "./checksum.js";
import {
  contentHasher,
  decodeFilezHeader,
  decodeOstreeMeta,
  encodeFileHeader,
  encodeFilezHeader,
  encodeOstreeMeta,
  isSymlink,
  unframe,
  type FileMeta,
} from "./content.js";
import { CorruptObjectError, InvalidArgumentError, ObjectNotFoundError, RepoError } from "./errors.js";
import { KeyFile } from "./keyfile.js";
import {
  decodeCommit,
  decodeDirMeta,
  decodeDirTree,
  decodeMetadataDict,
  encodeMetadataDict,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  type Commit,
  type DirMeta,
  type DirTree,
  type MetadataDict,
  type Xattrs,
} from "./metadata.js";
import { isMetadataType, ObjectType, objectTypeFromName, objectTypeName } from "./object-types.js";

export type RepoMode = "bare" | "bare-user" | "bare-user-only" | "archive";

/** Mode strings as `config` spells them. `archive` is written as `archive-z2`, as ostree does. */
export function parseRepoMode(s: string): RepoMode {
  switch (s) {
    case "bare":
    case "bare-user":
    case "bare-user-only":
      return s;
    case "archive":
    case "archive-z2":
      return "archive";
    default:
      throw new RepoError(`Invalid mode '${s}' in repository configuration`);
  }
}

export function modeConfigString(mode: RepoMode): string {
  return mode === "archive" ? "archive-z2" : mode;
}

/** A content object opened for reading. */
export interface ContentObject {
  meta: FileMeta;
  /** Uncompressed payload size (symlinks: 0). */
  size: number;
  /** Stream of the raw payload (empty for symlinks). */
  payload(): Readable;
}

export interface InitOptions {
  mode?: RepoMode;
  collectionId?: string;
}

export interface WriteOptions {
  /** fsync each object before it is renamed into place. */
  fsync?: boolean;
}

const INIT_DIRS = ["tmp", "extensions", "state", "refs", "refs/heads", "refs/mirrors", "refs/remotes", "objects"];
/** Payloads up to this size are read and written in one go; larger ones stream. */
const SMALL_FILE = 1 << 20;
/** Archive payloads below this are deflated inline; larger ones on libuv's threadpool, in parallel. */
const INLINE_DEFLATE = 16 << 10;
const deflateRawAsync = promisify(deflateRaw);
const TMP_PREFIX = randomBytes(4).toString("hex");
let tmpCounter = 0;

/** Where a new content object's payload comes from. */
export type PayloadSource = { data: Uint8Array } | { path: string; size: number };

/** Objects this Repo handle stored that were not already present: ostree's transaction stats. */
export interface WriteStats {
  metadataWritten: number;
  contentWritten: number;
  /** Payload bytes of the content objects written. */
  contentBytesWritten: number;
}

export class Repo {
  readonly writeStats: WriteStats = { metadataWritten: 0, contentWritten: 0, contentBytesWritten: 0 };
  private parent: Promise<Repo | null> | undefined;

  private constructor(
    readonly path: string,
    public config: KeyFile,
    readonly mode: RepoMode,
  ) {}

  /** Create a repository (like `ostree init`); an existing one is opened unchanged. */
  static async init(path: string, options: InitOptions = {}): Promise<Repo> {
    const mode = options.mode ?? "bare";
    const configPath = join(path, "config");
    try {
      await stat(join(path, "objects"));
      return await Repo.open(path);
    } catch (e) {
      if (!(e instanceof RepoError) && (e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    }
    await mkdir(path, { recursive: true });
    let text = `[core]\nrepo_version=1\nmode=${modeConfigString(mode)}\n`;
    if (options.collectionId) text += `collection-id=${options.collectionId}\n`;
    await atomicWrite(join(path, "tmp"), configPath, text, true);
    for (const d of INIT_DIRS) await mkdir(join(path, d), { recursive: true, mode: 0o775 });
    return Repo.open(path);
  }

  static async open(path: string): Promise<Repo> {
    try {
      const st = await stat(join(path, "objects"));
      if (!st.isDirectory()) throw new Error("not a directory");
    } catch {
      throw new RepoError(`opening repo: ${join(path, "objects")}: No such file or directory`);
    }
    let text: string;
    try {
      text = await readFile(join(path, "config"), "utf8");
    } catch {
      throw new RepoError(`opening repo: ${join(path, "config")}: No such file or directory`);
    }
    const config = KeyFile.parse(text, join(path, "config"));
    const version = config.getString("core", "repo_version");
    if (version !== "1") throw new RepoError(`Invalid repository version '${version ?? ""}' in ${join(path, "config")}`);
    if (config.getRaw("core", "archive") !== undefined && config.getBoolean("core", "archive", false)) {
      throw new RepoError("This version of OSTree no longer supports \"archive\" repositories; use archive-z2 instead");
    }
    const mode = parseRepoMode(config.getString("core", "mode") ?? "bare");
    // ostree_repo_open recreates tmp/ when it is missing and the repo is writable.
    try {
      await mkdir(join(path, "tmp"), { mode: 0o775 });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== "EEXIST" && code !== "EACCES" && code !== "EROFS" && code !== "EPERM") throw e;
    }
    return new Repo(path, config, mode);
  }

  get isArchive(): boolean {
    return this.mode === "archive";
  }

  get tmpDir(): string {
    return join(this.path, "tmp");
  }

  /** Write `config` back atomically (after `config.set...`). */
  async saveConfig(): Promise<void> {
    await atomicWrite(this.tmpDir, join(this.path, "config"), this.config.toString(), true);
  }

  objectPath(checksum: string, type: ObjectType): string {
    let ext = objectTypeName(type);
    if (type === ObjectType.File && this.isArchive) ext = "filez";
    return join(this.path, "objects", checksum.slice(0, 2), `${checksum.slice(2)}.${ext}`);
  }

  /**
   * The repo named by `core.parent` (opened once), or null. As in ostree,
   * reads of objects and refs fall back to it; writes and listings do not.
   */
  parentRepo(): Promise<Repo | null> {
    const path = this.config.getString("core", "parent");
    this.parent ??= (path ? Repo.open(path) : Promise.resolve(null)).then((r) => (this.loadedParent = r));
    return this.parent;
  }

  /** The `core.parent` repo once `parentRepo()` has resolved (for synchronous readers), else null. */
  loadedParent: Repo | null = null;

  /** Whether the object is in this repo or (as ostree_repo_has_object) a `core.parent` repo. */
  async hasObject(checksum: string, type: ObjectType): Promise<boolean> {
    if (await this.hasLooseObject(checksum, type)) return true;
    const parent = await this.parentRepo();
    return parent ? parent.hasObject(checksum, type) : false;
  }

  /** Whether the object is stored in this repo itself (what writes check, as ostree's). */
  async hasLooseObject(checksum: string, type: ObjectType): Promise<boolean> {
    try {
      await lstat(this.objectPath(checksum, type));
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return false;
      throw e;
    }
  }

  /** Every loose object in the repository, in directory order. */
  async *listObjects(): AsyncGenerator<{ checksum: string; type: ObjectType }> {
    const objects = join(this.path, "objects");
    const prefixes = (await readdir(objects)).filter((p) => /^[0-9a-f]{2}$/.test(p)).sort();
    for (const prefix of prefixes) {
      for (const name of (await readdir(join(objects, prefix))).sort()) {
        const dot = name.indexOf(".");
        if (dot !== 62) continue;
        const ext = name.slice(dot + 1);
        const type = ext === "filez" ? ObjectType.File : objectTypeFromName(ext);
        if (type === undefined) continue;
        const checksum = prefix + name.slice(0, 62);
        if (/^[0-9a-f]{64}$/.test(checksum)) yield { checksum, type };
      }
    }
  }

  /** Raw bytes of a metadata object; throws ObjectNotFoundError if absent. */
  async loadMetadataBytes(type: ObjectType, checksum: string): Promise<Uint8Array> {
    assertChecksum(checksum);
    try {
      return new Uint8Array(await readFile(this.objectPath(checksum, type)));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
      const parent = await this.parentRepo();
      if (parent) return parent.loadMetadataBytes(type, checksum);
      throw new ObjectNotFoundError(checksum, objectTypeName(type));
    }
  }

  async readCommit(checksum: string): Promise<Commit> {
    return decodeCommit(await this.loadMetadataBytes(ObjectType.Commit, checksum), checksum);
  }

  async readDirTree(checksum: string): Promise<DirTree> {
    return decodeDirTree(await this.loadMetadataBytes(ObjectType.DirTree, checksum), checksum);
  }

  async readDirMeta(checksum: string): Promise<DirMeta> {
    return decodeDirMeta(await this.loadMetadataBytes(ObjectType.DirMeta, checksum), checksum);
  }

  /** Detached metadata of a commit, or null when it has none. */
  async readCommitMeta(checksum: string): Promise<MetadataDict | null> {
    try {
      return decodeMetadataDict(await this.loadMetadataBytes(ObjectType.CommitMeta, checksum), checksum);
    } catch (e) {
      if (e instanceof ObjectNotFoundError) return null;
      throw e;
    }
  }

  async writeCommitMeta(checksum: string, dict: MetadataDict | null): Promise<void> {
    const path = this.objectPath(checksum, ObjectType.CommitMeta);
    if (dict === null) {
      await rm(path, { force: true });
      return;
    }
    await mkdir(join(path, ".."), { recursive: true });
    await atomicWrite(this.tmpDir, path, encodeMetadataDict(dict), false);
  }

  /**
   * Store a metadata object, returning its checksum. With `expected`, bytes that
   * hash differently are refused before anything is written.
   */
  async writeMetadata(type: ObjectType, bytes: Uint8Array, expected?: string, options: WriteOptions = {}): Promise<string> {
    if (!isMetadataType(type) || type === ObjectType.CommitMeta) throw new InvalidArgumentError(`not a content-addressed metadata type: ${objectTypeName(type)}`);
    const checksum = sha256Hex(bytes);
    if (expected !== undefined && expected !== checksum) {
      throw new CorruptObjectError(expected, objectTypeName(type), `bytes hash to ${checksum}`);
    }
    const path = this.objectPath(checksum, type);
    // A commit that is back (pulled again) is no longer deleted: its tombstone goes, as in ostree.
    if (type === ObjectType.Commit) await rm(this.objectPath(checksum, ObjectType.TombstoneCommit), { force: true });
    // Small and many (a dirtree and a dirmeta per directory): synchronous calls, no threadpool round trips.
    if (lstatSync(path, { throwIfNoEntry: false })) return checksum;
    const tmp = this.tmpPath();
    try {
      const fd = openSync(tmp, FS.O_WRONLY | FS.O_CREAT | FS.O_EXCL, 0o644);
      try {
        writevSync(fd, [bytes]);
        if (options.fsync) fdatasyncSync(fd);
      } finally {
        closeSync(fd);
      }
      placeObjectSync(tmp, path);
    } catch (e) {
      rmSync(tmp, { force: true });
      throw e;
    }
    this.writeStats.metadataWritten++;
    return checksum;
  }

  /** Open a content object: its metadata, size and a payload stream. */
  async openContent(checksum: string): Promise<ContentObject> {
    assertChecksum(checksum);
    const path = this.objectPath(checksum, ObjectType.File);
    let st;
    try {
      st = await lstat(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
      const parent = await this.parentRepo();
      if (parent) return parent.openContent(checksum);
      throw new ObjectNotFoundError(checksum, "file");
    }
    const empty = () => Readable.from([]);
    if (this.isArchive) {
      const { header, payloadOffset } = unframe(await readFramedHeader(path, checksum), checksum);
      const { meta, size } = decodeFilezHeader(header, checksum);
      if (isSymlink(meta)) return { meta, size: 0, payload: empty };
      return {
        meta,
        size,
        payload: () => createReadStream(path, { start: payloadOffset }).pipe(createInflateRaw()),
      };
    }
    if (st.isDirectory()) throw new CorruptObjectError(checksum, "file", "object is a directory");
    switch (this.mode) {
      case "bare": {
        const xattrs = readXattrs(path);
        if (st.isSymbolicLink()) {
          return { meta: { uid: st.uid, gid: st.gid, mode: st.mode, symlinkTarget: await readlink(path), xattrs }, size: 0, payload: empty };
        }
        if (!st.isFile()) throw new CorruptObjectError(checksum, "file", "object is not a regular file or symlink");
        return { meta: { uid: st.uid, gid: st.gid, mode: st.mode, symlinkTarget: "", xattrs }, size: st.size, payload: () => createReadStream(path) };
      }
      case "bare-user": {
        if (!st.isFile()) throw new CorruptObjectError(checksum, "file", "bare-user object is not a regular file");
        const raw = getAttributeSync(path, "user.ostreemeta");
        if (!raw) throw new CorruptObjectError(checksum, "file", "missing user.ostreemeta xattr");
        const m = decodeOstreeMeta(new Uint8Array(raw), checksum);
        if ((m.mode & S_IFMT) === S_IFLNK) {
          const content = await readFile(path);
          if (content.length === 0 || content[content.length - 1] !== 0) {
            throw new CorruptObjectError(checksum, "file", "bare-user symlink object lacks its NUL terminator");
          }
          return { meta: { ...m, symlinkTarget: content.subarray(0, content.length - 1).toString("utf8") }, size: 0, payload: empty };
        }
        return { meta: { ...m, symlinkTarget: "" }, size: st.size, payload: () => createReadStream(path) };
      }
      case "bare-user-only": {
        if (st.isSymbolicLink()) {
          return { meta: { uid: 0, gid: 0, mode: st.mode, symlinkTarget: await readlink(path), xattrs: [] }, size: 0, payload: empty };
        }
        if (!st.isFile()) throw new CorruptObjectError(checksum, "file", "object is not a regular file or symlink");
        return { meta: { uid: 0, gid: 0, mode: st.mode, symlinkTarget: "", xattrs: [] }, size: st.size, payload: () => createReadStream(path) };
      }
    }
    throw new RepoError(`unsupported mode ${this.mode}`);
  }

  /** Whole payload in memory (small files, tests). */
  async readContentBytes(checksum: string): Promise<{ meta: FileMeta; data: Uint8Array }> {
    const obj = await this.openContent(checksum);
    const chunks: Buffer[] = [];
    for await (const c of obj.payload()) chunks.push(c as Buffer);
    return { meta: obj.meta, data: new Uint8Array(Buffer.concat(chunks)) };
  }

  /** Recompute a content object's checksum from what is stored. */
  async computeContentChecksum(checksum: string): Promise<string> {
    const obj = await this.openContent(checksum);
    const h = contentHasher(obj.meta);
    let n = 0;
    for await (const c of obj.payload()) {
      h.update(c as Buffer);
      n += (c as Buffer).length;
    }
    if (n !== obj.size) throw new CorruptObjectError(checksum, "file", `payload is ${n} bytes, header says ${obj.size}`);
    return h.digest("hex");
  }

  /**
   * Store a content object from metadata and payload. The checksum is computed
   * while writing; with `expected`, a mismatch is refused and nothing is stored.
   */
  async writeContent(meta: FileMeta, source: PayloadSource, expected?: string, options: WriteOptions = {}): Promise<string> {
    const fmt = meta.mode & S_IFMT;
    if (fmt !== S_IFREG && fmt !== S_IFLNK) throw new InvalidArgumentError(`content objects must be regular files or symlinks (mode 0${meta.mode.toString(8)})`);
    if (this.mode === "bare-user-only" && fmt === S_IFREG && (meta.mode & 0o7777 & ~0o775) !== 0) {
      throw new InvalidArgumentError(`Content object has invalid mode 0${(meta.mode & 0o7777).toString(8)} for bare-user-only (use --canonical-permissions)`);
    }
    const symlinkFile = fmt === S_IFLNK;
    const small = symlinkFile || "data" in source || source.size <= SMALL_FILE;
    const data = symlinkFile ? new Uint8Array(0) : "data" in source ? source.data : small ? new Uint8Array(readFileSync(source.path)) : undefined;

    if (data) {
      const checksum = contentHasher(meta).update(data).digest("hex");
      if (expected !== undefined && expected !== checksum) throw new CorruptObjectError(expected, "file", `content hashes to ${checksum}`);
      const dest = this.objectPath(checksum, ObjectType.File);
      if (lstatSync(dest, { throwIfNoEntry: false })) return checksum;
      // Small objects: one-shot deflate and synchronous writes. A stream pipeline per
      // file cost more than the work itself (and its buffers kept RSS high).
      let compressed: Uint8Array | undefined;
      if (this.isArchive && !symlinkFile) {
        const level = this.zlibLevel();
        compressed = data.length < INLINE_DEFLATE ? deflateRawSync(data, { level }) : await deflateRawAsync(data, { level });
      }
      const tmp = this.tmpPath();
      try {
        this.writeSmallContentTemp(tmp, meta, data, compressed, options);
        placeObjectSync(tmp, dest);
      } catch (e) {
        rmSync(tmp, { force: true });
        throw e;
      }
      this.noteContentWritten(data.length);
      return checksum;
    }

    const { path, size } = source as { path: string; size: number };
    const tmp = this.tmpPath();
    try {
      const checksum = (await this.writeContentTemp(tmp, meta, undefined, { path, size }, options))!;
      if (expected !== undefined && expected !== checksum) throw new CorruptObjectError(expected, "file", `content hashes to ${checksum}`);
      if (!(await this.hasLooseObject(checksum, ObjectType.File))) {
        await this.placeObject(tmp, checksum, ObjectType.File);
        this.noteContentWritten(size);
      }
      return checksum;
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /**
   * `commit --consume` in bare and bare-user-only repos: the source file itself
   * becomes the object (ostree's adopt_and_commit_regfile): hashed, then
   * renamed into objects/ (bare-user-only first gets `mode & 0755`). The
   * caller checks that `meta` is the file's own metadata.
   */
  async adoptContent(meta: FileMeta, path: string, size: number): Promise<string> {
    if (this.mode !== "bare" && this.mode !== "bare-user-only") throw new InvalidArgumentError(`cannot adopt files into a ${this.mode} repo`);
    const h = contentHasher(meta);
    if (size <= SMALL_FILE) h.update(readFileSync(path));
    else for await (const c of createReadStream(path)) h.update(c as Buffer);
    const checksum = h.digest("hex");
    const dest = this.objectPath(checksum, ObjectType.File);
    mkdirSync(join(dest, ".."), { recursive: true });
    const src = lstatSync(path);
    const existing = lstatSync(dest, { throwIfNoEntry: false });
    // rename() between two names of one inode does nothing: drop the source name instead.
    if (existing && existing.dev === src.dev && existing.ino === src.ino) {
      unlinkSync(path);
      return checksum;
    }
    if (this.mode === "bare-user-only") {
      const fd = openSync(path, FS.O_RDONLY | FS.O_NOFOLLOW);
      try {
        fchmodSync(fd, meta.mode & 0o755);
      } finally {
        closeSync(fd);
      }
    }
    renameSync(path, dest);
    return checksum;
  }

  /** The stored form of a small content object at `tmp`, with synchronous calls. */
  private writeSmallContentTemp(tmp: string, meta: FileMeta, data: Uint8Array, compressed: Uint8Array | undefined, options: WriteOptions): void {
    const symlinkObj = isSymlink(meta);
    if (symlinkObj && !this.isArchive && this.mode !== "bare-user") {
      symlinkSync(meta.symlinkTarget, tmp);
      if (this.mode === "bare") {
        lchownSync(tmp, meta.uid, meta.gid);
        writeXattrs(tmp, meta.xattrs);
      }
      lutimesSync(tmp, 0, 0);
      return;
    }
    const fd = openSync(tmp, FS.O_WRONLY | FS.O_CREAT | FS.O_EXCL, 0o644);
    try {
      if (this.isArchive) writevSync(fd, [encodeFilezHeader(meta, symlinkObj ? 0 : data.length), ...(compressed ? [compressed] : [])]);
      else if (symlinkObj) writevSync(fd, [Buffer.from(`${meta.symlinkTarget}\0`, "utf8")]);
      else if (data.length > 0) writevSync(fd, [data]);
      if (options.fsync) fdatasyncSync(fd);
      if (this.mode === "bare") {
        fchownSync(fd, meta.uid, meta.gid);
        fchmodSync(fd, meta.mode & 0o7777);
      } else if (this.mode === "bare-user") {
        if (!symlinkObj) fchmodSync(fd, (meta.mode & 0o775) | 0o400);
      } else if (this.mode === "bare-user-only") {
        fchmodSync(fd, meta.mode & 0o7777);
      }
      // Setting xattrs below changes ctime only, so mtime can be set now, by fd.
      if (!this.isArchive) futimesSync(fd, 0, 0);
    } finally {
      closeSync(fd);
    }
    if (this.mode === "bare") writeXattrs(tmp, meta.xattrs);
    else if (this.mode === "bare-user") setAttributeSync(tmp, "user.ostreemeta", encodeOstreeMeta(meta));
  }

  /** Count a content object stored by a writer outside this class (archive writes with size tracking). */
  noteContentWritten(bytes: number): void {
    this.writeStats.contentWritten++;
    this.writeStats.contentBytesWritten += bytes;
  }

  private tmpPath(): string {
    // A per-process random prefix and a counter: unique without a getrandom call per object.
    return join(this.tmpDir, `tmpobject-${TMP_PREFIX}${(tmpCounter++ >>> 0).toString(16).padStart(8, "0")}`);
  }

  private async placeObject(tmp: string, checksum: string, type: ObjectType): Promise<void> {
    const dest = this.objectPath(checksum, type);
    try {
      await rename(tmp, dest);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
      await mkdir(join(dest, ".."), { recursive: true });
      await rename(tmp, dest);
    }
  }

  /** Write the stored form of a content object at `tmp`; returns the content checksum when streaming. */
  private async writeContentTemp(
    tmp: string,
    meta: FileMeta,
    data: Uint8Array | undefined,
    file: { path: string; size: number } | undefined,
    options: WriteOptions,
  ): Promise<string | undefined> {
    const symlinkObj = isSymlink(meta);
    const hasher = data ? undefined : contentHasher(meta);
    const payload = (): Readable =>
      createReadStream(file!.path).pipe(
        new Transform({
          transform(chunk: Buffer, _enc, cb) {
            hasher!.update(chunk);
            cb(null, chunk);
          },
        }),
      );
    const size = data ? data.length : file!.size;

    if (this.isArchive) {
      const fh = await open(tmp, FS.O_WRONLY | FS.O_CREAT | FS.O_EXCL, 0o644);
      try {
        await fh.write(encodeFilezHeader(meta, symlinkObj ? 0 : size));
        if (!symlinkObj) {
          const level = this.zlibLevel();
          const deflate = createDeflateRaw({ level });
          const src = data ? Readable.from([Buffer.from(data.buffer, data.byteOffset, data.byteLength)]) : payload();
          await pipeline(src, deflate, handleSink(fh));
        }
        if (options.fsync) await fh.datasync();
      } finally {
        await fh.close();
      }
      return hasher?.digest("hex");
    }

    if (symlinkObj && this.mode !== "bare-user") {
      await symlink(meta.symlinkTarget, tmp);
      if (this.mode === "bare") {
        await lchown(tmp, meta.uid, meta.gid);
        writeXattrs(tmp, meta.xattrs);
      }
      await lutimes(tmp, 0, 0);
      return undefined;
    }

    const fh = await open(tmp, FS.O_WRONLY | FS.O_CREAT | FS.O_EXCL, 0o644);
    try {
      if (symlinkObj) {
        await fh.write(Buffer.from(`${meta.symlinkTarget}\0`, "utf8"));
      } else if (data) {
        await fh.write(data);
      } else {
        await pipeline(payload(), handleSink(fh));
      }
      if (options.fsync) await fh.datasync();
    } finally {
      await fh.close();
    }
    if (this.mode === "bare") {
      await chown(tmp, meta.uid, meta.gid);
      await chmod(tmp, meta.mode & 0o7777);
      writeXattrs(tmp, meta.xattrs);
    } else if (this.mode === "bare-user") {
      if (!symlinkObj) await chmod(tmp, (meta.mode & 0o775) | 0o400);
      setAttributeSync(tmp, "user.ostreemeta", encodeOstreeMeta(meta));
    } else {
      await chmod(tmp, meta.mode & 0o7777);
    }
    await lutimes(tmp, 0, 0);
    return hasher?.digest("hex");
  }

  zlibLevel(): number {
    const level = this.config.getInteger("archive", "zlib-level", 6);
    return Math.min(9, Math.max(1, level));
  }

  async deleteObject(checksum: string, type: ObjectType): Promise<void> {
    await unlink(this.objectPath(checksum, type));
    if (type === ObjectType.Commit) {
      await rm(this.objectPath(checksum, ObjectType.CommitMeta), { force: true });
    }
  }

  /** Hardlink an object from another repo with the same mode (pull-local fast path). */
  async linkObjectFrom(source: Repo, checksum: string, type: ObjectType): Promise<boolean> {
    const dest = this.objectPath(checksum, type);
    await mkdir(join(dest, ".."), { recursive: true });
    try {
      await link(source.objectPath(checksum, type), dest);
      return true;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "EEXIST") return true;
      if (code === "EXDEV" || code === "EPERM" || code === "EMLINK") return false;
      throw e;
    }
  }

  commitPartialPath(checksum: string): string {
    return join(this.path, "state", `${checksum}.commitpartial`);
  }

  /** `null` = complete; "" = partial (pull in progress); "f" = marked by fsck. */
  async commitPartialState(checksum: string): Promise<string | null> {
    try {
      return await readFile(this.commitPartialPath(checksum), "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw e;
    }
  }

  async markCommitPartial(checksum: string, byFsck = false): Promise<void> {
    await mkdir(join(this.path, "state"), { recursive: true });
    await atomicWrite(this.tmpDir, this.commitPartialPath(checksum), byFsck ? "f" : "", false);
  }

  async clearCommitPartial(checksum: string): Promise<void> {
    await rm(this.commitPartialPath(checksum), { force: true });
  }
}

/** rename() into objects/, creating the fan-out directory on first use. */
function placeObjectSync(tmp: string, dest: string): void {
  try {
    renameSync(tmp, dest);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    mkdirSync(join(dest, ".."), { recursive: true });
    renameSync(tmp, dest);
  }
}

/** Read all xattrs of a path without following symlinks. */
export function readXattrs(path: string): Xattrs {
  const names = listAttributesSync(path).sort();
  return names.map((n) => [n, new Uint8Array(getAttributeSync(path, n) ?? Buffer.alloc(0))] as const);
}

function writeXattrs(path: string, xattrs: Xattrs): void {
  for (const [name, value] of xattrs) setAttributeSync(path, name, value);
}

/**
 * A Writable appending to an open FileHandle. Node 20's
 * `fh.createWriteStream({ autoClose: false })` leaves a reference on the
 * handle, so a later `fh.close()` never settles.
 */
function handleSink(fh: FileHandle): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      fh.write(chunk).then(() => cb(), cb);
    },
  });
}

/** The length-prefixed header at the start of a `.filez` object (prefix included). */
async function readFramedHeader(path: string, checksum: string): Promise<Uint8Array> {
  const fh = await open(path, "r");
  try {
    const prefix = Buffer.alloc(8);
    const first = await fh.read(prefix, 0, 8, 0);
    if (first.bytesRead < 8) throw new CorruptObjectError(checksum, "file", "truncated header");
    const len = prefix.readUInt32BE(0);
    const buf = Buffer.alloc(8 + len);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    if (bytesRead < buf.length) throw new CorruptObjectError(checksum, "file", `header length ${len} exceeds object size`);
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
  } finally {
    await fh.close();
  }
}

/** Write a whole file atomically: temp file in `tmpDir`, optional fsync, rename over `dest`. */
export async function atomicWrite(tmpDir: string, dest: string, data: Uint8Array | string, fsync: boolean, mode = 0o644): Promise<void> {
  await mkdir(tmpDir, { recursive: true });
  const tmp = join(tmpDir, `tmpfile-${randomBytes(8).toString("hex")}`);
  const fh = await open(tmp, FS.O_WRONLY | FS.O_CREAT | FS.O_EXCL, mode);
  try {
    await fh.writeFile(data);
    if (fsync) await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, dest);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}
