import { rm } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import { CorruptObjectError, InvalidArgumentError, OstreeError, Repo, type ObjectType } from "@ostree-ts/objstore";
import { PullError } from "./errors.js";
import { checkBareUserOnly, parseFilez, writeFetched } from "./filez.js";

/*
 * Content objects of an HTTP pull into a non-archive repo, decoded and stored
 * by a worker thread. Per object the main thread of an object pull spent
 * about as much time inflating and storing (file creation alone is ~200 µs of
 * kernel time here) as on HTTP; ostree writes on other threads too. The
 * worker opens the same repo and runs the same code (parseFilez, writeFetched)
 * as the main thread would. Loaded only through a dynamic import, so its
 * bundle chunk holds this module, filez.ts and objstore (no undici).
 */

/** Marks workerData as ours, so loading this module in another worker does nothing. */
const MARK = "ostree-ts-store-worker";

interface WorkerInput {
  [MARK]: true;
  repoPath: string;
  /** Per-object fsync (PullOptions.fsync). */
  fsync: boolean | undefined;
  /** Refuse modes bare-user-only cannot store (`--bareuseronly-files` or a bare-user-only repo). */
  bareUserOnly: boolean;
}

/** A content object's `.filez`, a verified metadata object's bytes, or a static delta part to apply. */
type Job =
  | { id: number; checksum: string; filez: ArrayBuffer }
  | { id: number; checksum: string; metadata: ArrayBuffer; type: ObjectType }
  | { id: number; part: ArrayBuffer; index: number; inline: boolean; superblock: ArrayBuffer };

type SerializedError = { name: string; message: string; checksum?: string; objectType?: string; code?: string };
type Reply = { ready: true } | { id: number; size: number } | { id: number; error: SerializedError };

/** The file the worker runs: this module, when it is JavaScript (the CLI bundle); under vitest it is TypeScript. */
function workerScript(): string | undefined {
  const url = import.meta.url;
  return url.startsWith("file:") && /\.m?js$/.test(url) ? fileURLToPath(url) : undefined;
}

/**
 * Content objects reserved for the worker (being fetched, or received and not
 * yet stored): enough to keep it busy while bodies arrive.
 */
const MAX_PENDING = 48;
/**
 * Received bytes waiting for the worker (in this thread or in its queue): no
 * new object is reserved beyond this. Counting objects alone let a run of
 * large bodies (up to 2 MiB each) pile up tens of MiB that glibc then kept.
 */
const MAX_PENDING_BYTES = 4 << 20;

/** A reserved place in the pool for one object (see StorePool.reserve). */
export interface Reservation {
  /** The object's received body is `bytes` long and waits for the worker until release. */
  hold(bytes: number): void;
  /** The object is stored (or failed, or was stored another way); idempotent. */
  release(): void;
}

/** Worker threads storing `.filez` bodies received in memory. */
export class StorePool {
  private readonly workers: Array<{ worker: Worker; pending: number }> = [];
  private readonly pending = new Map<number, { ok: (size: number) => void; fail: (e: Error) => void; slot: { pending: number } }>();
  private readonly slotWaiters: Array<() => void> = [];
  private held = 0;
  private heldBytes = 0;
  private nextId = 0;
  private dead: Error | null = null;
  private readyCount = 0;
  /** Objects the workers have stored. */
  stored = 0;

  /** A pool for `repo`, or null where there is no JavaScript file for a worker to run (sources under vitest). */
  static start(repo: Repo, o: { fsync: boolean | undefined; bareUserOnly: boolean; threads: number }): StorePool | null {
    const script = workerScript();
    return script ? new StorePool(script, { [MARK]: true, repoPath: repo.path, fsync: o.fsync, bareUserOnly: o.bareUserOnly }, o.threads) : null;
  }

  private constructor(script: string, input: WorkerInput, threads: number) {
    const die = (e: Error) => {
      this.dead ??= e;
      for (const p of this.pending.values()) p.fail(e);
      this.pending.clear();
    };
    for (let i = 0; i < threads; i++) {
      const worker = new Worker(script, { workerData: input });
      const slot = { worker, pending: 0 };
      this.workers.push(slot);
      worker.on("message", (m: Reply) => {
        if ("ready" in m) {
          this.readyCount++;
          return;
        }
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        p.slot.pending--;
        if ("error" in m) p.fail(revive(m.error));
        else {
          this.stored++;
          p.ok(m.size);
        }
      });
      worker.on("error", die);
      worker.on("exit", (code) => die(new PullError(`the object store thread exited (status ${code})`)));
    }
  }

  /** False until every worker has opened the repo; objects are stored by the caller meanwhile. */
  get ready(): boolean {
    return this.dead === null && this.readyCount === this.workers.length;
  }

  /** Waits for room in the pool (objects and bytes), first come first served; release the reservation once the object is stored. */
  async reserve(): Promise<Reservation> {
    // A waiter's place is taken for it by wake(), so places are never handed out twice.
    if (this.slotWaiters.length > 0 || !this.hasRoom()) await new Promise<void>((r) => this.slotWaiters.push(r));
    else this.held++;
    let bytes = 0;
    let done = false;
    return {
      hold: (n) => {
        if (done) return;
        this.heldBytes += n - bytes;
        bytes = n;
      },
      release: () => {
        if (done) return;
        done = true;
        this.held--;
        this.heldBytes -= bytes;
        this.wake();
      },
    };
  }

  private hasRoom(): boolean {
    return this.held < MAX_PENDING * this.workers.length && this.heldBytes < MAX_PENDING_BYTES * this.workers.length;
  }

  /** Lets waiters in, in order, while there is room: thousands of objects of a tree walk may wait here. */
  private wake(): void {
    while (this.slotWaiters.length > 0 && this.hasRoom()) {
      this.held++;
      this.slotWaiters.shift()!();
    }
  }

  /** Decode, verify and store one `.filez` on the least busy worker (the bytes are moved there: do not use them after); resolves to the payload size written. */
  store(checksum: string, filez: Uint8Array): Promise<number> {
    return this.post(checksum, filez, (id, bytes) => ({ id, checksum, filez: bytes }), [], true);
  }

  /** Write a verified dirtree or dirmeta (the bytes are copied: the caller's decoded tree may still refer to them). */
  async storeMetadata(type: ObjectType, checksum: string, bytes: Uint8Array): Promise<void> {
    await this.post(checksum, bytes, (id, metadata) => ({ id, checksum, metadata, type }));
  }

  /**
   * Check, decompress and execute part `index` of the delta whose superblock
   * file is `superblock` (deltas' fetchPart + executePrepared, as on the main
   * thread). Resolves to the number of objects written.
   */
  applyPart(superblock: Uint8Array, index: number, part: Uint8Array, inline: boolean): Promise<number> {
    const sb = new Uint8Array(superblock.length);
    sb.set(superblock);
    return this.post("", part, (id, bytes) => ({ id, part: bytes, index, inline, superblock: sb.buffer }), [sb.buffer]);
  }

  /** `move`: the caller no longer needs `bytes`, so an ArrayBuffer of their own is moved rather than copied. */
  private post(checksum: string, bytes: Uint8Array, job: (id: number, bytes: ArrayBuffer) => Job, moreTransfers: ArrayBuffer[] = [], move = false): Promise<number> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    let slot = this.workers[0]!;
    for (const w of this.workers) if (w.pending < slot.pending) slot = w;
    slot.pending++;
    // Bytes with an ArrayBuffer of their own (a body received in several chunks) are moved as they are;
    // bytes that share theirs with other data (a socket read holding several small responses) are copied.
    let own = bytes;
    if (!move || bytes.byteOffset !== 0 || bytes.byteLength !== bytes.buffer.byteLength || !(bytes.buffer instanceof ArrayBuffer)) {
      own = new Uint8Array(bytes.length);
      own.set(bytes);
    }
    const buffer = own.buffer as ArrayBuffer;
    return new Promise((ok, fail) => {
      this.pending.set(id, { ok, fail, slot });
      slot.worker.postMessage(job(id, buffer), [buffer, ...moreTransfers]);
    });
  }

  async close(): Promise<void> {
    this.dead ??= new PullError("the object store thread was closed");
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
  }
}

/** The worker's error as the class the main thread would have thrown, with the same message. */
function revive(e: SerializedError): Error {
  let err: Error;
  if (e.name === "CorruptObjectError" && e.checksum && e.objectType) {
    err = new CorruptObjectError(e.checksum, e.objectType, "");
    err.message = e.message;
  } else if (e.name === "PullError") err = new PullError(e.message);
  else if (e.name === "InvalidArgumentError") err = new InvalidArgumentError(e.message);
  else if (e.name === "OstreeError") err = new OstreeError(e.message);
  else {
    err = new Error(e.message);
    err.name = e.name;
    if (e.code) Object.assign(err, { code: e.code });
  }
  return err;
}

function serialize(e: unknown): SerializedError {
  if (!(e instanceof Error)) return { name: "Error", message: String(e) };
  const out: SerializedError = { name: e instanceof PullError ? "PullError" : e.name, message: e.message };
  if (e instanceof CorruptObjectError) Object.assign(out, { checksum: e.checksum, objectType: e.objectType });
  const code = (e as NodeJS.ErrnoException).code;
  if (code) out.code = code;
  return out;
}

/** Payload size stored. */
async function storeFilez(repo: Repo, input: WorkerInput, checksum: string, filez: ArrayBuffer): Promise<number> {
  // Large payloads are inflated in memory too (no budget to share here): the .filez is at most 2 MiB.
  const f = await parseFilez({ bytes: new Uint8Array(filez) }, checksum, repo.tmpDir, false, () => () => {});
  try {
    if (input.bareUserOnly) checkBareUserOnly(checksum, f.meta);
    await writeFetched(repo, checksum, f, input.fsync);
  } finally {
    if (f.payloadPath) await rm(f.payloadPath, { force: true });
  }
  return f.size;
}

async function storeMeta(repo: Repo, input: WorkerInput, job: { checksum: string; metadata: ArrayBuffer; type: ObjectType }): Promise<number> {
  await repo.writeMetadata(job.type, new Uint8Array(job.metadata), job.checksum, { fsync: input.fsync });
  return 0;
}

/** Objects written. Deltas are loaded on the first part: object pulls never need them. */
async function applyPart(repo: Repo, job: { part: ArrayBuffer; index: number; inline: boolean; superblock: ArrayBuffer }): Promise<number> {
  // One import per declaring file, so the CLI bundle loads apply.ts and superblock.ts, not the generator.
  const { executePrepared, fetchPart } = await import("@ostree-ts/deltas");
  const { readSuperblockBytes } = await import("@ostree-ts/deltas");
  const sb = readSuperblockBytes(new Uint8Array(job.superblock)).superblock;
  const fetched = await fetchPart(sb, job.index, new Uint8Array(job.part), { skipChecksum: job.inline, tmpDir: repo.tmpDir });
  return (await executePrepared(repo, fetched.prepare())).objectsWritten;
}

async function runWorker(input: WorkerInput, port: NonNullable<typeof parentPort>): Promise<void> {
  const repo = await Repo.open(input.repoPath);
  // One object at a time, in arrival order: the thread's work is the point, not overlap within it.
  let chain = Promise.resolve();
  port.on("message", (job: Job) => {
    chain = chain.then(async () => {
      try {
        const size = "filez" in job ? await storeFilez(repo, input, job.checksum, job.filez) : "part" in job ? await applyPart(repo, job) : await storeMeta(repo, input, job);
        port.postMessage({ id: job.id, size } satisfies Reply);
      } catch (e) {
        port.postMessage({ id: job.id, error: serialize(e) } satisfies Reply);
      }
    });
  });
  port.postMessage({ ready: true } satisfies Reply);
}

if (!isMainThread && parentPort && (workerData as Partial<WorkerInput> | null)?.[MARK]) {
  void runWorker(workerData as WorkerInput, parentPort);
}
