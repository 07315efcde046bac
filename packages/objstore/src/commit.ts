import { randomBytes } from "node:crypto";
import { createWriteStream, lstatSync, readdirSync, readlinkSync, type Stats } from "node:fs";
import { constants as FS } from "node:fs";
import { type FileHandle, lstat, open, readdir, rm, rmdir, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import type { Readable } from "node:stream";
import { variant, type Variant } from "@ostree-ts/gvariant";
import { sha256Hex } from "./checksum.js";
import type { FileMeta } from "./content.js";
import { parseTimestamp } from "./datetime.js";
import { GStrHashMap } from "./ghash.js";
import { InvalidArgumentError, OstreeError } from "./errors.js";
import {
  encodeCommit,
  encodeDirMeta,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  type MetadataDict,
  type Xattrs,
} from "./metadata.js";
import { CommitModifier, type EntryInfo, type ModifierOptions } from "./modifier.js";
import { MutableTree, PENDING, writeMtree } from "./mtree.js";
import { ObjectType } from "./object-types.js";
import { DEFAULT_CONCURRENCY, mapLimit, TaskPool } from "./pool.js";
import { setRef, validateRef, validateRemoteName } from "./refs.js";
import { parseRefspec, resolveRev } from "./rev.js";
import { readXattrs, type PayloadSource, type Repo } from "./repo.js";
import { SizeIndex, writeArchiveContentPako } from "./sizes.js";
import { importTar } from "./tar-import.js";

/** One `--tree=` argument; later sources are overlaid on earlier ones. */
export type TreeSource = { dir: string } | { ref: string } | { tar: string | Readable };

export interface CommitProgress {
  contentObjects: number;
  contentBytes: number;
}

export interface CommitOptions extends ModifierOptions {
  tree: readonly TreeSource[];
  /** `--base`: a commit whose tree is loaded first, without modifiers; the sources overlay it. */
  base?: string;
  /** Ref to move to the new commit: `ref` (refs/heads) or `remote:ref` (refs/remotes). Required unless `orphan`. */
  branch?: string;
  subject?: string;
  body?: string;
  /** Seconds since the epoch, a Date, or text as `ostree commit --timestamp` takes. Default: SOURCE_DATE_EPOCH or now. */
  timestamp?: number | string | Date;
  /** Explicit parent checksum, or null for none. Default: the branch's current commit. */
  parent?: string | null;
  orphan?: boolean;
  /** User metadata, in order (`--add-metadata-string` / `--add-metadata`). */
  metadata?: MetadataDict;
  detachedMetadata?: MetadataDict;
  bindRefs?: readonly string[];
  noBindings?: boolean;
  /** `--bootable`: add `ostree.bootable` and `ostree.linux` from the kernel in /usr/lib/modules/VERSION/vmlinuz. */
  bootable?: boolean;
  skipIfUnchanged?: boolean;
  /** Flush the filesystem (syncfs) before the ref moves. Default: config core.fsync (true). */
  fsync?: boolean;
  /**
   * `--link-checkout-speedup`: files that are hardlinks of this repo's (or its
   * parent's) `.file` objects reuse that object's checksum when the modifier
   * leaves their metadata unchanged (bare-user: the metadata stored in the object).
   */
  linkCheckoutSpeedup?: boolean;
  /** `-I/--devino-canonical`: such hardlinks are taken as is, before any modifier or filter. */
  devinoCanonical?: boolean;
  /** `--tar-autocreate-parents`. */
  tarAutocreateParents?: boolean;
  concurrency?: number;
  onProgress?: (p: CommitProgress) => void;
}

export interface CommitStats {
  /** Content objects written or found already present (ostree's "Content Total"). */
  contentObjects: number;
  contentBytes: number;
  /** Metadata object writes, present ones included (ostree's "Metadata Total"). */
  metadataObjects: number;
  directories: number;
  /** Files whose checksum came from the dev/ino of a repo object (ostree's "Content Cache Hits"). */
  devinoHits: number;
}

export interface CommitResult {
  /** The new commit, or the parent when `skipped`. */
  commit: string;
  skipped: boolean;
  rootTree: string;
  rootMeta: string;
  stats: CommitStats;
}

/** A source entry that is not a directory, regular file or symlink (fifo, socket, device). */
export class UnsupportedFileTypeError extends InvalidArgumentError {
  override name = "UnsupportedFileTypeError";
  constructor(
    readonly path: string,
    kind: string,
  ) {
    super(`Not a regular file or symlink: ${path} (${kind})`);
  }
}

/** Reading a source file or directory failed; names the path. */
export class SourceReadError extends OstreeError {
  override name = "SourceReadError";
  constructor(
    readonly path: string,
    override readonly cause: unknown,
  ) {
    super(`${path}: ${(cause as Error)?.message ?? String(cause)}`);
  }
}

function kindOf(st: Stats): string {
  if (st.isFIFO()) return "fifo";
  if (st.isSocket()) return "socket";
  if (st.isCharacterDevice()) return "character device";
  if (st.isBlockDevice()) return "block device";
  return "unknown type";
}

const utf8Fatal = new TextDecoder("utf-8", { fatal: true });
/** Temp files this package and Repo create in a repo's tmp/ (see addDirSource). */
const REPO_TEMP_NAME = /^(tmpobject|tmpfile|spool)-[0-9a-f]{16}$/;
/** Directory paths at least this long are opened and reached through /proc/self/fd. */
const ANCHOR_PATH_LENGTH = 3000;
/** Payloads above this are spooled to a temp file instead of held in memory (tar members, archive re-reads). */
export const SPOOL_THRESHOLD = 1 << 20;

/** State shared by the tree sources of one commit. */
export class CommitContext {
  readonly pool: TaskPool;
  readonly sizes: SizeIndex | null;
  readonly stats: CommitStats = { contentObjects: 0, contentBytes: 0, metadataObjects: 0, directories: 0, devinoHits: 0 };
  /** dev:ino → checksum of the repo's `.file` objects, with --link-checkout-speedup. */
  devino: Map<string, string> | null = null;
  private readonly dirmetas = new Set<string>();
  private readonly plainDirmetas = new Map<string, { checksum: string; length: number }>();
  private readonly hardlinks = new Map<string, Promise<string>>();

  constructor(
    readonly repo: Repo,
    readonly modifier: CommitModifier,
    readonly options: CommitOptions,
  ) {
    this.pool = new TaskPool(options.concurrency ?? DEFAULT_CONCURRENCY);
    this.sizes = options.generateSizes && repo.isArchive ? new SizeIndex() : null;
  }

  /** Write (or find) the dirmeta for a directory; returns its checksum. */
  async writeDirMeta(info: EntryInfo, xattrs: Xattrs): Promise<string> {
    // Most directories share one uid/gid/mode and have no xattrs: encode and hash those once.
    const key = xattrs.length === 0 ? `${info.uid}:${info.gid}:${info.mode}` : null;
    let known = key !== null ? this.plainDirmetas.get(key) : undefined;
    if (!known) {
      const bytes = encodeDirMeta({ uid: info.uid, gid: info.gid, mode: info.mode, xattrs });
      known = { checksum: sha256Hex(bytes), length: bytes.length };
      if (!this.dirmetas.has(known.checksum)) {
        this.dirmetas.add(known.checksum);
        await this.repo.writeMetadata(ObjectType.DirMeta, bytes, known.checksum);
      }
      if (key !== null) this.plainDirmetas.set(key, known);
    }
    this.sizes?.add(known.checksum, ObjectType.DirMeta, known.length, known.length);
    this.stats.directories++;
    this.stats.metadataObjects++;
    return known.checksum;
  }

  /** Write one content object; `path` only names the entry in errors. */
  async writeFile(path: string, meta: FileMeta, source: PayloadSource, unpacked: number): Promise<string> {
    const fmt = meta.mode & S_IFMT;
    if (this.repo.mode === "bare-user-only" && fmt === S_IFREG && (meta.mode & ~S_IFMT & ~0o775) !== 0) {
      const bits = meta.mode & ~S_IFMT & ~0o775;
      throw new InvalidArgumentError(
        `${path}: Content object: invalid mode 0${meta.mode.toString(8)} with bits 0${bits.toString(8).padStart(4, "0")} (bare-user-only needs canonical permissions)`,
      );
    }
    let checksum: string;
    try {
      if (this.sizes) {
        const r = await writeArchiveContentPako(this.repo, meta, source, false);
        this.sizes.add(r.checksum, ObjectType.File, unpacked, r.archived);
        checksum = r.checksum;
      } else {
        checksum = await this.repo.writeContent(meta, source);
      }
    } catch (e) {
      if (e instanceof OstreeError) throw e;
      throw new SourceReadError(path, e);
    }
    this.stats.contentObjects++;
    this.stats.contentBytes += "data" in source ? source.data.length : source.size;
    this.options.onProgress?.({ contentObjects: this.stats.contentObjects, contentBytes: this.stats.contentBytes });
    return checksum;
  }

  /** `--consume` into bare/bare-user-only: the file itself becomes the object (renamed into objects/). */
  async adoptFile(path: string, meta: FileMeta, abs: string, size: number): Promise<string> {
    let checksum: string;
    try {
      checksum = await this.repo.adoptContent(meta, abs, size);
    } catch (e) {
      if (e instanceof OstreeError) throw e;
      throw new SourceReadError(path, e);
    }
    this.stats.contentObjects++;
    this.stats.contentBytes += size;
    this.options.onProgress?.({ contentObjects: this.stats.contentObjects, contentBytes: this.stats.contentBytes });
    return checksum;
  }

  /** Same inode with the same final metadata → one read; each name still gets the object. */
  writeFileDevIno(st: Stats, path: string, meta: FileMeta, source: PayloadSource, unpacked: number): Promise<string> {
    if (st.nlink < 2 || !st.isFile()) return this.writeFile(path, meta, source, unpacked);
    const key = `${st.dev}:${st.ino}:${meta.uid}:${meta.gid}:${meta.mode}`;
    let p = this.hardlinks.get(key);
    if (!p) {
      p = this.writeFile(path, meta, source, unpacked);
      this.hardlinks.set(key, p);
    } else {
      // ostree writes each name; the second write finds the object present.
      this.stats.contentObjects++;
    }
    return p;
  }

  /** A payload as a PayloadSource: small in memory, big spooled to the repo's tmp dir. */
  async spool(stream: Readable, size: number, cleanup: string[]): Promise<PayloadSource> {
    if (size <= SPOOL_THRESHOLD) {
      const chunks: Buffer[] = [];
      for await (const c of stream) chunks.push(c as Buffer);
      return { data: new Uint8Array(Buffer.concat(chunks)) };
    }
    const tmp = join(this.repo.tmpDir, `spool-${randomBytes(8).toString("hex")}`);
    cleanup.push(tmp);
    await pipeline(stream, createWriteStream(tmp, { mode: 0o600 }));
    return { path: tmp, size };
  }
}

function entryInfo(st: Stats): EntryInfo {
  return { uid: st.uid, gid: st.gid, mode: st.mode };
}

function childPath(rel: string, name: string): string {
  return rel === "/" ? `/${name}` : `${rel}/${name}`;
}

/** `--tree=dir=PATH`: walk a directory (iteratively) into `mtree`. */
async function addDirSource(ctx: CommitContext, root: string, mtree: MutableTree): Promise<void> {
  const { modifier, repo } = ctx;
  const consume = !!ctx.options.consume;
  ctx.sizes?.clear();
  // Synchronous lstat/readdir: one threadpool round trip per entry cost more than the syscall.
  const readMeta = (abs: string): Stats => {
    try {
      return lstatSync(abs);
    } catch (e) {
      throw new SourceReadError(abs, e);
    }
  };
  const xattrsOf = (abs: string, rel: string): Xattrs => {
    if (modifier.skipXattrs) return [];
    try {
      return readXattrs(abs);
    } catch (e) {
      throw new SourceReadError(rel, e);
    }
  };
  let rootSt: Stats;
  try {
    rootSt = await stat(root);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === "ENOENT") throw new SourceReadError(`opendir(${root})`, new Error("No such file or directory"));
    throw new SourceReadError(root, e);
  }
  if (!rootSt.isDirectory()) throw new SourceReadError(`opendir(${root})`, new Error("Not a directory"));
  // ostree stages objects in O_TMPFILE files nobody can see; ours are named files in the repo's
  // tmp/, so a tree that contains the repo would see them come and go: they are not listed.
  const repoTmp = await stat(repo.tmpDir).catch(() => null);
  const isRepoTmp = (st: Stats) => repoTmp !== null && st.dev === repoTmp.dev && st.ino === repoTmp.ino;
  // ostree adopts (renames) consumed regular files into bare and bare-user-only repos on the same device.
  const objectsDev = consume && (repo.mode === "bare" || repo.mode === "bare-user-only") ? (await stat(join(repo.path, "objects"))).dev : -1;

  const consumedDirs: string[] = [];
  const anchors: FileHandle[] = [];
  const stack: Array<{ abs: string; rel: string; node: MutableTree; st: Stats }> = [];
  // Node has no openat(): below this length a directory is reached by its
  // path; deeper ones through an open fd (/proc/self/fd/N), so trees nested
  // past PATH_MAX still commit, as they do with ostree.
  const reach = async (parentAbs: string, name: string): Promise<string> => {
    const abs = join(parentAbs, name);
    if (abs.length < ANCHOR_PATH_LENGTH) return abs;
    let fh: FileHandle;
    try {
      fh = await open(abs, FS.O_RDONLY | FS.O_DIRECTORY | FS.O_NOFOLLOW);
    } catch (e) {
      throw new SourceReadError(abs, e);
    }
    anchors.push(fh);
    return `/proc/self/fd/${fh.fd}/.`;
  };
  // The directory's own dirmeta: ostree applies the modifier here again for
  // subdirectories (after the parent's skip check), so a non-`=` statoverride
  // entry, consumed by the first application, never changes a directory.
  const enterDir = async (abs: string, rel: string, node: MutableTree, st: Stats): Promise<boolean> => {
    const { allow, info } = modifier.apply(rel, entryInfo(st));
    if (!allow) return false;
    node.setMetadataChecksum(await ctx.writeDirMeta(info, xattrsOf(abs, rel)));
    stack.push({ abs, rel, node, st });
    return true;
  };
  try {
  await enterDir(root, "/", mtree, rootSt);

  while (stack.length) {
    const dir = stack.pop()!;
    await dir.node.makeWhole(repo);
    let names: Buffer[];
    try {
      names = readdirSync(dir.abs, { encoding: "buffer" });
    } catch (e) {
      throw new SourceReadError(dir.abs, e);
    }
    if (isRepoTmp(dir.st)) {
      // Our own transaction's staging dir and lock are hidden as well.
      const txn = repo.transactionDirName;
      names = names.filter((n) => {
        const s = n.toString("latin1");
        return !REPO_TEMP_NAME.test(s) && s !== txn && s !== `${txn}-lock`;
      });
    }
    const entries = names.map((raw) => {
      let name: string;
      try {
        name = utf8Fatal.decode(raw);
      } catch {
        throw new InvalidArgumentError(`Invalid UTF-8 in filename ${raw.toString("latin1")} in ${dir.abs}`);
      }
      const abs = join(dir.abs, name);
      return { name, abs, st: readMeta(abs) };
    });
    for (const { name, abs, st } of entries) {
      const rel = childPath(dir.rel, name);
      if (st.isDirectory()) {
        const { allow } = modifier.apply(rel, entryInfo(st));
        if (!allow) {
          if (consume) await rm(abs, { recursive: true, force: true });
          continue;
        }
        const child = dir.node.ensureDir(name);
        if (consume) consumedDirs.push(abs);
        await enterDir(await reach(dir.abs, name), rel, child, st);
        continue;
      }
      if (!st.isFile() && !st.isSymbolicLink()) throw new UnsupportedFileTypeError(rel, kindOf(st));
      const hit = ctx.devino?.get(`${st.dev}:${st.ino}`);
      if (hit !== undefined && ctx.options.devinoCanonical) {
        dir.node.replaceFile(name, hit);
        ctx.stats.devinoHits++;
        if (consume) await rm(abs, { force: true });
        continue;
      }
      // A bare-user checkout's hardlink carries the checkout user's ids: the object's stored metadata is the source.
      let source: { info: EntryInfo; xattrs: Xattrs } | undefined;
      if (hit !== undefined && repo.mode === "bare-user") {
        const m = (await repo.openContent(hit)).meta;
        source = { info: { uid: m.uid, gid: m.gid, mode: m.mode }, xattrs: m.xattrs };
      }
      const original = source?.info ?? entryInfo(st);
      const { allow, info } = modifier.apply(rel, original);
      if (!allow) {
        if (consume) await rm(abs, { force: true });
        continue;
      }
      // ostree counts skipped xattrs as modified (no on-disk xattrs to compare with).
      const unmodified = info.uid === original.uid && info.gid === original.gid && info.mode === original.mode && !modifier.skipXattrs;
      if (hit !== undefined && unmodified) {
        dir.node.replaceFile(name, hit);
        ctx.stats.devinoHits++;
        if (consume) await unlink(abs);
        continue;
      }
      const node = dir.node;
      node.replaceFile(name, PENDING);
      await ctx.pool.run(async () => {
        let checksum: string;
        if (st.isSymbolicLink()) {
          let target: Buffer;
          try {
            // Synchronous: a threadpool round trip costs more than the syscall.
            target = readlinkSync(abs, { encoding: "buffer" });
          } catch (e) {
            throw new SourceReadError(rel, e);
          }
          const meta: FileMeta = { ...info, symlinkTarget: target.toString("utf8"), xattrs: modifier.skipXattrs ? [] : (source?.xattrs ?? xattrsOf(abs, rel)) };
          checksum = await ctx.writeFile(rel, meta, { data: new Uint8Array(0) }, target.length);
        } else {
          const xattrs = modifier.skipXattrs ? [] : (source?.xattrs ?? xattrsOf(abs, rel));
          const meta: FileMeta = { ...info, symlinkTarget: "", xattrs };
          if (st.dev === objectsDev && (repo.mode === "bare-user-only" ? modifier.canonical : unmodified)) {
            node.files.set(name, await ctx.adoptFile(rel, meta, abs, st.size));
            return;
          }
          checksum = await ctx.writeFileDevIno(st, rel, meta, { path: abs, size: st.size }, st.size);
        }
        node.files.set(name, checksum);
        if (consume) await unlink(abs);
      });
    }
  }
  await ctx.pool.drain();
  if (consume) {
    for (let i = consumedDirs.length - 1; i >= 0; i--) await rmdir(consumedDirs[i]!);
    if (root !== "." && root !== "./") await rmdir(root);
  }
  } finally {
    await ctx.pool.drain().catch(() => undefined);
    for (const fh of anchors) await fh.close();
  }
}

/**
 * `--tree=ref=REV`: graft a commit's tree, or with a modifier rewrite it entry
 * by entry as ostree does. `--base` (`asBase`) always grafts, before any source.
 */
async function addRefSource(ctx: CommitContext, rev: string, mtree: MutableTree, asBase = false): Promise<void> {
  const { repo, modifier } = ctx;
  if (!asBase) ctx.sizes?.clear();
  const checksum = (await resolveRev(repo, rev))!;
  const commit = await repo.readCommit(checksum);
  if (asBase || !modifier.active) {
    const stack: Array<{ node: MutableTree; tree: string; meta: string }> = [{ node: mtree, tree: commit.rootTree, meta: commit.rootMeta }];
    while (stack.length) {
      const { node, tree, meta } = stack.pop()!;
      if (node.fillEmptyFromDirtree(tree, meta)) continue;
      node.setMetadataChecksum(meta);
      await node.makeWhole(repo);
      const dt = await repo.readDirTree(tree);
      for (const f of dt.files) node.replaceFile(f.name, f.checksum);
      for (const d of dt.dirs) stack.push({ node: node.ensureDir(d.name), tree: d.tree, meta: d.meta });
    }
    return;
  }

  const stack: Array<{ node: MutableTree; tree: string; meta: string; rel: string }> = [];
  const enterDir = async (node: MutableTree, tree: string, meta: string, rel: string) => {
    const dm = await repo.readDirMeta(meta);
    const { allow, info } = modifier.apply(rel, { uid: dm.uid, gid: dm.gid, mode: dm.mode });
    if (!allow) return;
    node.setMetadataChecksum(await ctx.writeDirMeta(info, modifier.skipXattrs ? [] : dm.xattrs));
    stack.push({ node, tree, meta, rel });
  };
  await enterDir(mtree, commit.rootTree, commit.rootMeta, "/");
  while (stack.length) {
    const dir = stack.pop()!;
    await dir.node.makeWhole(repo);
    const dt = await repo.readDirTree(dir.tree);
    for (const f of dt.files) {
      const rel = childPath(dir.rel, f.name);
      const obj = await repo.openContent(f.checksum);
      const { allow, info } = modifier.apply(rel, { uid: obj.meta.uid, gid: obj.meta.gid, mode: obj.meta.mode });
      if (!allow) continue;
      const node = dir.node;
      node.replaceFile(f.name, PENDING);
      await ctx.pool.run(async () => {
        const meta: FileMeta = { ...info, symlinkTarget: obj.meta.symlinkTarget, xattrs: modifier.skipXattrs ? [] : obj.meta.xattrs };
        const cleanup: string[] = [];
        try {
          let source: PayloadSource;
          if ((obj.meta.mode & S_IFMT) === S_IFLNK) source = { data: new Uint8Array(0) };
          else if (!repo.isArchive) source = { path: repo.objectPath(f.checksum, ObjectType.File), size: obj.size };
          else source = await ctx.spool(obj.payload(), obj.size, cleanup);
          node.files.set(f.name, await ctx.writeFile(rel, meta, source, obj.size));
        } finally {
          for (const p of cleanup) await rm(p, { force: true });
        }
      });
    }
    for (const d of dt.dirs) {
      const rel = childPath(dir.rel, d.name);
      const dm = await repo.readDirMeta(d.meta);
      if (!modifier.apply(rel, { uid: dm.uid, gid: dm.gid, mode: dm.mode }).allow) continue;
      await enterDir(dir.node.ensureDir(d.name), d.tree, d.meta, rel);
    }
  }
  await ctx.pool.drain();
}

const INT64_MAX = (1n << 63n) - 1n;

function resolveTimestamp(t: CommitOptions["timestamp"]): number {
  if (t === undefined) {
    const env = process.env.SOURCE_DATE_EPOCH;
    if (env !== undefined) {
      // g_ascii_strtoll: leading space, sign, digits; ERANGE outside int64.
      const m = /^[\t\n\v\f\r ]*([+-]?\d+)/.exec(env);
      if (!m) throw new InvalidArgumentError("Failed to convert SOURCE_DATE_EPOCH");
      const v = BigInt(m[1]!);
      if (v > INT64_MAX || v < -INT64_MAX - 1n) throw new InvalidArgumentError("Parsing SOURCE_DATE_EPOCH: Numerical result out of range");
      return Number(v);
    }
    return Math.floor(Date.now() / 1000);
  }
  if (t instanceof Date) return Math.floor(t.getTime() / 1000);
  if (typeof t === "number") {
    if (!Number.isInteger(t) || t < 0) throw new InvalidArgumentError(`Invalid timestamp ${t}`);
    return t;
  }
  return parseTimestamp(t);
}

/**
 * Build the commit metadata in ostree's order: user keys as given, then
 * ostree.ref-binding (branch + bind refs, sorted) unless noBindings, then
 * ostree.collection-binding when the repo has a collection ID and the user
 * did not set one.
 */
export function commitMetadata(repo: Repo, o: Pick<CommitOptions, "metadata" | "branch" | "bindRefs" | "noBindings">): Array<[string, Variant]> {
  const out: Array<[string, Variant]> = (o.metadata ?? []).map(([k, v]) => {
    if (k === "") throw new InvalidArgumentError("Empty metadata key");
    return [k, v];
  });
  if (!o.noBindings) {
    const refs = [...(o.branch !== undefined ? [o.branch] : []), ...(o.bindRefs ?? [])];
    refs.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    out.push(["ostree.ref-binding", variant("as", refs)]);
    const cid = repo.config.getString("core", "collection-id");
    if (cid && !out.some(([k]) => k === "ostree.collection-binding")) out.push(["ostree.collection-binding", variant("s", cid)]);
  }
  return out;
}

/**
 * ostree_repo_scan_hardlinks: dev:ino of every `.file` object in the repo and
 * its `core.parent` chain (archive repos have none: theirs are `.filez`).
 */
export async function scanHardlinks(repo: Repo): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const parent = await repo.parentRepo();
  if (parent) for (const [k, v] of await scanHardlinks(parent)) out.set(k, v);
  const objects = join(repo.path, "objects");
  for (const prefix of await readdir(objects)) {
    if (prefix.length !== 2) continue;
    const names = await readdir(join(objects, prefix));
    await mapLimit(names, 64, async (name) => {
      if (!name.endsWith(".file") || name.length !== 67) return;
      const st = await lstat(join(objects, prefix, name));
      out.set(`${st.dev}:${st.ino}`, prefix + name.slice(0, 62));
    });
  }
  return out;
}

/**
 * ostree_commit_metadata_for_bootable: the one directory under
 * /usr/lib/modules holding a `vmlinuz` names the kernel. Errors as ostree's
 * (its OstreeRepoFile names the first missing path component).
 */
export async function findBootableKernel(repo: Repo, rootTree: string): Promise<string> {
  let tree = await repo.readDirTree(rootTree);
  let path = "";
  for (const name of ["usr", "lib", "modules"]) {
    path += `/${name}`;
    const dir = tree.dirs.find((d) => d.name === name);
    if (!dir) {
      if (tree.files.some((f) => f.name === name)) throw new InvalidArgumentError(`Not a directory: ${path}`);
      throw new InvalidArgumentError(`No such file or directory: ${path}`);
    }
    tree = await repo.readDirTree(dir.tree);
  }
  let release: string | null = null;
  for (const d of tree.dirs) {
    const sub = await repo.readDirTree(d.tree);
    if (!sub.files.some((f) => f.name === "vmlinuz") && !sub.dirs.some((x) => x.name === "vmlinuz")) continue;
    if (release !== null) throw new InvalidArgumentError("Multiple kernels found in /usr/lib/modules");
    release = d.name;
  }
  if (release === null) throw new InvalidArgumentError("No kernel found in /usr/lib/modules");
  return release;
}

/**
 * `--bootable` rebuilds the metadata through a GVariantDict (a hash table),
 * so the keys come out in GLib's hash order, the kernel keys included.
 */
function addBootableMetadata(metadata: Array<[string, Variant]>, release: string): Array<[string, Variant]> {
  const dict = new GStrHashMap<Variant>();
  for (const [k, v] of metadata) dict.set(k, v);
  dict.set("ostree.bootable", variant("b", true));
  dict.set("ostree.linux", variant("s", release));
  return dict.entries();
}

/** `-b` as ostree takes it: `ref` or `remote:ref` (ostree_parse_refspec). */
function branchRef(branch: string): { remote: string | null; ref: string } {
  const spec = parseRefspec(branch);
  if (spec.remote !== null) validateRemoteName(spec.remote);
  validateRef(spec.ref);
  return spec;
}

/**
 * Commit one or more trees (ostree commit). Objects are written first, then
 * the commit and its detached metadata, and only then does the branch move.
 */
export async function commit(repo: Repo, options: CommitOptions): Promise<CommitResult> {
  const o = options;
  if (o.branch === undefined && !o.orphan) throw new InvalidArgumentError("A branch must be specified with --branch, or use --orphan");
  // Bind refs are stored as given: ostree does not validate them.
  const branch = o.branch !== undefined ? branchRef(o.branch) : null;
  if (o.tree.length === 0) throw new InvalidArgumentError("No tree to commit");
  const timestamp = resolveTimestamp(o.timestamp);

  let parent: string | null;
  if (o.parent !== undefined) parent = o.parent === null ? null : (await resolveRev(repo, o.parent))!;
  else if (o.orphan || o.branch === undefined) parent = null;
  else parent = await resolveRev(repo, o.branch, true);

  const modifier = new CommitModifier(repo, o);
  // Objects are staged in tmp/staging-$BOOTID-*/ and renamed into objects/ at the end (ostree's transaction).
  await repo.prepareTransaction({ fsync: o.fsync });
  try {
    return await commitInTransaction(repo, o, modifier, branch, parent, timestamp);
  } finally {
    // After a successful commit there is nothing left to abort; after a failure the staging dir stays for reuse.
    await repo.abortTransaction();
  }
}

async function commitInTransaction(
  repo: Repo,
  o: CommitOptions,
  modifier: CommitModifier,
  branch: { remote: string | null; ref: string } | null,
  parent: string | null,
  timestamp: number,
): Promise<CommitResult> {
  const ctx = new CommitContext(repo, modifier, o);
  if (o.linkCheckoutSpeedup || o.devinoCanonical) ctx.devino = await scanHardlinks(repo);
  const mtree = new MutableTree();
  if (o.base !== undefined) await addRefSource(ctx, o.base, mtree, true);
  for (const src of o.tree) {
    if ("dir" in src) await addDirSource(ctx, src.dir, mtree);
    else if ("ref" in src) await addRefSource(ctx, src.ref, mtree);
    else if ("tar" in src) await importTar(ctx, src.tar, mtree, !!o.tarAutocreateParents);
    else throw new InvalidArgumentError(`Invalid tree type specification ${JSON.stringify(src)}`);
  }
  modifier.checkUnmatched();

  const rootTree = await writeMtree(repo, mtree, {
    onMetadata: (csum, type, len) => {
      ctx.sizes?.add(csum, type, len, len);
      ctx.stats.metadataObjects++;
    },
  });
  const rootMeta = mtree.metaChecksum!;

  if (o.skipIfUnchanged && parent) {
    const p = await repo.readCommit(parent);
    if (p.rootTree === rootTree && p.rootMeta === rootMeta) return { commit: parent, skipped: true, rootTree, rootMeta, stats: ctx.stats };
  }

  let metadata = commitMetadata(repo, o);
  if (o.bootable) metadata = addBootableMetadata(metadata, await findBootableKernel(repo, rootTree));
  if (ctx.sizes && ctx.sizes.size > 0) metadata.push(["ostree.sizes", ctx.sizes.toVariant()]);
  const bytes = encodeCommit({ metadata, parent, related: [], subject: o.subject ?? "", body: o.body ?? "", timestamp, rootTree, rootMeta });
  const checksum = await repo.writeMetadata(ObjectType.Commit, bytes);
  ctx.stats.metadataObjects++;
  if (o.detachedMetadata) await repo.writeCommitMeta(checksum, o.detachedMetadata);

  await repo.commitTransaction(async () => {
    if (branch) await setRef(repo, branch.remote !== null ? { kind: "remote", remote: branch.remote } : { kind: "heads" }, branch.ref, checksum);
  });
  return { commit: checksum, skipped: false, rootTree, rootMeta, stats: ctx.stats };
}
