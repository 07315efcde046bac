import { availableParallelism } from "node:os";

/** Default concurrency for I/O-bound object work: enough to keep libuv's threadpool busy. */
export const DEFAULT_CONCURRENCY = Math.max(4, availableParallelism() * 4);

/**
 * A bounded pool: `run` waits while `limit` tasks are in flight, so producers
 * never queue unbounded work (and memory) ahead of the consumers.
 */
export class TaskPool {
  private active = 0;
  private readonly waiters: Array<() => void> = [];
  private readonly pending = new Set<Promise<unknown>>();
  private firstError: unknown;

  constructor(readonly limit = DEFAULT_CONCURRENCY) {}

  /** Start `task` once a slot is free; resolves when it has started. Errors surface from `drain`. */
  async run(task: () => Promise<unknown>): Promise<void> {
    if (this.firstError !== undefined) throw this.firstError;
    while (this.active >= this.limit) await new Promise<void>((r) => this.waiters.push(r));
    this.active++;
    const p = task()
      .catch((e: unknown) => {
        this.firstError ??= e;
      })
      .finally(() => {
        this.active--;
        this.pending.delete(p);
        this.waiters.shift()?.();
      });
    this.pending.add(p);
  }

  /** Wait for every started task; rethrows the first failure. */
  async drain(): Promise<void> {
    while (this.pending.size) await Promise.all([...this.pending]);
    if (this.firstError !== undefined) throw this.firstError;
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
