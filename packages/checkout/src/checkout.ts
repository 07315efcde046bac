import { constants as FS } from "node:fs";
import { chmod, chown, copyFile, lchown, link, lstat, mkdir, open, readFile, readlink, rename, stat, symlink, unlink, utimes } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { createInflateRaw, inflateRaw as inflateRawCb } from "node:zlib";
import { pipeline } from "node:stream/promises";
import { createReadStream } from "node:fs";
import { DEFAULT_CONCURRENCY, S_IFLNK, S_IFMT, S_IFREG, type DirMeta, type Repo, type Xattrs } from "@ostree-ts/objstore";
import { DevInoCache } from "./devino.js";
import { CheckoutError, errnoError, errnoOf, UnsafePathError } from "./errors.js";
import { checksumPath, getXattrs, Limiter, rmRf, setXattrs, tempName } from "./fsutil.js";
import { checkUniqueNames, probeFile, resolveCommit, resolveSubpath, validateName, type ProbedFile } from "./tree.js";

const inflateRaw = promisify(inflateRawCb);

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
  /** Concurrent filesystem operations (default: objstore's DEFAULT_CONCURRENCY). */
  concurrency?: number;
}

export interface CheckoutStats {
  commit: string;
  hardlinked: number;
  copied: number;
  directories: number;
  skipped: number;
}

type LinkResult = "not-supported" | "skip-existed" | "linked";

interface Ctx {
  repo: Repo;
  user: boolean;
  overwrite: OverwriteMode;
  whiteouts: boolean;
  forceCopy: boolean;
  requireHardlinks: boolean;
  dirMask: number;
  filter: ((path: string, info: FilterInfo) => boolean) | undefined;
  cache: boolean;
  fsync: boolean;
  cacheFsync: boolean;
  devino: DevInoCache | undefined;
  limiter: Limiter;
  repoDev: bigint;
  disableXattrs: boolean;
  error: unknown;
  stats: CheckoutStats;
}

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
 */
export async function checkout(repo: Repo, rev: string, destination: string, options: CheckoutOptions = {}): Promise<CheckoutStats> {
  const overwrite = normalizeOverwrite(options);
  if (options.requireHardlinks && options.forceCopy) throw new CheckoutError("Cannot specify both --require-hardlinks and --force-copy");
  if (overwrite === "union-identical" && !options.requireHardlinks) throw new CheckoutError("--union-identical requires --require-hardlinks");
  const commit = await resolveCommit(repo, rev);
  const resolved = await resolveSubpath(repo, commit, options.subpath);
  const skip = options.skipList ? new Set(options.skipList) : undefined;
  const userFilter = options.filter;
  const filter =
    skip || userFilter
      ? (path: string, info: FilterInfo) => !(skip?.has(path) ?? false) && (userFilter ? userFilter(path, info) : true)
      : undefined;
  const ctx: Ctx = {
    repo,
    user: !!options.userMode || repo.mode === "bare-user-only",
    overwrite,
    whiteouts: !!options.whiteouts,
    forceCopy: !!options.forceCopy,
    requireHardlinks: !!options.requireHardlinks,
    dirMask: repo.mode === "bare-user-only" || options.bareuseronlyDirs ? 0o775 : 0o7777,
    filter,
    cache: !!options.uncompressedCache && repo.isArchive && repo.config.getBoolean("core", "enable-uncompressed-cache", true),
    fsync: !!options.fsync,
    cacheFsync: !options.disableFsync && repo.config.getBoolean("core", "fsync", true),
    devino: options.devinoCache,
    limiter: new Limiter(Math.max(1, options.concurrency ?? DEFAULT_CONCURRENCY)),
    repoDev: (await stat(repo.path, { bigint: true })).dev,
    disableXattrs: repo.config.getBoolean("core", "disable-xattrs", false),
    error: undefined,
    stats: { commit, hardlinked: 0, copied: 0, directories: 0, skipped: 0 },
  };

  if (resolved.kind === "file") {
    // ostree makes the destination directory (mode 0700) and puts the file in it, unfiltered.
    if (destination !== ".") {
      try {
        await mkdir(destination, 0o700);
      } catch (e) {
        if (errnoOf(e) !== "EEXIST") throw errnoError("mkdirat", e);
      }
    }
    ctx.filter = undefined;
    await checkoutFile(ctx, destination, resolved.name, resolved.checksum, `/${resolved.name}`);
    return ctx.stats;
  }

  let root: { done: Promise<void> } | null = null;
  try {
    root = await dispatchDir(ctx, destination, resolved.tree, resolved.meta, "/", true);
  } catch (e) {
    ctx.error ??= e;
  }
  if (root) await root.done;
  if (ctx.error !== undefined) throw ctx.error;
  return ctx.stats;
}

function record(ctx: Ctx, e: unknown): void {
  ctx.error ??= e;
}

/**
 * Create one directory and start its entries; resolves once everything below
 * is dispatched, with `done` settling after the directory's own metadata is
 * applied (after all its contents, as ostree does).
 */
async function dispatchDir(
  ctx: Ctx,
  path: string,
  treeCsum: string,
  metaCsum: string,
  rel: string,
  isRoot: boolean,
): Promise<{ done: Promise<void> } | null> {
  const { repo } = ctx;
  const [tree, meta] = await Promise.all([repo.readDirTree(treeCsum), repo.readDirMeta(metaCsum)]);
  checkUniqueNames(tree, treeCsum);
  if (ctx.filter && !ctx.filter(rel, { mode: meta.mode, uid: meta.uid, gid: meta.gid })) {
    ctx.stats.skipped++;
    return null;
  }
  if (ctx.whiteouts && tree.files.some((f) => f.name === ".wh..wh..opq")) await rmRf(path);

  let didExist = false;
  try {
    await mkdir(path, 0o700);
  } catch (e) {
    if (errnoOf(e) !== "EEXIST" || ctx.overwrite === "none") throw errnoError("mkdirat", e);
    didExist = true;
    // The root may be a user-supplied symlink to a directory; below it, a symlink is hostile.
    const st = isRoot ? await stat(path) : await lstat(path);
    if (!st.isDirectory()) {
      throw new UnsafePathError(
        `Refusing to check out directory ${rel} through ${path}: it exists and is ${st.isSymbolicLink() ? "a symbolic link" : "not a directory"}`,
      );
    }
  }
  ctx.stats.directories++;
  if (ctx.requireHardlinks && (isRoot || didExist)) {
    const dev = (await stat(path, { bigint: true })).dev;
    if (dev !== ctx.repoDev) throw new CheckoutError(`Unable to do hardlink checkout across devices (src=${ctx.repoDev} destination=${dev})`, "EXDEV");
  }
  if (!didExist && !ctx.user && meta.xattrs.length) await setXattrs(path, meta.xattrs);

  const tasks: Promise<void>[] = [];
  try {
    // With whiteouts, a directory holding `.wh.` entries is processed in order, as ostree does.
    const ordered = ctx.whiteouts && tree.files.some((f) => f.name.startsWith(".wh."));
    for (const f of tree.files) {
      if (ctx.error !== undefined) break;
      await ctx.limiter.acquire();
      const t = checkoutFile(ctx, path, f.name, f.checksum, rel + f.name).then(
        () => ctx.limiter.release(),
        (e: unknown) => {
          ctx.limiter.release();
          record(ctx, e);
        },
      );
      if (ordered) await t;
      else tasks.push(t);
    }
    for (const d of tree.dirs) {
      if (ctx.error !== undefined) break;
      const child = await dispatchDir(ctx, join(path, d.name), d.tree, d.meta, `${rel}${d.name}/`, false);
      if (child) tasks.push(child.done);
    }
  } catch (e) {
    record(ctx, e);
  }
  const done = Promise.all(tasks).then(async () => {
    if (ctx.error !== undefined) return;
    try {
      await finishDir(ctx, path, meta, didExist);
    } catch (e) {
      record(ctx, e);
    }
  });
  return { done };
}

/** Mode, owner and mtime go on last so nobody can use a half-built directory. */
async function finishDir(ctx: Ctx, path: string, meta: DirMeta, didExist: boolean): Promise<void> {
  if (didExist) return;
  try {
    await chmod(path, meta.mode & ctx.dirMask);
  } catch (e) {
    throw errnoError("fchmod", e);
  }
  if (!ctx.user) {
    try {
      await chown(path, meta.uid, meta.gid);
    } catch (e) {
      throw errnoError(`fchown(${path})`, e);
    }
  }
  // OSTREE_TIMESTAMP (0) so every checkout has identical directory mtimes; copies (-C) keep theirs.
  if (!ctx.forceCopy) await utimes(path, Date.now() / 1000, 0);
  if (ctx.fsync) {
    const fh = await open(path, "r");
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  }
}

function loosePath(checksum: string): string {
  return `${checksum.slice(0, 2)}/${checksum.slice(2)}.file`;
}

async function checkoutFile(ctx: Ctx, dir: string, name: string, checksum: string, rel: string): Promise<void> {
  validateName(name, dir);
  const { repo } = ctx;
  const dest = join(dir, name);
  const p = await probeFile(repo, checksum);
  if (ctx.filter && !ctx.filter(rel, { mode: p.meta.mode, uid: p.meta.uid, gid: p.meta.gid })) {
    ctx.stats.skipped++;
    return;
  }
  const isSymlink = (p.meta.mode & S_IFMT) === S_IFLNK;
  if (ctx.whiteouts && !isSymlink && name.startsWith(".wh.")) {
    const target = name.slice(4);
    if (!target) throw new CheckoutError(`Invalid empty whiteout '${target}'`);
    validateName(target, `whiteout ${rel}`);
    await rmRf(join(dir, target));
    return;
  }
  const zerosized = !isSymlink && p.size === 0;
  const unreadable = ctx.user && !isSymlink && (p.meta.mode & 0o400) === 0;
  let result: LinkResult = "not-supported";
  const cachePath = join(repo.path, "uncompressed-objects-cache", loosePath(checksum));

  if (!zerosized && !unreadable && !ctx.forceCopy) {
    const repoUser = repo.mode === "bare-user" || repo.mode === "bare-user-only";
    const hardlinkable = (repo.mode === "bare" && !ctx.user) || (repoUser && ctx.user);
    const bareUserSymlink = repoUser && isSymlink;
    if (ctx.requireHardlinks && !hardlinkable && !bareUserSymlink) {
      throw new CheckoutError(
        repoUser ? "User repository mode requires user checkout mode to hardlink" : "Bare repository mode cannot hardlink in user checkout mode",
      );
    }
    if (hardlinkable && !bareUserSymlink) result = await hardlink(ctx, p.objectPath, dest, name, checksum, true);
    else if (ctx.cache && ctx.user) result = await hardlink(ctx, cachePath, dest, name, checksum, true);
  }

  if (result === "not-supported" && ctx.cache && ctx.user && !isSymlink && !zerosized && !unreadable) {
    try {
      await unpackToCache(ctx, p, cachePath);
    } catch (e) {
      throw prefixError(`Unpacking loose object ${checksum}`, e);
    }
    try {
      result = await hardlink(ctx, cachePath, dest, name, checksum, false);
    } catch (e) {
      throw prefixError(`Using new cached uncompressed hardlink of ${checksum} to ${name}`, e);
    }
  }

  if (result === "not-supported") {
    try {
      await copyOut(ctx, p, dir, dest, name, unreadable ? p.meta.mode | 0o400 : p.meta.mode);
    } catch (e) {
      throw prefixError(`Copy checkout of ${checksum} to ${name}`, e);
    }
  }
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

/** checkout_file_hardlink: link `src` to `dest`, resolving an existing `dest` per the overwrite mode. */
async function hardlink(ctx: Ctx, src: string, dest: string, name: string, checksum: string, allowNoent: boolean): Promise<LinkResult> {
  try {
    await link(src, dest);
    await linked(ctx, dest, checksum);
    return "linked";
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
      case "union-identical": {
        const [s, d] = await Promise.all([lstat(src, { bigint: true }), lstat(dest, { bigint: true })]);
        let identical = s.dev === d.dev && s.ino === d.ino;
        if (!identical && stbufEqual(s, d)) identical = (await checksumPath(dest, d, checksumFlags(ctx))) === checksum;
        if (identical) return "skip-existed";
        if (ctx.overwrite === "union-identical") throw errnoError(`Hardlinking ${loosePath(checksum)} to ${name}`, e);
        const tmp = join(ctx.repo.tmpDir, tempName("checkout-union-"));
        await link(src, tmp);
        try {
          if (ctx.whiteouts) await rmRf(dest);
          await rename(tmp, dest);
        } catch (err) {
          await unlink(tmp).catch(() => undefined);
          throw errnoError(`renameat(${name})`, err);
        }
        await linked(ctx, dest, checksum);
        return "linked";
      }
    }
  }
}

function checksumFlags(ctx: Ctx): { ignoreXattrs: boolean; canonical: boolean } {
  const userOnly = ctx.repo.mode === "bare-user-only";
  return { ignoreXattrs: ctx.disableXattrs || userOnly, canonical: userOnly };
}

async function linked(ctx: Ctx, dest: string, checksum: string): Promise<void> {
  ctx.stats.hardlinked++;
  if (ctx.devino) {
    const st = await lstat(dest, { bigint: true });
    ctx.devino.set(st.dev, st.ino, checksum);
  }
}

/** The legacy archive-mode cache: an uncompressed copy (setuid/setgid dropped) that user checkouts hardlink. */
async function unpackToCache(ctx: Ctx, p: ProbedFile, cachePath: string): Promise<void> {
  const tmp = join(ctx.repo.tmpDir, tempName("tmpcache-"));
  await writePayload(ctx, p, tmp, FS.O_WRONLY | FS.O_CREAT | FS.O_EXCL, ctx.cacheFsync);
  try {
    await chmod(tmp, p.meta.mode & 0o7777 & ~0o6000);
    await mkdir(join(cachePath, ".."), { recursive: true, mode: 0o775 });
    try {
      await link(tmp, cachePath);
    } catch (e) {
      if (errnoOf(e) !== "EEXIST") throw e;
    }
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

/** Write a regular file's payload to a new file at `path` (created with `flags`). */
async function writePayload(ctx: Ctx, p: ProbedFile, path: string, flags: number, fsync: boolean): Promise<void> {
  const { repo } = ctx;
  if (!repo.isArchive && p.size > 0 && !fsync) {
    // copy_file_range (or a reflink) straight from the object.
    await copyFile(p.objectPath, path, flags & FS.O_EXCL ? FS.COPYFILE_EXCL : 0);
    return;
  }
  const fh = await open(path, flags, 0o600);
  // A plain async sink: FileHandle write streams with autoClose:false never emit 'close', stalling pipeline().
  const sink = async (src: AsyncIterable<Buffer>) => {
    for await (const chunk of src) await fh.write(chunk);
  };
  try {
    if (p.size > 0) {
      if (!repo.isArchive) {
        await pipeline(createReadStream(p.objectPath), sink);
      } else if (p.size <= 1 << 20) {
        const raw = await readFile(p.objectPath);
        const off = 8 + raw.readUInt32BE(0);
        await fh.write(await inflateRaw(raw.subarray(off)));
      } else {
        const hdr = Buffer.alloc(4);
        const src = await open(p.objectPath, "r");
        try {
          await src.read(hdr, 0, 4, 0);
        } finally {
          await src.close();
        }
        await pipeline(createReadStream(p.objectPath, { start: 8 + hdr.readUInt32BE(0) }), createInflateRaw(), sink);
      }
    }
    if (fsync) await fh.sync();
  } finally {
    await fh.close();
  }
}

async function objectXattrs(ctx: Ctx, p: ProbedFile): Promise<Xattrs> {
  if (ctx.user) return [];
  if (p.xattrsLoaded) return p.meta.xattrs;
  return getXattrs(p.objectPath);
}

/** create_file_copy_from_input_at */
async function copyOut(ctx: Ctx, p: ProbedFile, dir: string, dest: string, name: string, mode: number): Promise<void> {
  const { meta } = p;
  const xattrs = await objectXattrs(ctx, p);
  if ((meta.mode & S_IFMT) === S_IFLNK) {
    const target = meta.symlinkTarget;
    try {
      await symlink(target, dest);
    } catch (e) {
      if (errnoOf(e) !== "EEXIST") throw errnoError("symlinkat", e);
      switch (ctx.overwrite) {
        case "none":
          throw errnoError("symlinkat", e);
        case "union":
          if (ctx.whiteouts) await rmRf(dest);
          else {
            try {
              await unlink(dest);
            } catch (err) {
              if (errnoOf(err) !== "ENOENT") throw errnoError(`unlinkat(${name})`, err);
            }
          }
          try {
            await symlink(target, dest);
          } catch (err) {
            throw errnoError("symlinkat", err);
          }
          // ostree returns here without chown/xattrs (its union case falls through to union-add).
          ctx.stats.copied++;
          return;
        case "union-add":
          return;
        case "union-identical": {
          const st = await lstat(dest);
          if (st.isSymbolicLink() && (await readlink(dest)) === target) return;
          throw errnoError("symlinkat", e);
        }
      }
    }
    if (!ctx.user) {
      await lchown(dest, meta.uid, meta.gid);
      if (xattrs.length) await setXattrs(dest, xattrs);
    }
    ctx.stats.copied++;
    return;
  }

  const finalMode = (ctx.user ? mode & ~0o6000 : mode) & 0o7777;
  const finish = async (path: string) => {
    if (!ctx.user) {
      await chown(path, meta.uid, meta.gid);
      if (xattrs.length) await setXattrs(path, xattrs);
    }
    await chmod(path, finalMode);
  };
  const excl = FS.O_WRONLY | FS.O_CREAT | FS.O_EXCL;

  if (ctx.overwrite === "none" || ctx.overwrite === "union-add") {
    try {
      await writePayload(ctx, p, dest, excl, ctx.fsync);
    } catch (e) {
      if (errnoOf(e) === "EEXIST" && ctx.overwrite === "union-add") return;
      throw errnoError(errnoOf(e) === "EEXIST" ? "linkat" : "open", e);
    }
    await finish(dest);
    ctx.stats.copied++;
    return;
  }

  if (ctx.overwrite === "union-identical") {
    let st;
    try {
      st = await lstat(dest, { bigint: true });
    } catch (e) {
      if (errnoOf(e) !== "ENOENT") throw e;
    }
    if (st && (await checksumPath(dest, st, checksumFlags(ctx))) === p.checksum) return;
  }

  // Union modes: build under a temporary name in the same directory, then move it into place.
  const tmp = join(dir, tempName(".ostree-checkout-"));
  try {
    await writePayload(ctx, p, tmp, excl, ctx.fsync);
    await finish(tmp);
    if (ctx.overwrite === "union") {
      if (ctx.whiteouts) {
        await rmRf(dest);
        await link(tmp, dest);
      } else {
        await rename(tmp, dest);
      }
    } else {
      await link(tmp, dest);
    }
  } catch (e) {
    throw errnoError(errnoOf(e) === "EEXIST" ? "linkat" : "renameat", e);
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
  ctx.stats.copied++;
}
