import { stat } from "node:fs/promises";
import { join } from "node:path";
import { generateDelta, superblockPath, type GenerateOptions } from "@ostree-ts/deltas";
import { listRefs, ObjectType, Repo } from "@ostree-ts/objstore";

/** Background static-delta generation for the newest commit of each ref. */
export interface DeltaConfig {
  /** Default false: generation is CPU-heavy (bsdiff, xz). */
  enabled?: boolean;
  /** Delta from the commit's parent when the parent is in the repo (default true). */
  fromParent?: boolean;
  /** Also a scratch (`--empty`) delta for first-time clients (default false). */
  empty?: boolean;
  /** Generator limits, as `ostree static-delta generate` takes them (MB). */
  maxBsdiffSize?: number;
  minFallbackSize?: number;
  maxChunkSize?: number;
}

type Job = { from: string | null; to: string; ref: string };

/**
 * Finds deltas the refs' tips are missing and makes them one at a time with
 * @ostree-ts/deltas' generator (parts then superblock, each written to a temp
 * file and renamed). After a batch it calls `published`, which reindexes and
 * rebuilds the summary so clients see the new deltas.
 */
export class DeltaWorker {
  private running: Promise<void> | undefined;
  /** Deltas that failed once are not retried until the ref moves (name → message). */
  readonly failed = new Map<string, string>();
  generated = 0;

  constructor(
    readonly repoPath: string,
    readonly config: DeltaConfig,
    private readonly published: (names: string[]) => Promise<void>,
    private readonly event: (e: Record<string, unknown>) => void = () => {},
  ) {}

  /** Start a scan unless one is running; returns the running scan. */
  kick(): Promise<void> {
    this.running ??= this.scan().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  async idle(): Promise<void> {
    await this.running;
  }

  private async wanted(repo: Repo): Promise<Job[]> {
    const jobs: Job[] = [];
    const seen = new Set<string>();
    for (const r of await listRefs(repo, { heads: true, remotes: false, mirrors: false })) {
      const to = r.checksum;
      const candidates: Array<string | null> = [];
      if (this.config.fromParent ?? true) {
        const parent = (await repo.readCommit(to)).parent;
        // A parent pruned away or only referenced (--depth) cannot be a delta base.
        if (parent && (await repo.hasObject(parent, ObjectType.Commit)) && !(await exists(join(repo.path, "state", `${parent}.commitpartial`)))) candidates.push(parent);
      }
      if (this.config.empty) candidates.push(null);
      for (const from of candidates) {
        const name = from ? `${from}-${to}` : to;
        if (seen.has(name) || this.failed.has(name)) continue;
        seen.add(name);
        if (!(await exists(join(repo.path, superblockPath(from, to))))) jobs.push({ from, to, ref: r.ref });
      }
    }
    return jobs;
  }

  private async scan(): Promise<void> {
    const repo = await Repo.open(this.repoPath);
    const jobs = await this.wanted(repo);
    const made: string[] = [];
    for (const job of jobs) {
      const name = job.from ? `${job.from}-${job.to}` : job.to;
      const t0 = performance.now();
      try {
        const opts: GenerateOptions = { from: job.from, to: job.to };
        if (this.config.maxBsdiffSize !== undefined) opts.maxBsdiffSize = this.config.maxBsdiffSize;
        if (this.config.minFallbackSize !== undefined) opts.minFallbackSize = this.config.minFallbackSize;
        if (this.config.maxChunkSize !== undefined) opts.maxChunkSize = this.config.maxChunkSize;
        const r = await generateDelta(repo, opts);
        made.push(name);
        this.generated++;
        const bytes = r.superblockSize + r.parts.reduce((n, p) => n + p.size, 0);
        this.event({ event: "delta-generated", repo: this.repoPath, ref: job.ref, delta: name, bytes, seconds: Math.round((performance.now() - t0) / 10) / 100 });
      } catch (e) {
        this.failed.set(name, (e as Error).message);
        this.event({ event: "delta-failed", repo: this.repoPath, ref: job.ref, delta: name, error: (e as Error).message });
      }
    }
    if (made.length) await this.published(made);
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
