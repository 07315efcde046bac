import { createRequire } from "node:module";
import { availableParallelism, constants } from "node:os";
import type { DirMeta, DirTree } from "@ostree-ts/objstore";
import { checkoutFile, childPath, dirMeta, finishDir, makeDirSync, normalizedDir, readTree, type CheckoutOptions, type Ctx } from "./checkout.js";
import { errnoError } from "./errors.js";
import { contentPath } from "./probe.js";

/*
 * A hardlink checkout from a bare-user repo in user mode (`-U`, with or
 * without `-H`) through the optional C addon in native/ (built by node-gyp at
 * install; README "Performance" says why). This side walks the dirtrees, with
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
  start(threads: number): Session;
  /** false once a mkdir has failed: the rest would be wasted. */
  push(session: Session, task: string, files: number): boolean;
  finish(session: Session, cancel: boolean): { status: Uint8Array; errno: number };
}

/** Per-file results of the addon (native/checkout_native.c); 0 is "not reached". */
const LINKED = 1;
const SYMLINKED = 2;
const DEFERRED = 3;

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
  rel: string;
  meta: DirMeta;
  didExist: boolean;
}

/** A task's ops, `d PATH` (mkdir) and `f OBJECT DEST` (one file), and the directories whose files they name, in order. */
interface Task {
  ops: string[];
  files: Array<{ dir: PlanDir; files: DirTree["files"] }>;
  count: number;
}

class Walk {
  /** Every directory, in pre-order. */
  readonly dirs: PlanDir[] = [];
  /** In the order pushed: the addon's results follow it. */
  readonly tasks: Task[] = [];
  private stopped = false;

  constructor(
    private readonly ctx: Ctx,
    private readonly native: Addon,
    private readonly session: Session,
  ) {}

  /** Pre-order; `task` is the subtree's, undefined in the top levels (made here, their files one task per directory). */
  dir(dir: PlanDir, base: string, tree: DirTree, depth: number, task: Task | undefined): void {
    if (this.stopped) return;
    const { ctx } = this;
    if (!task && tree.files.length) {
      const files: Task = { ops: [], files: [], count: 0 };
      this.files(files, dir, base, tree);
      this.push(files);
    } else if (task) {
      this.files(task, dir, base, tree);
    }
    for (const d of tree.dirs) {
      const path = childPath(base, d.name);
      const rel = `${dir.rel}${d.name}/`;
      const sub = readTree(ctx, d.tree);
      const meta = dirMeta(ctx, d.meta);
      const child: PlanDir = { path, rel, meta, didExist: false };
      this.dirs.push(child);
      if (task) {
        task.ops.push("d", path);
        ctx.stats.directories++;
        this.dir(child, path, sub, depth + 1, task);
      } else if (depth + 1 < SPINE_DEPTH) {
        makeDirSync(ctx, path, sub, meta, rel, false);
        this.dir(child, path, sub, depth + 1, undefined);
      } else {
        const t: Task = { ops: ["d", path], files: [], count: 0 };
        ctx.stats.directories++;
        this.dir(child, path, sub, depth + 1, t);
        this.push(t);
      }
    }
  }

  private files(task: Task, dir: PlanDir, base: string, tree: DirTree): void {
    if (!tree.files.length) return;
    task.files.push({ dir, files: tree.files });
    task.count += tree.files.length;
    for (const f of tree.files) task.ops.push("f", contentPath(this.ctx.repo, f.checksum), childPath(base, f.name));
  }

  private push(task: Task): void {
    if (this.stopped) return;
    this.tasks.push(task);
    task.ops.push("");
    if (!this.native.push(this.session, task.ops.join("\0"), task.count)) this.stopped = true;
    task.ops = [];
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
  const root: PlanDir = { path: destination, rel: "/", meta: rootMeta, didExist };

  const threads = options.threads ?? Math.min(2, availableParallelism());
  const session = native.start(threads);
  const walk = new Walk(ctx, native, session);
  walk.dirs.push(root);
  try {
    walk.dir(root, normalizedDir(destination), rootTree, 0, undefined);
  } catch (e) {
    // Nothing may still be writing into the target once checkout has returned.
    native.finish(session, true);
    throw e;
  }
  const result = native.finish(session, false);
  if (result.errno !== 0) throw errnoError("mkdirat", { code: errnoName(result.errno) });
  ctx.stats.threads = threads > 1 ? 2 : 1;

  const pending: Promise<void>[] = [];
  const { status } = result;
  let i = 0;
  for (const t of walk.tasks) {
    for (const { dir, files } of t.files) {
      for (const f of files) {
        const s = status[i++];
        if (s === LINKED) ctx.stats.hardlinked++;
        else if (s === SYMLINKED) ctx.stats.copied++;
        else if (s === DEFERRED) {
          const p = checkoutFile(ctx, normalizedDir(dir.path), f.name, f.checksum, dir.rel + f.name);
          if (p) {
            p.catch(() => {});
            pending.push(p);
          }
        }
      }
    }
  }
  await Promise.all(pending);
  // Reverse pre-order: every directory after all of its descendants.
  for (let j = walk.dirs.length - 1; j >= 0; j--) finishDir(ctx, walk.dirs[j]!.path, walk.dirs[j]!.meta, walk.dirs[j]!.didExist);
  return true;
}

function errnoName(errno: number): string {
  for (const [name, n] of Object.entries(constants.errno)) if (n === errno) return name;
  return `errno ${errno}`;
}
