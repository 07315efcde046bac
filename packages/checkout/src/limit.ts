/**
 * At most `limit` threadpool calls in flight; the rest wait in FIFO order.
 * Unlike objstore's TaskPool, each call keeps its own promise, so checkout can
 * settle one directory's copies before its metadata goes on. Checkout hands it
 * only the inflate/write/fsync of archive payloads, which overlap with the
 * main thread's synchronous walk.
 */
export class Limiter {
  private active = 0;
  private readonly queue: Array<() => void> = [];
  private readonly settled: Array<() => void> = [];
  private readonly roomWaiters: Array<() => void> = [];

  constructor(readonly limit: number) {}

  run<T>(call: () => Promise<T>): Promise<T> {
    if (this.active < this.limit) return this.start(call);
    return new Promise<T>((resolve, reject) => this.queue.push(() => this.start(call).then(resolve, reject)));
  }

  private start<T>(call: () => Promise<T>): Promise<T> {
    this.active++;
    const done = () => {
      this.active--;
      const next = this.queue.shift();
      if (this.queue.length <= this.limit) for (const r of this.roomWaiters.splice(0)) r();
      if (next) next();
      else if (this.active === 0) for (const r of this.settled.splice(0)) r();
    };
    let p: Promise<T>;
    try {
      p = call();
    } catch (e) {
      p = Promise.reject(e);
    }
    p.then(done, done);
    return p;
  }

  /** More calls are waiting than run at once: a producer should wait for room() before queueing more. */
  get full(): boolean {
    return this.queue.length > this.limit;
  }

  /** Resolves once no more calls wait than run at once, so work (and its buffers) cannot pile up in the queue. */
  room(): Promise<void> {
    if (!this.full) return Promise.resolve();
    return new Promise((r) => this.roomWaiters.push(r));
  }

  /** Resolves once nothing is queued or in flight (after a failure, so no call outlives the checkout). */
  idle(): Promise<void> {
    if (this.active === 0) return Promise.resolve();
    return new Promise((r) => this.settled.push(r));
  }
}
