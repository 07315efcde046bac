import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import { availableParallelism, loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { Repo, type DirMeta } from "@ostree-ts/objstore";
import {
  checkoutDir,
  childPath,
  dirMeta,
  finishDir,
  makeCtx,
  makeDirSync,
  normalizedDir,
  readTree,
  startFiles,
  type CheckoutOptions,
  type CheckoutStats,
  type Ctx,
} from "./checkout.js";
import { CheckoutError, UnsafePathError } from "./errors.js";

/*
 * A checkout split between the calling thread and one worker thread. Node
 * spends several times ostree's CPU per file, and the slow calls of a
 * checkout (mkdir, symlink, inode allocation) block in the kernel; two threads
 * overlap both. The main thread makes the top SPINE_DEPTH levels of
 * directories, then both threads take whole subtrees (and the spine
 * directories' files) from one list, claimed through a shared counter, each
 * with its own synchronous walk. Spine directories get their mode and mtime
 * last, children before parents, as in the one-thread walk.
 */

/** Directories shallower than this (root = 0) are made by the main thread before the split; deeper ones belong to whoever claims them. */
const SPINE_DEPTH = 4;

/** Below this many subtrees under the spine, a worker's start-up (~50 ms CPU, ~18 MB) costs more than it saves. */
const MIN_SUBTREES = 16;

/** Marks workerData as ours, so loading this module in some other worker does nothing. */
const MARK = "ostree-ts-checkout-worker";

/** Shared Int32Array slots: the next unclaimed task; set once either thread has failed; the worker's state (STATE_*). */
const NEXT = 0;
const ABORT = 1;
const STATE = 2;
/** The worker has not started claiming tasks; it is working; the main thread did everything and will not wait for it. */
const STATE_LOADING = 0;
const STATE_WORKING = 1;
const STATE_DISMISSED = 2;

type Task =
  | { kind: "tree"; path: string; tree: string; meta: string; rel: string }
  | { kind: "files"; path: string; tree: string; rel: string };

interface WorkerInput {
  [MARK]: true;
  repoPath: string;
  commit: string;
  options: CheckoutOptions;
  shared: SharedArrayBuffer;
}

type WorkerResult = { stats: CheckoutStats } | { error: { name: string; message: string; code?: string } };

/** The worker runs this module; from TypeScript sources (tests through vitest) there is no JavaScript for it to load. */
function workerScript(): string | undefined {
  const url = import.meta.url;
  return url.startsWith("file:") && /\.m?js$/.test(url) ? fileURLToPath(url) : undefined;
}

interface SpineDir {
  path: string;
  meta: DirMeta;
  didExist: boolean;
}

/**
 * The two-thread walk, when `options.threads` allows it and the tree is large
 * enough; false (nothing done) otherwise, for the caller's one-thread walk.
 */
export async function checkoutParallel(ctx: Ctx, options: CheckoutOptions, destination: string, treeCsum: string, metaCsum: string): Promise<boolean> {
  const script = workerScript();
  if (!script) return false;
  // A second thread wins while the CPUs are not saturated (measured: still at load 4–6 on 2 CPUs, not at 7–9,
  // README); a bench's own previous steps already lift the 1-min average to about the CPU count.
  if (options.threads !== 2 && (availableParallelism() < 2 || loadavg()[0]! >= 3 * availableParallelism())) return false;
  const rootTree = readTree(ctx, treeCsum);
  // Count the subtrees below the spine first: reading dirtrees has no effect on the target.
  if (options.threads !== 2 && countFrontier(ctx, rootTree, 0) < MIN_SUBTREES) return false;

  const shared = new SharedArrayBuffer(12);
  const flags = new Int32Array(shared);
  const input: WorkerInput = { [MARK]: true, repoPath: ctx.repo.path, commit: ctx.stats.commit, options: workerOptions(options), shared };
  // Started before the spine is made, so its start-up overlaps the main thread's mkdirs.
  const worker = new Worker(script, { workerData: input });
  const result = workerResult(worker);
  result.catch(() => {});

  const spine: SpineDir[] = [];
  const tasks: Task[] = [];
  let posted = false;
  let failure: unknown;
  try {
    const rootMeta = dirMeta(ctx, metaCsum);
    const didExist = makeDirSync(ctx, destination, rootTree, rootMeta, "/", true);
    if (didExist !== undefined) {
      spine.push({ path: destination, meta: rootMeta, didExist });
      makeSpine(ctx, normalizedDir(destination), rootTree, treeCsum, spine, tasks);
    }
    worker.postMessage(tasks);
    posted = true;
    await runTasks(ctx, tasks, flags);
  } catch (e) {
    failure = e;
    Atomics.store(flags, ABORT, 1);
    if (!posted) worker.postMessage([]);
  }
  let theirs: WorkerResult = { stats: { commit: "", hardlinked: 0, copied: 0, directories: 0, skipped: 0, threads: 0 } };
  // Forced two threads (threads: 2) waits for the worker, so that it always takes part.
  if (options.threads !== 2 && Atomics.compareExchange(flags, STATE, STATE_LOADING, STATE_DISMISSED) === STATE_LOADING) {
    // Still loading: it will claim nothing and write nothing, so there is nothing to wait for.
    void worker.terminate();
  } else {
    try {
      theirs = await result;
    } catch (e) {
      theirs = { error: { name: "Error", message: (e as Error).message } };
    }
  }
  await ctx.pool?.idle();
  if (failure !== undefined) throw failure;
  if ("error" in theirs) throw rebuildError(theirs.error);
  for (const k of ["hardlinked", "copied", "directories", "skipped", "threads"] as const) ctx.stats[k] += theirs.stats[k];
  // Children before parents: each spine directory follows all of its descendants.
  for (let i = spine.length - 1; i >= 0; i--) finishDir(ctx, spine[i]!.path, spine[i]!.meta, spine[i]!.didExist);
  return true;
}

/** Subtrees directly below the spine (stops counting once there are enough). */
function countFrontier(ctx: Ctx, tree: ReturnType<typeof readTree>, depth: number): number {
  if (depth + 1 >= SPINE_DEPTH) return tree.dirs.length;
  let n = 0;
  for (const d of tree.dirs) {
    n += countFrontier(ctx, readTree(ctx, d.tree), depth + 1);
    if (n >= MIN_SUBTREES) break;
  }
  return n;
}

/** Breadth-first: directories above SPINE_DEPTH are made here; their files and deeper subtrees become tasks. */
function makeSpine(ctx: Ctx, base: string, rootTree: ReturnType<typeof readTree>, rootCsum: string, spine: SpineDir[], tasks: Task[]): void {
  const files: Task[] = [];
  let level = [{ base, tree: rootTree, csum: rootCsum, rel: "/" }];
  for (let depth = 0; level.length; depth++) {
    const next: typeof level = [];
    for (const dir of level) {
      if (dir.tree.files.length) files.push({ kind: "files", path: dir.base, tree: dir.csum, rel: dir.rel });
      for (const d of dir.tree.dirs) {
        const path = childPath(dir.base, d.name);
        const rel = `${dir.rel}${d.name}/`;
        if (depth + 1 >= SPINE_DEPTH) {
          tasks.push({ kind: "tree", path, tree: d.tree, meta: d.meta, rel });
          continue;
        }
        const tree = readTree(ctx, d.tree);
        const meta = dirMeta(ctx, d.meta);
        const didExist = makeDirSync(ctx, path, tree, meta, rel, false);
        if (didExist === undefined) continue;
        spine.push({ path, meta, didExist });
        next.push({ base: path, tree, csum: d.tree, rel });
      }
    }
    level = next;
  }
  // Subtrees first (in tree order); the spine's files, many small tasks, even out the end.
  tasks.push(...files);
}

/** Claim and run tasks until none is left or the other thread has failed. */
async function runTasks(ctx: Ctx, tasks: Task[], flags: Int32Array): Promise<void> {
  for (;;) {
    if (Atomics.load(flags, ABORT)) return;
    const i = Atomics.add(flags, NEXT, 1);
    if (i >= tasks.length) return;
    const t = tasks[i]!;
    if (t.kind === "tree") {
      await checkoutDir(ctx, t.path, t.tree, t.meta, t.rel, false);
    } else {
      await Promise.all(await startFiles(ctx, t.path, readTree(ctx, t.tree), t.rel));
    }
  }
}

/** What the worker needs to rebuild the walk's state: options minus callbacks and caller-owned objects. */
function workerOptions(o: CheckoutOptions): CheckoutOptions {
  const { filter: _f, devinoCache: _d, skipList, ...rest } = o;
  return skipList ? { ...rest, skipList: [...skipList] } : rest;
}

function workerResult(worker: Worker): Promise<WorkerResult> {
  return new Promise((resolve, reject) => {
    worker.once("message", (m: WorkerResult) => resolve(m));
    worker.once("error", reject);
    worker.once("exit", (code) => reject(new CheckoutError(`checkout worker exited (code ${code}) before reporting`)));
  });
}

/** Errors cross threads as plain data; the message (what the CLI prints) and errno code survive. */
function rebuildError(e: { name: string; message: string; code?: string }): Error {
  if (e.name === "UnsafePathError") return new UnsafePathError(e.message, e.code);
  return new CheckoutError(e.message, e.code);
}

async function runWorker(input: WorkerInput, port: NonNullable<typeof parentPort>): Promise<void> {
  const flags = new Int32Array(input.shared);
  const tasks = await new Promise<Task[]>((resolve) => port.once("message", resolve));
  if (Atomics.compareExchange(flags, STATE, STATE_LOADING, STATE_WORKING) !== STATE_LOADING) {
    port.close();
    return;
  }
  let ctx: Ctx | undefined;
  let result: WorkerResult;
  try {
    const repo = await Repo.open(input.repoPath);
    await repo.parentRepo();
    ctx = makeCtx(repo, input.commit, input.options);
    await runTasks(ctx, tasks, flags);
    result = { stats: ctx.stats };
  } catch (e) {
    Atomics.store(flags, ABORT, 1);
    const err = e as Error & { code?: unknown };
    result = { error: { name: err?.name ?? "Error", message: err?.message ?? String(e), code: typeof err?.code === "string" ? err.code : undefined } };
  }
  await ctx?.pool?.idle();
  port.postMessage(result);
  port.close();
}

if (!isMainThread && parentPort && (workerData as Partial<WorkerInput> | null)?.[MARK]) {
  void runWorker(workerData as WorkerInput, parentPort);
}
