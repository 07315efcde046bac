import {
  chmodSync,
  chownSync,
  closeSync,
  constants as FS,
  copyFileSync,
  createReadStream,
  fsyncSync,
  lchownSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readlinkSync,
  readSync,
  renameSync,
  statSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  write,
  writeSync,
  fsync as fsyncCb,
} from "node:fs";
import { spawnSync } from "node:child_process";
import { join, normalize } from "node:path";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import { createInflateRaw, inflateRaw, inflateRawSync } from "node:zlib";
import { listAttributesSync } from "@napi-rs/xattr";
import { S_IFLNK, S_IFMT, S_IFREG, TaskPool, type DirMeta, type DirTree, type Repo, type Xattrs } from "@ostree-ts/objstore";
import { DevInoCache } from "./devino.js";
import { CheckoutError, errnoError, errnoOf, UnsafePathError } from "./errors.js";
import { checksumPath, getXattrsSync, rmRf, setXattrsSync, tempName } from "./fsutil.js";
import { probeFileSync, readDirMetaSync, readDirTreeSync, SMALL_OBJECT, type Probed } from "./probe.js";
import { checkUniqueNames, resolveCommit, resolveSubpath, validateName } from "./tree.js";

export type OverwriteMode = "none" | "union" | "union-add" | "union-identical";

/** What a filter sees: ostree's path (from the checkout root, `/`-prefixed, directories `/`-suffixed) and stat-like fields. */
export interface FilterInfo {
  mode: number;
  uid: number;
  gid: number;
}

export interface CheckoutOptions {
  /** Check out only this path of the commit (a directory, or a single file). */
  subpath?: string;
  /** `-U`: do not chown, do not set xattrs, drop setuid/setgid bits. Forced for bare-user-only repos. */
  userMode?: boolean;
  /** What to do with existing files; the booleans below are shorthands for it. */
  overwrite?: OverwriteMode;
  union?: boolean;
  unionAdd?: boolean;
  unionIdentical?: boolean;
  /** Process Docker/OCI `.wh.` whiteouts and `.wh..wh..opq` opaque directories. */
  whiteouts?: boolean;
  /** `--process-passthrough-whiteouts`: `.ostree-wh.NAME` files become overlayfs whiteouts NAME (character devices 0:0). */
  processPassthroughWhiteouts?: boolean;
  /** `-C`: never hardlink. Also leaves directory mtimes as they are. */
  forceCopy?: boolean;
  /** `-z`: accepted for compatibility; ostree 2022.7 copies zero-sized files always. */
  forceCopyZerosized?: boolean;
  /** `-H`: fail where a hardlink is impossible instead of copying. */
  requireHardlinks?: boolean;
  /** `-M`: directory modes masked to 0775. Always on for bare-user-only repos. */
  bareuseronlyDirs?: boolean;
  /** Paths to leave out, in ostree's filter form (`/a/file`, `/a/dir/`). */
  skipList?: Iterable<string>;
  /** Return false to leave a path (and for directories, all below it) out. */
  filter?: (path: string, info: FilterInfo) => boolean;
  /**
   * Archive repos with userMode: unpack into `uncompressed-objects-cache/` and
   * hardlink from there, as `ostree checkout` does when no at-style flag is given.
   */
  uncompressedCache?: boolean;
  /** fsync every written file and directory (ostree's deprecated `enable_fsync`; off by default). */
  fsync?: boolean;
  /** ostree_repo_set_disable_fsync (`--fsync=false`): skip the fsync of uncompressed-cache objects too. */
  disableFsync?: boolean;
  /** Filled with (dev, ino) → checksum for every hardlinked file. */
  devinoCache?: DevInoCache;
  /**
   * 1: walk on the calling thread only. 2: split the tree with one worker
   * thread, and wait for it even when the calling thread could finish alone.
   * Unset: a worker for large trees unless the CPUs are saturated (load
   * average below three times the CPU count), dismissed if still loading
   * when the work runs out. The worker runs this package's JavaScript build
   * (from the TypeScript sources, the walk stays on one thread), and only
   * fresh checkouts without whiteouts, filter callbacks or a devino cache are
   * split.
   */
  threads?: 1 | 2;
  /**
   * false: never use the C addon (native/, built at install when a compiler is
   * there). Otherwise it does bare-user `-U` hardlink checkouts when it loads,
   * on `threads` threads (unset: two on a machine with two CPUs or more).
   */
  native?: boolean;
}

export interface CheckoutStats {
  commit: string;
  hardlinked: number;
  copied: number;
  directories: number;
  skipped: number;
  /** Threads that walked the tree: 2 when a worker thread took part. */
  threads: number;
}

type LinkResult = "not-supported" | "skip-existed" | "linked";

/** @internal */
export interface Ctx {
  repo: Repo;
  user: boolean;
  overwrite: OverwriteMode;
  whiteouts: boolean;
  passthroughWhiteouts: boolean;
  forceCopy: boolean;
  requireHardlinks: boolean;
  dirMask: number;
  filter: ((path: string, info: FilterInfo) => boolean) | undefined;
  cache: boolean;
  fsync: boolean;
  cacheFsync: boolean;
  devino: DevInoCache | undefined;
  repoDev: bigint;
  disableXattrs: boolean;
  stats: CheckoutStats;
  /** Decoded dirmetas by checksum: a tree has few distinct ones. */
  metas: Map<string, DirMeta>;
  /** uncompressed-objects-cache/XX directories known to exist. */
  cacheDirs: Set<string>;
  /** Threadpool inflate/write/fsync of archive payloads; undefined with whiteouts, whose removals must follow ostree's order exactly. */
  pool: TaskPool | undefined;
}

/** Threadpool calls in flight: libuv has four threads, and the machines this runs on often two cores. */
const POOL_SIZE = 3;

function normalizeOverwrite(o: CheckoutOptions): OverwriteMode {
  const set = [o.union && "union", o.unionAdd && "union-add", o.unionIdentical && "union-identical"].filter(Boolean) as OverwriteMode[];
  if (o.union && o.unionAdd) throw new CheckoutError("Cannot specify both --union and --union-add");
  if (o.union && o.unionIdentical) throw new CheckoutError("Cannot specify both --union and --union-identical");
  if (o.unionAdd && o.unionIdentical) throw new CheckoutError("Cannot specify both --union-add and --union-identical");
  if (o.overwrite && set.length && set[0] !== o.overwrite) throw new CheckoutError(`overwrite mode ${o.overwrite} conflicts with ${set[0]}`);
  return o.overwrite ?? set[0] ?? "none";
}

/**
 * Check out `rev` (a ref, `ref^`, or a commit checksum) or its `subpath` into
 * `destination`, as `ostree checkout` does: hardlinks from the object store
 * where repo mode and checkout mode allow, copies otherwise.
 *
 * `destination`'s parent must exist; `destination` itself must not, unless a
 * union mode is used. Files and symlinks are created with exclusive-create or
 * replaced by rename, never written through an existing path; directories
 * that already exist are only entered if they are real directories (not
 * symlinks). An interrupted checkout leaves a partial tree (directories may
 * still be mode 0700); rerunning with `union` completes it.
 *
 * Each thread's walk is sequential, and its filesystem calls (lstat, link,
 * mkdir, symlink, reading headers) are synchronous: measured on an idle
 * machine, a threadpool round trip costs more than any of them (mkdir and
 * symlink on the pool doubled checkout's wall and CPU time). Only inflating
 * and writing archive payloads, real work for zlib, goes to a small bounded
 * pool so it overlaps with the walk; a directory's metadata goes on once its
 * entries are done. Payloads over 1 MiB are inflated by a stream, so memory stays
 * flat in file and tree size. Large fresh checkouts are split with one worker
 * thread while a CPU is idle (see `threads` and parallel.ts).
 */
export async function checkout(repo: Repo, rev: string, destination: string, options: CheckoutOptions = {}): Promise<CheckoutStats> {
  const overwrite = normalizeOverwrite(options);
  if (options.requireHardlinks && options.forceCopy) throw new CheckoutError("Cannot specify both --require-hardlinks and --force-copy");
  if (overwrite === "union-identical" && !options.requireHardlinks) throw new CheckoutError("--union-identical requires --require-hardlinks");
  // The synchronous object readers fall back to core.parent only once it is open.
  await repo.parentRepo();
  const commit = await resolveCommit(repo, rev);
  const resolved = await resolveSubpath(repo, commit, options.subpath);
  const ctx = makeCtx(repo, commit, options);

  if (resolved.kind === "file") {
    // ostree makes the destination directory (mode 0700) and puts the file in it, unfiltered.
    if (destination !== ".") {
      try {
        mkdirSync(destination, 0o700);
      } catch (e) {
        if (errnoOf(e) !== "EEXIST") throw errnoError("mkdirat", e);
      }
    }
    ctx.filter = undefined;
    await checkoutFile(ctx, normalizedDir(destination), resolved.name, resolved.checksum, `/${resolved.name}`);
    return ctx.stats;
  }
  try {
    if (options.native !== false && nativeEligible(ctx)) {
      const { checkoutNative } = await import("./native.js");
      if (await checkoutNative(ctx, options, destination, resolved.tree, resolved.meta)) return ctx.stats;
    }
    if (options.threads !== 1 && parallelEligible(options, overwrite)) {
      const { checkoutParallel } = await import("./parallel.js");
      if (await checkoutParallel(ctx, options, destination, resolved.tree, resolved.meta)) return ctx.stats;
    }
    await checkoutDir(ctx, destination, resolved.tree, resolved.meta, "/", true);
  } catch (e) {
    // Nothing may still be writing into the target once checkout has returned.
    await ctx.pool?.idle();
    throw e;
  }
  return ctx.stats;
}

/**
 * Options a worker thread can reproduce (no callbacks, no caller-owned
 * objects) and walks whose order does not matter: whiteout removals follow
 * ostree's order, and only fresh checkouts are split (a union over an existing
 * tree is the incremental case, already cheap).
 */
function parallelEligible(o: CheckoutOptions, overwrite: OverwriteMode): boolean {
  return overwrite === "none" && !o.whiteouts && !o.processPassthroughWhiteouts && !o.filter && !o.devinoCache;
}

/**
 * Checkouts the C addon can do (native.ts): in user mode into a fresh tree,
 * nothing decided per path by the caller, bare-user objects hardlinked or
 * archive objects linked from the uncompressed cache (with
 * requireHardlinks an archive checkout fails on its first file: the walk's
 * business).
 */
function nativeEligible(ctx: Ctx): boolean {
  return (
    (ctx.repo.mode === "bare-user" || (ctx.repo.isArchive && ctx.cache && !ctx.requireHardlinks)) &&
    ctx.user &&
    !ctx.forceCopy &&
    ctx.overwrite === "none" &&
    !ctx.whiteouts &&
    !ctx.passthroughWhiteouts &&
    !ctx.filter &&
    !ctx.devino
  );
}

/** @internal The per-walk state, for the main thread and for a worker thread rebuilding it from the same options. */
export function makeCtx(repo: Repo, commit: string, options: CheckoutOptions): Ctx {
  const skip = options.skipList ? new Set(options.skipList) : undefined;
  const userFilter = options.filter;
  const filter =
    skip || userFilter
      ? (path: string, info: FilterInfo) => !(skip?.has(path) ?? false) && (userFilter ? userFilter(path, info) : true)
      : undefined;
  return {
    repo,
    user: !!options.userMode || repo.mode === "bare-user-only",
    overwrite: normalizeOverwrite(options),
    whiteouts: !!options.whiteouts,
    passthroughWhiteouts: !!options.processPassthroughWhiteouts,
    forceCopy: !!options.forceCopy,
    requireHardlinks: !!options.requireHardlinks,
    dirMask: repo.mode === "bare-user-only" || options.bareuseronlyDirs ? 0o775 : 0o7777,
    filter,
    cache: !!options.uncompressedCache && repo.isArchive && repo.config.getBoolean("core", "enable-uncompressed-cache", true),
    fsync: !!options.fsync,
    cacheFsync: !options.disableFsync && repo.config.getBoolean("core", "fsync", true),
    devino: options.devinoCache,
    repoDev: statSync(repo.path, { bigint: true }).dev,
    disableXattrs: repo.config.getBoolean("core", "disable-xattrs", false),
    stats: { commit, hardlinked: 0, copied: 0, directories: 0, skipped: 0, threads: 1 },
    metas: new Map(),
    cacheDirs: new Set(),
    pool: options.whiteouts ? undefined : new TaskPool(POOL_SIZE),
  };
}

/** @internal */
export function dirMeta(ctx: Ctx, checksum: string): DirMeta {
  let m = ctx.metas.get(checksum);
  if (!m) {
    m = readDirMetaSync(ctx.repo, checksum);
    ctx.metas.set(checksum, m);
  }
  return m;
}

/**
 * One directory: create it, its files, then its subdirectories; its own
 * metadata goes on last, as ostree does.
 * @internal
 */
export async function checkoutDir(
  ctx: Ctx,
  path: string,
  treeCsum: string,
  metaCsum: string,
  rel: string,
  isRoot: boolean,
): Promise<void> {
  const tree = readTree(ctx, treeCsum);
  const meta = dirMeta(ctx, metaCsum);
  const didExist = makeDirSync(ctx, path, tree, meta, rel, isRoot);
  if (didExist === undefined) return;

  const base = isRoot ? normalizedDir(path) : path;
  const background = await startFiles(ctx, base, tree, rel);
  for (const d of tree.dirs) {
    await checkoutDir(ctx, childPath(base, d.name), d.tree, d.meta, `${rel}${d.name}/`, false);
  }
  await Promise.all(background);
  finishDir(ctx, path, meta, didExist);
}

/** @internal A dirtree, its names checked. */
export function readTree(ctx: Ctx, checksum: string): DirTree {
  const tree = readDirTreeSync(ctx.repo, checksum);
  checkUniqueNames(tree, checksum);
  return tree;
}

/**
 * A directory's files. Returns those still in flight on the pool, to be
 * settled before the directory's metadata goes on (its subdirectories can be
 * walked meanwhile).
 * @internal
 */
export async function startFiles(ctx: Ctx, base: string, tree: DirTree, rel: string): Promise<Promise<void>[]> {
  const background: Promise<void>[] = [];
  for (const f of tree.files) {
    const pending = checkoutFile(ctx, base, f.name, f.checksum, rel + f.name);
    if (!pending) continue;
    if (!ctx.pool) {
      await pending;
      continue;
    }
    // Entries of one directory have distinct names: their copies can overlap; the directory's metadata waits for them.
    pending.catch(() => {});
    background.push(pending);
    if (ctx.pool.full) await ctx.pool.room();
  }
  return background;
}

/** Filter and mkdir of a directory, synchronously; whether it existed already, undefined when filtered out. */
/** @internal */
export function makeDirSync(ctx: Ctx, path: string, tree: DirTree, meta: DirMeta, rel: string, isRoot: boolean): boolean | undefined {
  if (ctx.filter && !ctx.filter(rel, { mode: meta.mode, uid: meta.uid, gid: meta.gid })) {
    ctx.stats.skipped++;
    return undefined;
  }
  if (ctx.whiteouts && tree.files.some((f) => f.name === ".wh..wh..opq")) rmRf(path);
  let err: unknown;
  try {
    mkdirSync(path, 0o700);
  } catch (e) {
    err = e;
  }
  return madeDir(ctx, path, meta, rel, isRoot, err);
}

/** After mkdir: an existing directory is entered only in union modes, and only if it is a real directory. */
function madeDir(ctx: Ctx, path: string, meta: DirMeta, rel: string, isRoot: boolean, err: unknown): boolean {
  let didExist = false;
  if (err !== undefined) {
    if (errnoOf(err) !== "EEXIST" || ctx.overwrite === "none") throw errnoError("mkdirat", err);
    didExist = true;
    // The root may be a user-supplied symlink to a directory; below it, a symlink is hostile.
    const st = isRoot ? statSync(path) : lstatSync(path);
    if (!st.isDirectory()) {
      throw new UnsafePathError(
        `Refusing to check out directory ${rel} through ${path}: it exists and is ${st.isSymbolicLink() ? "a symbolic link" : "not a directory"}`,
      );
    }
  }
  ctx.stats.directories++;
  if (ctx.requireHardlinks && (isRoot || didExist)) {
    const dev = statSync(path, { bigint: true }).dev;
    if (dev !== ctx.repoDev) throw new CheckoutError(`Unable to do hardlink checkout across devices (src=${ctx.repoDev} destination=${dev})`, "EXDEV");
  }
  if (!didExist && !ctx.user && meta.xattrs.length) setXattrsSync(path, meta.xattrs);
  return didExist;
}

/** `dir` as path.join leaves it: normalised, no trailing slash (except `/`). */
export function normalizedDir(dir: string): string {
  const n = normalize(dir);
  return n.length > 1 && n.endsWith("/") ? n.slice(0, -1) : n;
}

/** path.join(dir, name) for a normalised `dir` and a validated `name`, without re-normalising per file. */
export function childPath(dir: string, name: string): string {
  if (dir === ".") return name;
  return dir === "/" ? `/${name}` : `${dir}/${name}`;
}

/** Mode, owner and mtime go on last so nobody can use a half-built directory. */
export function finishDir(ctx: Ctx, path: string, meta: DirMeta, didExist: boolean): void {
  if (didExist) return;
  try {
    chmodSync(path, meta.mode & ctx.dirMask);
  } catch (e) {
    throw errnoError("fchmod", e);
  }
  if (!ctx.user) {
    try {
      chownSync(path, meta.uid, meta.gid);
    } catch (e) {
      throw errnoError(`fchown(${path})`, e);
    }
  }
  // OSTREE_TIMESTAMP (0) so every checkout has identical directory mtimes; copies (-C) keep theirs.
  if (!ctx.forceCopy) utimesSync(path, Date.now() / 1000, 0);
  if (ctx.fsync) {
    const fd = openSync(path, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
}

function loosePath(checksum: string): string {
  return `${checksum.slice(0, 2)}/${checksum.slice(2)}.file`;
}

/**
 * Returns a promise only when something asynchronous is left to do (a streamed payload, a union comparison).
 * @internal
 */
export function checkoutFile(ctx: Ctx, dir: string, name: string, checksum: string, rel: string): Promise<void> | undefined {
  validateName(name, dir);
  const { repo } = ctx;
  const dest = childPath(dir, name);
  // Archive payloads are read with the header only when a copy will need them, not to link from the uncompressed cache.
  const p = probeFileSync(repo, checksum, !(ctx.cache && ctx.user && !ctx.forceCopy));
  if (ctx.filter && !ctx.filter(rel, { mode: p.meta.mode, uid: p.meta.uid, gid: p.meta.gid })) {
    ctx.stats.skipped++;
    return;
  }
  const isSymlink = (p.meta.mode & S_IFMT) === S_IFLNK;
  if (ctx.whiteouts && !isSymlink && name.startsWith(".wh.")) {
    const target = name.slice(4);
    if (!target) throw new CheckoutError(`Invalid empty whiteout '${target}'`);
    validateName(target, `whiteout ${rel}`);
    rmRf(join(dir, target));
    return;
  }
  if (ctx.passthroughWhiteouts && !isSymlink && name.startsWith(OVERLAY_WHITEOUT_PREFIX)) {
    const target = name.slice(OVERLAY_WHITEOUT_PREFIX.length);
    if (!target) throw new CheckoutError(`Invalid empty overlayfs whiteout '${target}'`);
    validateName(target, `whiteout ${rel}`);
    checkoutOverlayWhiteout(ctx, p, childPath(dir, target));
    return;
  }
  const zerosized = !isSymlink && p.size === 0;
  const unreadable = ctx.user && !isSymlink && (p.meta.mode & 0o400) === 0;

  if (!zerosized && !unreadable && !ctx.forceCopy) {
    // An object from the core.parent repo is linked by that repo's rules (ostree tries each repo of the chain).
    const mode = (p.repo ?? repo).mode;
    const repoUser = mode === "bare-user" || mode === "bare-user-only";
    const hardlinkable = (mode === "bare" && !ctx.user) || (repoUser && ctx.user);
    const bareUserSymlink = repoUser && isSymlink;
    if (ctx.requireHardlinks && !hardlinkable && !bareUserSymlink) {
      throw new CheckoutError(
        repoUser ? "User repository mode requires user checkout mode to hardlink" : "Bare repository mode cannot hardlink in user checkout mode",
      );
    }
    let source: string | undefined;
    if (hardlinkable && !bareUserSymlink) source = p.objectPath;
    else if (ctx.cache && ctx.user) source = cachePath(ctx, checksum);
    if (source !== undefined) {
      const r = hardlink(ctx, source, dest, name, checksum, true);
      if (r === "not-supported") return afterLink(ctx, p, dir, dest, name, isSymlink, zerosized, unreadable);
      if (r === "linked" || r === "skip-existed") return;
      return r.then((res) => (res === "not-supported" ? afterLink(ctx, p, dir, dest, name, isSymlink, zerosized, unreadable) : undefined));
    }
  }
  return afterLink(ctx, p, dir, dest, name, isSymlink, zerosized, unreadable);
}

const OVERLAY_WHITEOUT_PREFIX = ".ostree-wh.";

/**
 * _checkout_overlayfs_whiteout_at: an overlayfs whiteout (character device 0:0)
 * with the file's permissions and, outside user mode, its xattrs and owner. An
 * existing destination follows the overwrite mode as in ostree. Node has no
 * mknod(2), so mknod(1) makes the device.
 */
function checkoutOverlayWhiteout(ctx: Ctx, p: Probed, dest: string): void {
  const { meta } = p;
  const perms = meta.mode & 0o7777;
  const xattrs = objectXattrs(ctx, p);
  const existing = lstatSync(dest, { throwIfNoEntry: false });
  if (existing) {
    if (ctx.overwrite === "none") throw errnoError("Creating whiteout char device", Object.assign(new Error("exists"), { code: "EEXIST" }));
    if (ctx.overwrite === "union-add") return;
    if (ctx.overwrite === "union-identical") {
      if (!(ctx.disableXattrs || ctx.repo.mode === "bare-user-only") && !sameXattrs(getXattrsSync(dest), xattrs)) {
        throw new CheckoutError(`existing destination file ${dest} xattrs don't match`);
      }
      if (!ctx.user) {
        if (existing.gid !== meta.gid) throw new CheckoutError(`existing destination file ${dest} does not match gid ${meta.gid}`);
        if (existing.uid !== meta.uid) throw new CheckoutError(`existing destination file ${dest} does not match uid ${meta.uid}`);
        if ((existing.mode & 0o7777) !== perms) throw new CheckoutError(`existing destination file ${dest} does not match mode ${meta.mode.toString(8)}`);
      }
      return;
    }
    unlinkSync(dest);
  }
  // mknod(1) -m sets the mode exactly; mknodat(2) in ostree is subject to the umask, which only user mode keeps.
  const mode = ctx.user ? perms & ~process.umask() : perms;
  const r = spawnSync("mknod", ["-m", mode.toString(8), dest, "c", "0", "0"], { encoding: "utf8" });
  if (r.status !== 0) throw new CheckoutError(`Creating whiteout char device: ${(r.stderr || r.error?.message || "mknod failed").trim()}`);
  if (!ctx.user) {
    if (xattrs.length) setXattrsSync(dest, xattrs);
    lchownSync(dest, meta.uid, meta.gid);
    // After chown, which clears setuid/setgid bits.
    chmodSync(dest, perms);
  }
  ctx.stats.copied++;
}

function sameXattrs(a: Xattrs, b: Xattrs): boolean {
  return a.length === b.length && a.every(([n, v], i) => n === b[i]![0] && Buffer.compare(Buffer.from(v), Buffer.from(b[i]![1])) === 0);
}

function cachePath(ctx: Ctx, checksum: string): string {
  return join(ctx.repo.path, "uncompressed-objects-cache", loosePath(checksum));
}

/** No hardlink was made: fill the uncompressed cache and link from it, or copy. */
function afterLink(ctx: Ctx, p: Probed, dir: string, dest: string, name: string, isSymlink: boolean, zerosized: boolean, unreadable: boolean): Promise<void> | undefined {
  const { checksum } = p;
  if (ctx.cache && ctx.user && !isSymlink && !zerosized && !unreadable) {
    const cached = cachePath(ctx, checksum);
    const linkFromCache = (): Promise<void> | undefined => {
      let r;
      try {
        r = hardlink(ctx, cached, dest, name, checksum, false);
      } catch (e) {
        throw prefixError(`Using new cached uncompressed hardlink of ${checksum} to ${name}`, e);
      }
      const next = (res: LinkResult) => (res === "not-supported" ? copy(ctx, p, dir, dest, name, unreadable) : undefined);
      if (typeof r === "string") return next(r);
      return r.then(next, (e: unknown) => {
        throw prefixError(`Using new cached uncompressed hardlink of ${checksum} to ${name}`, e);
      });
    };
    let unpacked;
    try {
      unpacked = unpackToCache(ctx, p, cached);
    } catch (e) {
      throw prefixError(`Unpacking loose object ${checksum}`, e);
    }
    if (!unpacked) return linkFromCache();
    return unpacked.then(linkFromCache, (e: unknown) => {
      throw prefixError(`Unpacking loose object ${checksum}`, e);
    });
  }
  return copy(ctx, p, dir, dest, name, unreadable);
}

function copy(ctx: Ctx, p: Probed, dir: string, dest: string, name: string, unreadable: boolean): Promise<void> | undefined {
  const fail = (e: unknown) => prefixError(`Copy checkout of ${p.checksum} to ${name}`, e);
  let r;
  try {
    r = copyOut(ctx, p, dir, dest, name, unreadable ? p.meta.mode | 0o400 : p.meta.mode);
  } catch (e) {
    throw fail(e);
  }
  return r?.catch((e: unknown) => {
    throw fail(e);
  });
}

function prefixError(prefix: string, e: unknown): CheckoutError {
  if (e instanceof UnsafePathError) return e;
  return errnoError(prefix, e);
}

function stbufEqual(a: { mode: bigint; size: bigint; uid: bigint; gid: bigint }, b: { mode: bigint; size: bigint; uid: bigint; gid: bigint }): boolean {
  if (a.mode !== b.mode) return false;
  if ((Number(a.mode) & S_IFMT) === S_IFREG && a.size !== b.size) return false;
  return a.uid === b.uid && a.gid === b.gid;
}

/**
 * checkout_file_hardlink: link `src` to `dest`, resolving an existing `dest`
 * per the overwrite mode. Synchronous except when an existing file's content
 * must be checksummed (union modes).
 */
function hardlink(ctx: Ctx, src: string, dest: string, name: string, checksum: string, allowNoent: boolean): LinkResult | Promise<LinkResult> {
  try {
    linkSync(src, dest);
  } catch (e) {
    const code = errnoOf(e);
    if (!ctx.requireHardlinks && (code === "EMLINK" || code === "EXDEV" || code === "EPERM")) return "not-supported";
    if (allowNoent && code === "ENOENT") return "not-supported";
    if (code !== "EEXIST") throw errnoError(`Hardlinking ${loosePath(checksum)} to ${name}`, e);
    switch (ctx.overwrite) {
      case "none":
        throw errnoError(`Hardlinking ${loosePath(checksum)} to ${name}`, e);
      case "union-add":
        return "skip-existed";
      case "union":
      case "union-identical":
        return replaceLink(ctx, src, dest, name, checksum, e);
    }
  }
  linked(ctx, dest, checksum);
  return "linked";
}

async function replaceLink(ctx: Ctx, src: string, dest: string, name: string, checksum: string, e: unknown): Promise<LinkResult> {
  const s = lstatSync(src, { bigint: true });
  const d = lstatSync(dest, { bigint: true });
  let identical = s.dev === d.dev && s.ino === d.ino;
  if (!identical && stbufEqual(s, d)) identical = (await checksumPath(dest, d, checksumFlags(ctx))) === checksum;
  if (identical) return "skip-existed";
  if (ctx.overwrite === "union-identical") throw errnoError(`Hardlinking ${loosePath(checksum)} to ${name}`, e);
  const tmp = join(ctx.repo.tmpDir, tempName("checkout-union-"));
  linkSync(src, tmp);
  try {
    if (ctx.whiteouts) rmRf(dest);
    renameSync(tmp, dest);
  } catch (err) {
    unlinkQuiet(tmp);
    throw errnoError(`renameat(${name})`, err);
  }
  linked(ctx, dest, checksum);
  return "linked";
}

function unlinkQuiet(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone, or never made
  }
}

function checksumFlags(ctx: Ctx): { ignoreXattrs: boolean; canonical: boolean } {
  const userOnly = ctx.repo.mode === "bare-user-only";
  return { ignoreXattrs: ctx.disableXattrs || userOnly, canonical: userOnly };
}

function linked(ctx: Ctx, dest: string, checksum: string): void {
  ctx.stats.hardlinked++;
  if (ctx.devino) {
    const st = lstatSync(dest, { bigint: true });
    ctx.devino.set(st.dev, st.ino, checksum);
  }
}

/** The legacy archive-mode cache: an uncompressed copy (setuid/setgid dropped) that user checkouts hardlink. */
function unpackToCache(ctx: Ctx, p: Probed, cached: string): Promise<void> | undefined {
  const tmp = join(ctx.repo.tmpDir, tempName("tmpcache-"));
  const place = () => {
    try {
      chmodSync(tmp, p.meta.mode & 0o7777 & ~0o6000);
      const parent = join(cached, "..");
      if (!ctx.cacheDirs.has(parent)) {
        mkdirSync(parent, { recursive: true, mode: 0o775 });
        ctx.cacheDirs.add(parent);
      }
      try {
        linkSync(tmp, cached);
      } catch (e) {
        if (errnoOf(e) !== "EEXIST") throw e;
      }
    } finally {
      unlinkQuiet(tmp);
    }
  };
  let w;
  try {
    w = writePayload(ctx, p, tmp, FS.O_WRONLY | FS.O_CREAT | FS.O_EXCL, ctx.cacheFsync);
  } catch (e) {
    unlinkQuiet(tmp);
    throw e;
  }
  if (!w) {
    place();
    return;
  }
  return w.then(place, (e: unknown) => {
    unlinkQuiet(tmp);
    throw e;
  });
}

const inflateRawAsync = promisify(inflateRaw);
const writeAsync = promisify(write);
const fsyncAsync = promisify(fsyncCb);

/** One buffer for the rare synchronous read/write loop (bare objects with fsync). */
let copyBuf: Buffer | undefined;

/**
 * Write a regular file's payload to a new file at `path` (created with
 * `flags`). Synchronous unless an archive payload is too large to inflate in
 * one piece.
 */
function writePayload(ctx: Ctx, p: Probed, path: string, flags: number, fsync: boolean): Promise<void> | undefined {
  const { repo } = ctx;
  if (!repo.isArchive && p.size > 0 && !fsync) {
    // A reflink where the filesystem has them, else copy_file_range, straight from the object.
    copyFileSync(p.objectPath, path, (flags & FS.O_EXCL ? FS.COPYFILE_EXCL : 0) | FS.COPYFILE_FICLONE);
    return;
  }
  const fd = openSync(path, flags, 0o600);
  let closeLater = false;
  try {
    if (p.size > 0) {
      if (!repo.isArchive) {
        copyFdSync(p.objectPath, fd);
      } else if (p.size <= SMALL_OBJECT && p.storedSize! <= SMALL_OBJECT) {
        // A probe without the payload (an uncompressed-cache miss) leaves it to be read here.
        const raw = p.raw ?? readFileSync(p.objectPath);
        // One output buffer of the known size instead of 16 KiB chunks concatenated.
        const opts = { chunkSize: Math.max(p.size, 64) };
        if (ctx.pool) {
          // Inflate, write and fsync on the threadpool: the walk goes on meanwhile. `raw` may be the probes' shared buffer.
          const input = p.raw ? Buffer.from(raw.subarray(p.payloadOffset)) : raw.subarray(p.payloadOffset);
          closeLater = true;
          return ctx.pool.call(() => inflateWriteAsync(fd, input, opts, fsync)).finally(() => closeSync(fd));
        }
        writeAllSync(fd, inflateRawSync(raw.subarray(p.payloadOffset), opts));
      } else {
        closeLater = true;
        return streamArchivePayload(p, fd, fsync).finally(() => closeSync(fd));
      }
    }
    if (fsync) fsyncSync(fd);
  } finally {
    if (!closeLater) closeSync(fd);
  }
}

async function inflateWriteAsync(fd: number, input: Buffer, opts: { chunkSize: number }, fsync: boolean): Promise<void> {
  const out = await inflateRawAsync(input, opts);
  let off = 0;
  while (off < out.length) off += (await writeAsync(fd, out, off, out.length - off)).bytesWritten;
  if (fsync) await fsyncAsync(fd);
}

function writeAllSync(fd: number, buf: Uint8Array): void {
  let off = 0;
  while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
}

function copyFdSync(src: string, fd: number): void {
  const sfd = openSync(src, "r");
  try {
    copyBuf ??= Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const n = readSync(sfd, copyBuf, 0, copyBuf.length, null);
      if (n === 0) break;
      writeAllSync(fd, copyBuf.subarray(0, n));
    }
  } finally {
    closeSync(sfd);
  }
}

async function streamArchivePayload(p: Probed, fd: number, fsync: boolean): Promise<void> {
  const hdr = Buffer.allocUnsafe(4);
  const sfd = openSync(p.objectPath, "r");
  try {
    readSync(sfd, hdr, 0, 4, 0);
  } finally {
    closeSync(sfd);
  }
  await pipeline(createReadStream(p.objectPath, { start: 8 + hdr.readUInt32BE(0) }), createInflateRaw(), async (src: AsyncIterable<Buffer>) => {
    for await (const chunk of src) writeAllSync(fd, chunk);
  });
  if (fsync) fsyncSync(fd);
}

function objectXattrs(ctx: Ctx, p: Probed): Xattrs {
  if (ctx.user) return [];
  if (p.xattrsLoaded) return p.meta.xattrs;
  return getXattrsSync(p.objectPath);
}

/** create_file_copy_from_input_at */
function copyOut(ctx: Ctx, p: Probed, dir: string, dest: string, name: string, mode: number): Promise<void> | undefined {
  const { meta } = p;
  const xattrs = objectXattrs(ctx, p);
  if ((meta.mode & S_IFMT) === S_IFLNK) return copySymlink(ctx, p, dest, name, xattrs);

  const finalMode = (ctx.user ? mode & ~0o6000 : mode) & 0o7777;
  const finish = (path: string) => {
    if (!ctx.user) {
      chownSync(path, meta.uid, meta.gid);
      if (xattrs.length) setXattrsSync(path, xattrs);
    }
    chmodSync(path, finalMode);
  };
  const excl = FS.O_WRONLY | FS.O_CREAT | FS.O_EXCL;

  if (ctx.overwrite === "none" || ctx.overwrite === "union-add") {
    const failed = (e: unknown) => {
      if (errnoOf(e) === "EEXIST" && ctx.overwrite === "union-add") return true;
      throw errnoError(errnoOf(e) === "EEXIST" ? "linkat" : "open", e);
    };
    const done = () => {
      finish(dest);
      ctx.stats.copied++;
    };
    let w;
    try {
      w = writePayload(ctx, p, dest, excl, ctx.fsync);
    } catch (e) {
      failed(e);
      return;
    }
    if (!w) {
      done();
      return;
    }
    return w.then(done, (e: unknown) => {
      failed(e);
    });
  }
  return copyUnion(ctx, p, dir, dest, finish, excl);
}

function copySymlink(ctx: Ctx, p: Probed, dest: string, name: string, xattrs: Xattrs): Promise<void> | undefined {
  const { meta } = p;
  const target = meta.symlinkTarget;
  const owned = () => {
    if (!ctx.user) {
      lchownSync(dest, meta.uid, meta.gid);
      if (xattrs.length) setXattrsSync(dest, xattrs);
    }
    ctx.stats.copied++;
  };
  try {
    symlinkSync(target, dest);
  } catch (e) {
    if (errnoOf(e) !== "EEXIST") throw errnoError("symlinkat", e);
    switch (ctx.overwrite) {
      case "none":
        throw errnoError("symlinkat", e);
      case "union":
        if (unchangedUnionSymlink(dest, target)) return;
        if (ctx.whiteouts) rmRf(dest);
        else {
          try {
            unlinkSync(dest);
          } catch (err) {
            if (errnoOf(err) !== "ENOENT") throw errnoError(`unlinkat(${name})`, err);
          }
        }
        try {
          symlinkSync(target, dest);
        } catch (err) {
          throw errnoError("symlinkat", err);
        }
        // ostree returns here without chown/xattrs (its union case falls through to union-add).
        ctx.stats.copied++;
        return;
      case "union-add":
        return;
      case "union-identical": {
        const st = lstatSync(dest);
        if (st.isSymbolicLink() && readlinkSync(dest) === target) return;
        throw errnoError("symlinkat", e);
      }
    }
  }
  owned();
}

/**
 * A union checkout replaces an existing symlink with a new one owned by us,
 * without xattrs. One that already is exactly that is left alone, so a union
 * over a checkout of the parent commit touches only what changed.
 */
function unchangedUnionSymlink(dest: string, target: string): boolean {
  const st = lstatSync(dest, { throwIfNoEntry: false });
  if (!st?.isSymbolicLink() || st.uid !== process.geteuid!() || st.gid !== process.getegid!()) return false;
  try {
    return readlinkSync(dest) === target && listAttributesSync(dest).length === 0;
  } catch {
    return false;
  }
}

/** Union modes: build under a temporary name in the same directory, then move it into place. */
async function copyUnion(ctx: Ctx, p: Probed, dir: string, dest: string, finish: (path: string) => void, excl: number): Promise<void> {
  if (ctx.overwrite === "union-identical") {
    let st;
    try {
      st = lstatSync(dest, { bigint: true });
    } catch (e) {
      if (errnoOf(e) !== "ENOENT") throw e;
    }
    if (st && (await checksumPath(dest, st, checksumFlags(ctx))) === p.checksum) return;
  }
  const tmp = join(dir, tempName(".ostree-checkout-"));
  try {
    await writePayload(ctx, p, tmp, excl, ctx.fsync);
    finish(tmp);
    if (ctx.overwrite === "union") {
      if (ctx.whiteouts) {
        rmRf(dest);
        linkSync(tmp, dest);
      } else {
        renameSync(tmp, dest);
      }
    } else {
      linkSync(tmp, dest);
    }
  } catch (e) {
    throw errnoError(errnoOf(e) === "EEXIST" ? "linkat" : "renameat", e);
  } finally {
    unlinkQuiet(tmp);
  }
  ctx.stats.copied++;
}
