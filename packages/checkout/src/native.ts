import { createRequire } from "node:module";
import { availableParallelism, constants } from "node:os";
import { join } from "node:path";
import { decodeDirTree, type DirMeta, type DirTree } from "@ostree-ts/objstore";
import { checkoutFile, childPath, dirMeta, finishDir, makeDirSync, normalizedDir, readTree, type CheckoutOptions, type Ctx } from "./checkout.js";
import { errnoError } from "./errors.js";
import { checkUniqueNames } from "./tree.js";

/*
 * A hardlink checkout in user mode through the optional C addon in native/
 * (built by node-gyp at install; README "Performance" says why): from a
 * bare-user repo (`-U`, with or without `-H`), or from an archive repo
 * through its uncompressed-objects-cache (`-U`; a cache miss is deferred and
 * the walk's checkoutFile fills the cache as it always does). This side walks the dirtrees, with
 * the same name checks as the JavaScript walk, makes the directories of the
 * top levels itself, and hands each subtree to the addon as soon as it is
 * read, so the walk overlaps the filesystem work; the addon makes the
 * directories, links the files and makes the symlinks, on a thread of its own
 * and then on this one. Every file it leaves ("deferred": xattrs, empty,
 * unreadable, odd symlink targets, any failed call) then goes through the
 * JavaScript walk's own checkoutFile, so copies and error messages are those
 * of the walk without the addon. Directory modes and mtimes go on last,
 * children first.
 */

interface Session {
  readonly __session: unique symbol;
}

interface Addon {
  /** With `cacheDir` the objects are an archive repo's, linked from that uncompressed-objects-cache. */
  start(threads: number, objectsDir: string, cacheDir?: string): Session;
  /** false once a mkdir has failed: the rest would be wasted. */
  push(session: Session, task: string): boolean;
  /** `deferred`: (checksum, destination) pairs, in the order pushed; `unfinished`: tasks (by push order) whose directories are left to finishDir. */
  finish(session: Session, cancel: boolean): { linked: number; symlinked: number; errno: number; deferred: string[]; unfinished: number[] };
  /** Reads dirtree `checksum` into `into`: its size; the size needed when larger (nothing read); -1 when the caller must read it itself. */
  read(session: Session, checksum: string, into: Uint8Array): number;
}

/** Directories shallower than this (root = 0) are made here; each deeper subtree is one task for the addon. */
const SPINE_DEPTH = 4;

let addon: Addon | null | undefined;

/** The addon, or undefined when it was not built (or does not load): then the JavaScript walk does everything. */
export function loadAddon(): Addon | undefined {
  if (addon === undefined) {
    try {
      // Through the package's own exports, so that bundles of this code (the CLI) find it too.
      addon = createRequire(import.meta.url)("@ostree-ts/checkout/native") as Addon;
    } catch {
      addon = null;
    }
  }
  return addon ?? undefined;
}

interface PlanDir {
  path: string;
  meta: DirMeta;
  didExist: boolean;
  /** The task that gives it its mode and mtime; undefined: finishDir here. */
  task?: number;
}

class Walk {
  /** Every directory, in pre-order. */
  readonly dirs: PlanDir[] = [];
  private stopped = false;
  private pushed = 0;
  private buf = new Uint8Array(64 << 10);

  constructor(
    private readonly ctx: Ctx,
    private readonly native: Addon,
    private readonly session: Session,
    /** The checkout's root, normalised. */
    private readonly root: string,
  ) {}

  /** ostree's path of `path` below the root (`/a/b`). */
  rel(path: string): string {
    const { root } = this;
    return `/${root === "." ? path : path.slice(root === "/" ? 1 : root.length + 1)}`;
  }

  /**
   * Pre-order. `task` holds the ops (`d PATH`: mkdir; `f CHECKSUM DEST`: a
   * file; `m PATH MODE`: mode and mtime) of the subtree being collected;
   * undefined in the top levels, whose directories are made and finished
   * here and whose files are one task per directory.
   */
  dir(base: string, tree: DirTree, depth: number, task: string[] | undefined): void {
    if (this.stopped) return;
    const { ctx } = this;
    if (!task && tree.files.length) {
      const files: string[] = [];
      for (const f of tree.files) files.push("f", f.checksum, childPath(base, f.name));
      this.push(files);
    } else if (task) {
      for (const f of tree.files) task.push("f", f.checksum, childPath(base, f.name));
    }
    for (const d of tree.dirs) {
      const path = childPath(base, d.name);
      const sub = this.tree(d.tree);
      const meta = dirMeta(ctx, d.meta);
      this.dirs.push({ path, meta, didExist: false });
      if (task) {
        task.push("d", path);
        ctx.stats.directories++;
        this.dir(path, sub, depth + 1, task);
      } else if (depth + 1 < SPINE_DEPTH) {
        makeDirSync(ctx, path, sub, meta, `${this.rel(path)}/`, false);
        this.dir(path, sub, depth + 1, undefined);
      } else {
        const first = this.dirs.length - 1;
        const t = ["d", path];
        ctx.stats.directories++;
        this.dir(path, sub, depth + 1, t);
        // Children first; with fsync (finishDir's business) all are left to finishDir.
        for (let j = this.dirs.length - 1; j >= first && !ctx.fsync; j--) {
          const d = this.dirs[j]!;
          t.push("m", d.path, String(d.meta.mode & ctx.dirMask));
          d.task = this.pushed;
        }
        this.push(t);
      }
    }
  }

  /**
   * readTree, with the bytes read by the addon into one reused buffer (a
   * decoded dirtree holds only strings); anything it could not read goes the
   * usual way (errors, core.parent).
   */
  tree(checksum: string): DirTree {
    let n = this.native.read(this.session, checksum, this.buf);
    if (n > this.buf.length) {
      this.buf = new Uint8Array(n);
      n = this.native.read(this.session, checksum, this.buf);
    }
    if (n < 0 || n > this.buf.length) return readTree(this.ctx, checksum);
    const tree = decodeDirTree(this.buf.subarray(0, n), checksum);
    checkUniqueNames(tree, checksum);
    return tree;
  }

  private push(ops: string[]): void {
    if (this.stopped) return;
    this.pushed++;
    ops.push("");
    if (!this.native.push(this.session, ops.join("\0"))) this.stopped = true;
  }
}

/**
 * The checkout through the addon; false (nothing done) when the addon is not
 * there. `destination` is made (or entered) by the JavaScript code, with its
 * checks on an existing root and across devices.
 */
export async function checkoutNative(ctx: Ctx, options: CheckoutOptions, destination: string, treeCsum: string, metaCsum: string): Promise<boolean> {
  const native = loadAddon();
  if (!native) return false;
  const rootTree = readTree(ctx, treeCsum);
  const rootMeta = dirMeta(ctx, metaCsum);
  const didExist = makeDirSync(ctx, destination, rootTree, rootMeta, "/", true);
  if (didExist === undefined) return true;
  const threads = options.threads ?? Math.min(2, availableParallelism());
  const session = native.start(threads, join(ctx.repo.path, "objects"), ctx.cache ? join(ctx.repo.path, "uncompressed-objects-cache") : undefined);
  const base = normalizedDir(destination);
  const walk = new Walk(ctx, native, session, base);
  walk.dirs.push({ path: destination, meta: rootMeta, didExist });
  try {
    walk.dir(base, rootTree, 0, undefined);
  } catch (e) {
    // Nothing may still be writing into the target once checkout has returned.
    native.finish(session, true);
    throw e;
  }
  const result = native.finish(session, false);
  if (result.errno !== 0) throw errnoError("mkdirat", { code: errnoName(result.errno) });
  ctx.stats.threads = threads > 1 ? 2 : 1;
  ctx.stats.hardlinked += result.linked;
  ctx.stats.copied += result.symlinked;

  const pending: Promise<void>[] = [];
  const { deferred } = result;
  for (let i = 0; i < deferred.length; i += 2) {
    const dest = deferred[i + 1]!;
    const slash = dest.lastIndexOf("/");
    const dir = slash < 0 ? "." : dest.slice(0, slash) || "/";
    const p = checkoutFile(ctx, dir, dest.slice(slash + 1), deferred[i]!, walk.rel(dest));
    if (!p) continue;
    if (!ctx.pool) {
      await p;
      continue;
    }
    p.catch(() => {});
    pending.push(p);
    // A cold archive cache defers every file: at most the pool's worth of payloads in memory, as in the walk.
    if (ctx.pool.full) await ctx.pool.room();
  }
  await Promise.all(pending);
  // Reverse pre-order: every directory after all of its descendants.
  const unfinished = new Set(result.unfinished);
  for (let j = walk.dirs.length - 1; j >= 0; j--) {
    const d = walk.dirs[j]!;
    if (d.task === undefined || unfinished.has(d.task)) finishDir(ctx, d.path, d.meta, d.didExist);
  }
  return true;
}

function errnoName(errno: number): string {
  for (const [name, n] of Object.entries(constants.errno)) if (n === errno) return name;
  return `errno ${errno}`;
}
