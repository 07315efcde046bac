import { type Hash, randomBytes } from "node:crypto";
import {
  close as closeCb,
  closeSync,
  constants as FS,
  createReadStream,
  fchmodSync,
  fchownSync,
  fdatasyncSync,
  fsyncSync,
  futimesSync,
  lchownSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  open as openCb,
  symlinkSync,
  unlink as unlinkCb,
  unlinkSync,
  utimesSync,
  writeSync,
  writevSync,
} from "node:fs";
import { execFile } from "node:child_process";
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
import { lockPop, lockPush, releaseTmpdirLock, tmpdirLockHeld, tryLockTmpdirFile } from "./lock.js";
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
/** Transaction staging directories are `tmp/staging-$BOOTID-XXXXXX`, locked through `tmp/<name>-lock`. */
const STAGING_PREFIX = "staging-";
const MKDTEMP_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** An open commit transaction (ostree_repo_prepare_transaction). */
interface Transaction {
  /** Name of the staging directory inside tmp/. */
  name: string;
  dir: string;
  lockFile: string;
  lockFd: number;
  /** Objects go to the staging dir and are renamed into objects/ at commit; with fsync off, straight to objects/ (as ostree). */
  fsync: boolean;
  /** The staging dir and its lock are already gone (commit got past them). */
  dirReleased: boolean;
}

/** `OSTREE_REPO_TEST_ERROR` flags, parsed like g_parse_debug_string. */
export function testErrorFlags(): Set<string> {
  const raw = process.env.OSTREE_REPO_TEST_ERROR ?? "";
  const flags = new Set(raw.split(/[:;, \t]+/).filter((f) => f !== ""));
  if (flags.has("all")) return new Set(["pre-commit", "invalid-cache"]);
  return flags;
}

/** syncfs of the filesystem holding `path` (sync -f). */
export function syncfs(path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile("sync", ["-f", path], (err) => (err ? reject(new RepoError(`syncfs ${path}: ${err.message}`)) : resolve()));
  });
}

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
  private txn: Transaction | undefined;
  /** Temp files created ahead of the writes that take them (see createTempsAhead). */
  private readonly temps = {
    ready: [] as Array<{ path: string; fd: number; dir: string }>,
    /** How many more to create. */
    wanted: 0,
    inFlight: 0,
    /** Bumped by releaseTemps: a create finishing later removes its file. */
    generation: 0,
  };
  private bootPrefix: string | undefined;

  private readonly objectsDir: string;

  private constructor(
    readonly path: string,
    public config: KeyFile,
    readonly mode: RepoMode,
  ) {
    this.objectsDir = join(path, "objects");
  }

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
    // ostree_repo_open creates tmp/cache in writable repos; transactions' tmp cleanup spares it.
    if (process.env.OSTREE_SKIP_CACHE === undefined) {
      try {
        await mkdir(join(path, "tmp", "cache"), { mode: 0o775 });
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== "EEXIST" && code !== "EACCES" && code !== "EROFS" && code !== "EPERM" && code !== "ENOENT") throw e;
      }
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
    return `${this.objectsDir}/${this.looseName(checksum, type)}`;
  }

  /** `XX/rest.ext`, an object's path below objects/ (or a staging dir). Concatenated: path.join per object showed in profiles. */
  private looseName(checksum: string, type: ObjectType): string {
    const ext = type === ObjectType.File && this.isArchive ? "filez" : objectTypeName(type);
    return `${checksum.slice(0, 2)}/${checksum.slice(2)}.${ext}`;
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

  /** Whether the object is stored in this repo itself, its transaction's staging dir included (what writes check, as ostree's). */
  async hasLooseObject(checksum: string, type: ObjectType): Promise<boolean> {
    return this.storedObjectPath(checksum, type) !== null;
  }

  /**
   * Where the object is stored in this repo: objects/, or during a transaction
   * its staging dir (objects written by it, or left by an interrupted one); null if absent.
   */
  storedObjectPath(checksum: string, type: ObjectType): string | null {
    const path = this.objectPath(checksum, type);
    if (lstatSync(path, { throwIfNoEntry: false })) return path;
    if (this.txn) {
      const staged = this.stagedPath(this.txn, checksum, type);
      if (lstatSync(staged, { throwIfNoEntry: false })) return staged;
    }
    return null;
  }

  /** Where a new object goes: the staging dir during a transaction (fsync on), else objects/. */
  objectWritePath(checksum: string, type: ObjectType): string {
    return this.txn?.fsync ? this.stagedPath(this.txn, checksum, type) : this.objectPath(checksum, type);
  }

  private stagedPath(txn: Transaction, checksum: string, type: ObjectType): string {
    return `${txn.dir}/${this.looseName(checksum, type)}`;
  }

  /** Whether a commit transaction is open on this handle. */
  get inTransaction(): boolean {
    return this.txn !== undefined;
  }

  /** Name (in tmp/) of the open transaction's staging directory. */
  get transactionDirName(): string | null {
    return this.txn?.name ?? null;
  }

  /** `staging-$BOOTID-`: OSTREE_BOOTID, else the kernel's boot id. */
  get stagedirPrefix(): string {
    if (this.bootPrefix === undefined) {
      const boot = process.env.OSTREE_BOOTID ?? readFileSync("/proc/sys/kernel/random/boot_id", "utf8").split("\n")[0]!;
      this.bootPrefix = `${STAGING_PREFIX}${boot}-`;
    }
    return this.bootPrefix;
  }

  /**
   * ostree_repo_prepare_transaction: take the shared repo lock and a locked
   * staging directory `tmp/staging-$BOOTID-XXXXXX`. An unlocked one of this boot
   * (an interrupted transaction's) is reused with the objects it holds; returns
   * whether one was. `fsync: false` writes objects straight into objects/, as ostree does.
   */
  async prepareTransaction(options: { fsync?: boolean } = {}): Promise<boolean> {
    if (this.txn) throw new RepoError("Failed to prepare transaction, another transaction is in progress");
    const fsync = options.fsync ?? this.config.getBoolean("core", "fsync", true);
    await lockPush(this, "shared");
    try {
      const prefix = this.stagedirPrefix;
      let found: { name: string; lockFd: number } | null = null;
      for (const ent of readdirSync(this.tmpDir, { withFileTypes: true })) {
        if (!ent.name.startsWith(prefix) || !ent.isDirectory()) continue;
        const lockFd = await this.tryLockTmpdir(ent.name);
        if (lockFd === null) continue;
        // Touched so that a tmp cleanup by age does not take it.
        const now = new Date();
        utimesSync(join(this.tmpDir, ent.name), now, now);
        found = { name: ent.name, lockFd };
        break;
      }
      const resumed = found !== null;
      while (!found) {
        const bytes = randomBytes(6);
        let name = prefix;
        for (const b of bytes) name += MKDTEMP_CHARS[b % MKDTEMP_CHARS.length];
        try {
          mkdirSync(join(this.tmpDir, name), 0o775);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === "EEXIST") continue;
          throw e;
        }
        const lockFd = await this.tryLockTmpdir(name);
        // Another process took the new directory first: it is theirs now.
        if (lockFd !== null) found = { name, lockFd };
      }
      this.txn = {
        name: found.name,
        dir: join(this.tmpDir, found.name),
        lockFile: join(this.tmpDir, `${found.name}-lock`),
        lockFd: found.lockFd,
        fsync,
        dirReleased: false,
      };
      return resumed;
    } catch (e) {
      await lockPop(this, "shared");
      throw e;
    }
  }

  /**
   * ostree_repo_commit_transaction: syncfs (fsync on), rename the staged objects
   * into objects/, fsync the object dirs, delete the staging dir, clean tmp/;
   * then `beforeUnlock` (the ref updates: they move only once every object is
   * in place) runs while the shared lock is still held. On failure the caller
   * must `abortTransaction()`.
   */
  async commitTransaction(beforeUnlock?: () => Promise<void>): Promise<void> {
    const txn = this.txn;
    if (!txn) throw new RepoError("Failed to commit transaction, no transaction in progress");
    if (testErrorFlags().has("pre-commit")) throw new RepoError("OSTREE_REPO_TEST_ERROR_PRE_COMMIT specified");
    if (txn.fsync && process.env.OSTREE_SUPPRESS_SYNCFS === undefined) await syncfs(this.tmpDir);
    this.renamePendingObjects(txn);
    if (txn.fsync) this.fsyncObjectDirs();
    rmSync(txn.dir, { recursive: true, force: true });
    releaseTmpdirLock(txn.lockFile, txn.lockFd);
    txn.dirReleased = true;
    await this.cleanupTmpdir();
    await beforeUnlock?.();
    this.txn = undefined;
    rmSync(join(this.path, "transaction"), { force: true });
    await lockPop(this, "shared");
  }

  /**
   * ostree_repo_abort_transaction: the staging dir stays (a later transaction of
   * this boot reuses its objects), its lock goes, tmp/ is cleaned. No-op outside a transaction.
   */
  async abortTransaction(): Promise<void> {
    const txn = this.txn;
    if (!txn) return;
    if (!txn.dirReleased) releaseTmpdirLock(txn.lockFile, txn.lockFd);
    let cleanupError: unknown;
    try {
      await this.cleanupTmpdir();
    } catch (e) {
      cleanupError = e;
    }
    this.txn = undefined;
    await lockPop(this, "shared");
    if (cleanupError !== undefined) throw cleanupError;
  }

  /** _ostree_repo_try_lock_tmpdir: lock `tmp/<name>-lock`; null when held elsewhere or the dir is gone. */
  private async tryLockTmpdir(name: string): Promise<number | null> {
    const lockFile = join(this.tmpDir, `${name}-lock`);
    const fd = await tryLockTmpdirFile(lockFile);
    if (fd === null) return null;
    // Another process may have deleted the directory between our listing and our lock.
    if (!lstatSync(join(this.tmpDir, name), { throwIfNoEntry: false })?.isDirectory()) {
      releaseTmpdirLock(lockFile, fd);
      return null;
    }
    return fd;
  }

  /** rename_pending_loose_objects: every `XX/rest.ext` of the staging dir into objects/XX/. */
  private renamePendingObjects(txn: Transaction): void {
    const objects = join(this.path, "objects");
    for (const ent of readdirSync(txn.dir, { withFileTypes: true })) {
      if (!ent.isDirectory() || ent.name.length !== 2) continue;
      const names = readdirSync(join(txn.dir, ent.name));
      if (names.length === 0) continue;
      mkdirSync(join(objects, ent.name), { recursive: true });
      for (const name of names) renameSync(join(txn.dir, ent.name, name), join(objects, ent.name, name));
    }
  }

  /** fsync_object_dirs: every objects/XX directory and objects/ itself, before any ref points at the new objects. */
  private fsyncObjectDirs(): void {
    const objects = join(this.path, "objects");
    const sync = (dir: string) => {
      const fd = openSync(dir, FS.O_RDONLY | FS.O_DIRECTORY);
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    };
    for (const ent of readdirSync(objects, { withFileTypes: true })) if (ent.isDirectory() && ent.name.length === 2) sync(join(objects, ent.name));
    sync(objects);
  }

  /**
   * cleanup_tmpdir: staging dirs nobody holds are deleted unless they belong
   * to this boot (kept for reuse); anything else older than
   * `core.tmp-expiry-secs` (default a day) goes; `cache` and future-dated entries stay.
   */
  private async cleanupTmpdir(): Promise<void> {
    const now = Math.floor(Date.now() / 1000);
    const expiry = Number.parseInt(this.config.getString("core", "tmp-expiry-secs") ?? "86400", 10) || 0;
    for (const name of readdirSync(this.tmpDir)) {
      if (name === "cache") continue;
      const path = join(this.tmpDir, name);
      const st = lstatSync(path, { throwIfNoEntry: false });
      if (!st) continue;
      if (name.startsWith(STAGING_PREFIX) && st.isDirectory()) {
        await this.cleanupStagingDir(name);
        continue;
      }
      const mtime = Math.floor(st.mtimeMs / 1000);
      if (mtime > now) continue;
      if (now - mtime > expiry) rmSync(path, { recursive: true, force: true });
    }
  }

  /** cleanup_txn_dir: a staging dir of another boot that no one holds is removed. */
  private async cleanupStagingDir(name: string): Promise<void> {
    const lockFile = join(this.tmpDir, `${name}-lock`);
    // Held by a transaction of this process (tryLockTmpdir would refuse it too).
    if (tmpdirLockHeld(lockFile)) return;
    const fd = await this.tryLockTmpdir(name);
    if (fd === null) return;
    try {
      if (!name.startsWith(this.stagedirPrefix)) rmSync(join(this.tmpDir, name), { recursive: true, force: true });
    } finally {
      releaseTmpdirLock(lockFile, fd);
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
      const staged = this.txn ? this.storedObjectPath(checksum, type) : null;
      if (staged) return new Uint8Array(await readFile(staged));
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
    // In a transaction ostree stages detached metadata too, whatever the fsync setting.
    const path = this.txn ? this.stagedPath(this.txn, checksum, ObjectType.CommitMeta) : this.objectPath(checksum, ObjectType.CommitMeta);
    if (dict === null) {
      await rm(path, { force: true });
      if (this.txn) await rm(this.objectPath(checksum, ObjectType.CommitMeta), { force: true });
      return;
    }
    await mkdir(join(path, ".."), { recursive: true });
    await atomicWrite(this.txn?.dir ?? this.tmpDir, path, encodeMetadataDict(dict), false);
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
    // A commit that is back (pulled again) is no longer deleted: its tombstone goes, as in ostree.
    if (type === ObjectType.Commit) await rm(this.objectPath(checksum, ObjectType.TombstoneCommit), { force: true });
    // Small and many (a dirtree and a dirmeta per directory): synchronous calls, no threadpool round trips.
    if (this.storedObjectPath(checksum, type)) return checksum;
    const path = this.objectWritePath(checksum, type);
    const ahead = this.takeTemp();
    const tmp = ahead?.path ?? this.tmpPath();
    try {
      const fd = ahead?.fd ?? openSync(tmp, FS.O_WRONLY | FS.O_CREAT | FS.O_EXCL, 0o644);
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
    const path = this.storedObjectPath(checksum, ObjectType.File) ?? this.objectPath(checksum, ObjectType.File);
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
    let data: Uint8Array | undefined;
    // Read into the shared scratch buffer: valid only until the next await.
    let scratch = false;
    if (symlinkFile) data = new Uint8Array(0);
    else if ("data" in source) data = source.data;
    else if (source.size <= SMALL_FILE) {
      data = readSmallFile(source.path, source.size);
      scratch = true;
    }

    if (data) {
      const checksum = contentHasher(meta).update(data).digest("hex");
      if (expected !== undefined && expected !== checksum) throw new CorruptObjectError(expected, "file", `content hashes to ${checksum}`);
      if (this.storedObjectPath(checksum, ObjectType.File)) return checksum;
      const dest = this.objectWritePath(checksum, ObjectType.File);
      // Small objects: one-shot deflate and synchronous writes. A stream pipeline per
      // file cost more than the work itself (and its buffers kept RSS high).
      let compressed: Uint8Array | undefined;
      if (this.isArchive && !symlinkFile) {
        const level = this.zlibLevel();
        if (data.length < INLINE_DEFLATE) compressed = deflateRawSync(data, { level });
        else {
          if (scratch) data = Buffer.from(data);
          compressed = await deflateRawAsync(data, { level });
        }
      }
      // A symlink object stored as a symlink is not created in an open file.
      const ahead = symlinkFile && this.symlinksAsLinks ? null : this.takeTemp();
      const tmp = ahead?.path ?? this.tmpPath();
      try {
        this.writeSmallContentTemp(tmp, meta, data, compressed, options, ahead?.fd);
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
    if (size <= SMALL_FILE) h.update(readSmallFile(path, size));
    else for await (const c of createReadStream(path)) h.update(c as Buffer);
    const checksum = h.digest("hex");
    const dest = this.objectWritePath(checksum, ObjectType.File);
    mkdirSync(join(dest, ".."), { recursive: true });
    const src = lstatSync(path);
    const stored = this.storedObjectPath(checksum, ObjectType.File);
    const existing = stored ? lstatSync(stored, { throwIfNoEntry: false }) : undefined;
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

  /** bare and bare-user-only repos store a symlink object as a symlink; archive and bare-user as a file. */
  private get symlinksAsLinks(): boolean {
    return !this.isArchive && this.mode !== "bare-user";
  }

  /** The stored form of a small content object at `tmp`, with synchronous calls. */
  private writeSmallContentTemp(tmp: string, meta: FileMeta, data: Uint8Array, compressed: Uint8Array | undefined, options: WriteOptions, openFd?: number): void {
    const symlinkObj = isSymlink(meta);
    if (symlinkObj && this.symlinksAsLinks) {
      symlinkSync(meta.symlinkTarget, tmp);
      if (this.mode === "bare") {
        lchownSync(tmp, meta.uid, meta.gid);
        writeXattrs(tmp, meta.xattrs);
      }
      lutimesSync(tmp, 0, 0);
      return;
    }
    const fd = openFd ?? openSync(tmp, FS.O_WRONLY | FS.O_CREAT | FS.O_EXCL, 0o644);
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

  /**
   * Create up to `n` temp files for the next small-object writes on the
   * threadpool, a few ahead of the writes that take them: creating a file in
   * tmp/ waits on the file system (0.1–0.5 ms each on a busy ext4, where the
   * rest of a write takes a few µs), and this way that wait overlaps the work
   * that builds the next objects (a delta part's patches and hashing) instead
   * of blocking it. A write finding none ready creates its own, as before.
   * releaseTemps() removes those not taken.
   */
  createTempsAhead(n: number): void {
    this.temps.wanted = n;
    this.fillTemps();
  }

  /** Close and remove the temp files createTempsAhead made that no write took. */
  releaseTemps(): void {
    const t = this.temps;
    t.wanted = 0;
    t.generation++;
    for (const { path, fd } of t.ready.splice(0)) discardTemp(path, fd);
  }

  private fillTemps(): void {
    const t = this.temps;
    while (t.wanted > 0 && t.inFlight < TEMPS_IN_FLIGHT && t.ready.length + t.inFlight < TEMPS_AHEAD) {
      t.inFlight++;
      t.wanted--;
      const generation = t.generation;
      const dir = this.txn?.dir ?? this.tmpDir;
      const path = this.tmpPath();
      openCb(path, FS.O_WRONLY | FS.O_CREAT | FS.O_EXCL, 0o644, (err, fd) => {
        t.inFlight--;
        if (err) {
          // The write that would have taken it creates its own (and reports any error itself).
          t.wanted = 0;
          return;
        }
        if (generation !== t.generation) discardTemp(path, fd);
        else {
          t.ready.push({ path, fd, dir });
          this.fillTemps();
        }
      });
    }
  }

  /** A temp file created ahead in the current temp dir, or null. */
  private takeTemp(): { path: string; fd: number } | null {
    const t = this.temps;
    if (t.ready.length === 0) return null;
    // Made before a transaction began or ended: in the wrong directory.
    if (t.ready[0]!.dir !== (this.txn?.dir ?? this.tmpDir)) {
      this.releaseTemps();
      return null;
    }
    const got = t.ready.shift()!;
    this.fillTemps();
    return got;
  }

  /** A fresh temp file name for an object being written: in the staging dir during a transaction, else in tmp/. */
  tmpPath(): string {
    // A per-process random prefix and a counter: unique without a getrandom call per object.
    return `${this.txn?.dir ?? this.tmpDir}/tmpobject-${TMP_PREFIX}${(tmpCounter++ >>> 0).toString(16).padStart(8, "0")}`;
  }

  private async placeObject(tmp: string, checksum: string, type: ObjectType): Promise<void> {
    const dest = this.objectWritePath(checksum, type);
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
      createReadStream(file!.path, { highWaterMark: SMALL_FILE }).pipe(
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
        // Synchronous 1 MiB copy through the scratch buffer: a stream pipeline cost more per chunk than the copy.
        copyHashing(file!.path, fh.fd, hasher!);
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

/** Temp files kept ready by createTempsAhead, and created at once. */
const TEMPS_AHEAD = 16;
const TEMPS_IN_FLIGHT = 4;

function discardTemp(path: string, fd: number): void {
  closeCb(fd, () => unlinkCb(path, () => undefined));
}

/** Reused for every small file read: one allocation instead of one per file (GC work and RSS). */
let scratchBuffer = Buffer.allocUnsafe(SMALL_FILE + 1);

/**
 * The whole file in the shared scratch buffer (grown if the file grew past
 * `size`). The view is overwritten by the next call: use it before any await.
 */
function readSmallFile(path: string, size: number): Uint8Array {
  const fd = openSync(path, FS.O_RDONLY);
  try {
    if (scratchBuffer.length <= size) scratchBuffer = Buffer.allocUnsafe(size + 1);
    let n = 0;
    for (;;) {
      if (n === scratchBuffer.length) {
        const bigger = Buffer.allocUnsafe(scratchBuffer.length * 2);
        scratchBuffer.copy(bigger, 0, 0, n);
        scratchBuffer = bigger;
      }
      const want = scratchBuffer.length - n;
      const got = readSync(fd, scratchBuffer, n, want, null);
      n += got;
      // A short read of a regular file is its end: no extra read() for EOF.
      if (got < want) break;
    }
    return scratchBuffer.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

/** Copy the file at `src` to `outFd`, hashing it on the way, 1 MiB at a time through the scratch buffer. */
function copyHashing(src: string, outFd: number, hasher: Hash): void {
  const fd = openSync(src, FS.O_RDONLY);
  try {
    const chunk = SMALL_FILE;
    if (scratchBuffer.length < chunk) scratchBuffer = Buffer.allocUnsafe(chunk + 1);
    for (;;) {
      const n = readSync(fd, scratchBuffer, 0, chunk, null);
      if (n === 0) break;
      const view = scratchBuffer.subarray(0, n);
      hasher.update(view);
      for (let off = 0; off < n; ) off += writeSync(outFd, view, off, n - off);
    }
  } finally {
    closeSync(fd);
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
