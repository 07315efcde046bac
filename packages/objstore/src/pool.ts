import { availableParallelism } from "node:os";

/** Default concurrency for I/O-bound object work: enough to keep libuv's threadpool busy. */
export const DEFAULT_CONCURRENCY = Math.max(4, availableParallelism() * 4);

/**
 * A bounded pool: at most `limit` tasks in flight, the rest started in FIFO
 * order as slots free up. Two ways in: `run` for fire-and-collect work
 * (resolves once the task has started, so a producer awaiting it never
 * queues unbounded work and memory; failures surface from `drain`), and
 * `call` for work whose own result the caller awaits (checkout settles one
 * directory's copies before its metadata goes on), with `full`/`room()` as
 * the producer's brake and `idle()` to wait for everything.
 */
export class TaskPool {
  private active = 0;
  /** Starters of tasks waiting for a slot, oldest first. */
  private readonly queue: Array<() => void> = [];
  private readonly roomWaiters: Array<() => void> = [];
  private readonly idleWaiters: Array<() => void> = [];
  private readonly pending = new Set<Promise<unknown>>();
  private firstError: unknown;

  constructor(readonly limit = DEFAULT_CONCURRENCY) {}

  /** Start `task` once a slot is free; resolves when it has started. Errors surface from `drain`. */
  async run(task: () => Promise<unknown>): Promise<void> {
    if (this.firstError !== undefined) throw this.firstError;
    await new Promise<void>((started) => {
      this.submit(() => {
        const p = task()
          .catch((e: unknown) => {
            this.firstError ??= e;
          })
          .finally(() => this.pending.delete(p));
        this.pending.add(p);
        started();
        return p;
      });
    });
  }

  /** Run `task` once a slot is free and settle with its result; not collected by `drain`. */
  call<T>(task: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.submit(() => {
        let p: Promise<T>;
        try {
          p = task();
        } catch (e) {
          p = Promise.reject(e);
        }
        p.then(resolve, reject);
        return p;
      });
    });
  }

  /** More tasks wait than run at once: a producer should wait for `room()` before submitting more. */
  get full(): boolean {
    return this.queue.length > this.limit;
  }

  /** Resolves once no more tasks wait than run at once. */
  room(): Promise<void> {
    if (!this.full) return Promise.resolve();
    return new Promise((r) => this.roomWaiters.push(r));
  }

  /** Resolves once nothing is queued or in flight, failed tasks included. */
  idle(): Promise<void> {
    if (this.active === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /** Wait for every task started by `run`; rethrows the first failure. */
  async drain(): Promise<void> {
    while (this.pending.size) await Promise.all([...this.pending]);
    if (this.firstError !== undefined) throw this.firstError;
  }

  /** `start` begins a task and returns its promise; it runs now if a slot is free, else when one frees up. */
  private submit(start: () => Promise<unknown>): void {
    const go = () => {
      this.active++;
      start().then(done, done);
    };
    const done = () => {
      this.active--;
      const next = this.queue.shift();
      if (this.queue.length <= this.limit) for (const r of this.roomWaiters.splice(0)) r();
      if (next) next();
      else if (this.active === 0) for (const r of this.idleWaiters.splice(0)) r();
    };
    if (this.active < this.limit) go();
    else this.queue.push(go);
  }
}

/** Map with bounded concurrency, keeping input order in the result. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
