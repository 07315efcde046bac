/**
 * bsdiff on worker threads, within a memory budget.
 *
 * The worker's code is rebuilt from the source text of the matching loop and
 * its helpers (`Function.prototype.toString`), so it works unchanged from
 * TypeScript sources under vitest, from `tsc` output and inside a one-file
 * esbuild bundle (where no separate worker file exists). Names come from the
 * functions themselves, so a bundler's renaming stays consistent. If a worker
 * cannot start, jobs run on the calling thread.
 *
 * Memory: a job is admitted when the estimated working sets of the running
 * jobs (bsdiffMemoryEstimate + both inputs, copied to the worker) fit the
 * budget; a job larger than the whole budget runs alone. Each worker keeps
 * its largest suffix array (and suffix keys) for the next job (BsdiffScratch),
 * so between jobs a worker holds at most what its largest admitted job used.
 */
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { bsdiffCore, bsdiffMemoryEstimate, prefixBuckets, search, Sink, suffixKeys, writeOfft } from "./bsdiff.js";
import { DeltaError } from "./errors.js";
import { bucketBounds, induce, sais } from "./sais.js";

function workerSource(): string {
  const fns = [bucketBounds, induce, sais, writeOfft, prefixBuckets, suffixKeys, search, Sink, bsdiffCore];
  // `const name = (…)` works for declarations and for the anonymous `class {…}` a bundler may emit.
  const text = fns.map((f) => `const ${f.name} = (${f.toString()});`).join("\n");
  // Cross-module calls compiled as namespace accesses (vite-node's `__vite_ssr_import_1__.sais`)
  // resolve to the same functions here.
  const namespaces = [...new Set(text.match(/\b__vite_ssr_import_\d+__\b/g) ?? [])];
  const table = `{ ${fns.map((f) => `${JSON.stringify(f.name)}: ${f.name}`).join(", ")} }`;
  return `"use strict";
const { parentPort } = require("node:worker_threads");
${text}
${namespaces.map((n) => `const ${n} = ${table};`).join("\n")}
const scratch = { I: new Int32Array(0), keys: new Uint16Array(0) };
parentPort.on("message", ({ id, oldBuf, newBuf }) => {
  try {
    const patch = ${bsdiffCore.name}(oldBuf, newBuf, scratch);
    // The view (with its ≤ 1/16 slack) is transferred as is rather than trimmed by a copy.
    const out = patch.byteOffset === 0 ? patch : patch.slice();
    parentPort.postMessage({ id, patch: out }, [out.buffer]);
  } catch (e) {
    parentPort.postMessage({ id, error: String(e && e.stack || e) });
  }
});`;
}

/** A worker died while holding a job's transferred inputs; the caller must supply them again. */
export class BsdiffWorkerLostError extends DeltaError {
  override name = "BsdiffWorkerLostError";
}

/** `b` itself when it alone spans its ArrayBuffer (so the buffer can be transferred), else a copy. */
function ownBuffer(b: Uint8Array): Uint8Array {
  return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && b.buffer instanceof ArrayBuffer ? b : b.slice();
}

interface Job {
  id: number;
  oldBuf: Uint8Array;
  newBuf: Uint8Array;
  transfer: ArrayBuffer[] | undefined;
  cost: number;
  resolve: (p: Uint8Array) => void;
  reject: (e: Error) => void;
}

export interface BsdiffPoolOptions {
  /** Worker threads (default: available cores, at most 4). */
  concurrency?: number;
  /** Bytes the running jobs may use together (default 2 GiB). */
  memoryBudget?: number;
  /** Run on the calling thread (no workers). */
  inline?: boolean;
}

export class BsdiffPool {
  readonly concurrency: number;
  readonly memoryBudget: number;
  private readonly idle: Worker[] = [];
  private readonly all: Worker[] = [];
  private readonly queue: Job[] = [];
  private readonly running = new Map<number, { job: Job; worker: Worker }>();
  private inUse = 0;
  private nextId = 0;
  private inline: boolean;

  constructor(options: BsdiffPoolOptions = {}) {
    this.concurrency = Math.max(1, options.concurrency ?? Math.min(4, availableParallelism()));
    this.memoryBudget = options.memoryBudget ?? 2 * 1024 ** 3;
    this.inline = options.inline ?? false;
  }

  /** Jobs running or waiting. */
  get busy(): number {
    return this.running.size + this.queue.length;
  }

  /** Peak bytes one job needs (working set plus the copies of its inputs). */
  static cost(oldSize: number, newSize: number): number {
    return bsdiffMemoryEstimate(oldSize, newSize) + oldSize + newSize;
  }

  /**
   * With `transfer`, the inputs' memory moves to the worker instead of being copied (the
   * caller must not use them afterwards): the main thread then holds no copy of a pair
   * while it is diffed. Views into a shared buffer (Node's small-Buffer pool) are copied.
   */
  diff(oldBuf: Uint8Array, newBuf: Uint8Array, options: { transfer?: boolean } = {}): Promise<Uint8Array> {
    let transfer: ArrayBuffer[] | undefined;
    if (options.transfer && !this.inline) {
      oldBuf = ownBuffer(oldBuf);
      newBuf = ownBuffer(newBuf);
      if (newBuf.buffer === oldBuf.buffer) newBuf = newBuf.slice();
      transfer = [oldBuf.buffer as ArrayBuffer, newBuf.buffer as ArrayBuffer];
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, oldBuf, newBuf, transfer, cost: BsdiffPool.cost(oldBuf.length, newBuf.length), resolve, reject });
      this.pump();
    });
  }

  private spawn(): Worker | null {
    if (this.inline || this.all.length >= this.concurrency) return null;
    try {
      const w = new Worker(workerSource(), { eval: true });
      w.unref();
      w.on("message", (m: { id: number; patch?: Uint8Array; error?: string }) => this.done(w, m));
      w.on("error", (e) => this.crashed(w, e));
      this.all.push(w);
      return w;
    } catch {
      this.inline = true;
      return null;
    }
  }

  private pump(): void {
    while (this.queue.length > 0) {
      const job = this.queue[0]!;
      if (this.running.size > 0 && this.inUse + job.cost > this.memoryBudget) return;
      if (this.inline) {
        if (this.running.size > 0) return;
        this.queue.shift();
        this.runInline(job);
        continue;
      }
      const w = this.idle.pop() ?? this.spawn();
      if (!w) {
        if (this.inline) continue;
        return;
      }
      this.queue.shift();
      this.inUse += job.cost;
      this.running.set(job.id, { job, worker: w });
      // Copied unless the caller gave its buffers away.
      w.postMessage({ id: job.id, oldBuf: job.oldBuf, newBuf: job.newBuf }, job.transfer ?? []);
    }
  }

  private runInline(job: Job): void {
    try {
      job.resolve(bsdiffCore(job.oldBuf, job.newBuf));
    } catch (e) {
      job.reject(e as Error);
    }
  }

  private done(w: Worker, m: { id: number; patch?: Uint8Array; error?: string }): void {
    const r = this.running.get(m.id);
    if (!r) return;
    this.running.delete(m.id);
    this.inUse -= r.job.cost;
    this.idle.push(w);
    if (m.error !== undefined) r.job.reject(new DeltaError(`bsdiff worker: ${m.error}`));
    else r.job.resolve(m.patch!);
    this.pump();
  }

  /**
   * A worker died (or its code did not load): its jobs, and all later ones, run on this
   * thread — except jobs whose inputs were transferred to it, which are gone: those are
   * rejected with BsdiffWorkerLostError so the caller can reload them and ask again.
   */
  private crashed(w: Worker, e: Error): void {
    this.inline = true;
    this.failure ??= e.message;
    const orphans: Job[] = [];
    for (const [id, r] of this.running) {
      if (r.worker !== w) continue;
      this.running.delete(id);
      this.inUse -= r.job.cost;
      if (r.job.transfer) r.job.reject(new BsdiffWorkerLostError(`bsdiff worker died with the job's transferred inputs: ${e.message}`));
      else orphans.push(r.job);
    }
    const i = this.all.indexOf(w);
    if (i >= 0) this.all.splice(i, 1);
    this.queue.unshift(...orphans);
    this.pump();
  }

  /** Why workers were abandoned, if they were. */
  failure: string | undefined;

  /** Stops the workers (pending jobs are rejected). */
  async close(): Promise<void> {
    for (const j of this.queue.splice(0)) j.reject(new DeltaError("bsdiff pool closed"));
    await Promise.all(this.all.map((w) => w.terminate()));
    this.all.length = 0;
    this.idle.length = 0;
  }
}
