import { mkdir, readFile, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { deleteDelta, generateDelta, superblockPath, type GenerateOptions } from "@ostree-ts/deltas";
import { atomicWrite, listRefs, listStaticDeltaNames, ObjectType, Repo } from "@ostree-ts/objstore";

/** Background static-delta generation for the newest commit of each ref. */
export interface DeltaConfig {
  /** Default false: generation is CPU-heavy (bsdiff, xz). */
  enabled?: boolean;
  /** `fromParent: false` is `fromDepth: 0` (kept for older config files). */
  fromParent?: boolean;
  /**
   * Deltas to each tip from its N nearest ancestors present in the repo
   * (1 = parent only, the default; 2 adds the grandparent, …), so clients a
   * few updates behind also get one delta.
   */
  fromDepth?: number;
  /**
   * Deltas whose target is no longer any ref's tip are deleted once they have
   * been unreferenced this long (seconds; default 3600), so clients still
   * holding an older summary can finish. Negative: never delete.
   */
  pruneAfterSeconds?: number;
  /** Also a scratch (`--empty`) delta for first-time clients (default false). */
  empty?: boolean;
  /** Generator limits, as `ostree static-delta generate` takes them (MB). */
  maxBsdiffSize?: number;
  minFallbackSize?: number;
  maxChunkSize?: number;
}

type Job = { from: string | null; to: string; ref: string };

/**
 * Repo-relative file where the worker keeps, for each delta whose target is no
 * ref's tip, when it first saw it so (ms since the epoch), so the prune grace
 * period counts from then across restarts. ostree ignores the directory, and
 * the server does not serve it.
 */
export const PRUNE_STATE_FILE = ".ostree-ts-server/unreferenced-deltas.json";

interface PruneState {
  version: 1;
  unreferencedSince: Record<string, number>;
}

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
  /** Deltas whose target is no ref's tip, with when that was first seen (ms); loaded from and saved to PRUNE_STATE_FILE. */
  private unreferencedSince: Map<string, number> | undefined;
  generated = 0;
  pruned = 0;

  constructor(
    readonly repoPath: string,
    readonly config: DeltaConfig,
    private readonly published: (names: string[]) => Promise<void>,
    private readonly event: (e: Record<string, unknown>) => void = () => {},
    /** The clock the grace period is measured with (tests move it). */
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * The saved times; an unreadable or malformed file is reported and treated
   * as empty, which only restarts the grace (deltas are kept longer, never
   * pruned early).
   */
  private async loadPruneState(): Promise<Map<string, number>> {
    const path = join(this.repoPath, PRUNE_STATE_FILE);
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return new Map();
      this.event({ event: "delta-state-error", repo: this.repoPath, error: (e as Error).message });
      return new Map();
    }
    try {
      const state = JSON.parse(text) as PruneState;
      if (state.version !== 1 || typeof state.unreferencedSince !== "object" || state.unreferencedSince === null) throw new Error("not a version 1 state");
      const out = new Map<string, number>();
      for (const [name, since] of Object.entries(state.unreferencedSince)) {
        if (typeof since !== "number" || !Number.isFinite(since)) throw new Error(`bad time for ${name}`);
        out.set(name, since);
      }
      return out;
    } catch (e) {
      this.event({ event: "delta-state-error", repo: this.repoPath, error: `${path}: ${(e as Error).message}` });
      return new Map();
    }
  }

  /** Temp file + rename. A failure is reported, not thrown: the times in memory still hold until the next save. */
  private async savePruneState(repo: Repo, since: Map<string, number>): Promise<void> {
    const path = join(this.repoPath, PRUNE_STATE_FILE);
    const state: PruneState = { version: 1, unreferencedSince: Object.fromEntries([...since].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) };
    try {
      await mkdir(dirname(path), { recursive: true });
      await atomicWrite(repo.tmpDir, path, `${JSON.stringify(state, null, 1)}\n`, repo.config.getBoolean("core", "fsync", true));
    } catch (e) {
      this.event({ event: "delta-state-error", repo: this.repoPath, error: `${path}: ${(e as Error).message}` });
    }
  }

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
      let depth = this.config.fromDepth ?? (this.config.fromParent === false ? 0 : 1);
      for (let at = to; depth > 0; depth--) {
        const parent = (await repo.readCommit(at)).parent;
        // An ancestor pruned away or only referenced (--depth) cannot be a delta base, nor lead to older ones.
        if (!parent || !(await repo.hasObject(parent, ObjectType.Commit)) || (await exists(join(repo.path, "state", `${parent}.commitpartial`)))) break;
        candidates.push(parent);
        at = parent;
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

  /** Delete deltas whose target has not been a ref tip for `pruneAfterSeconds`; returns their names. */
  private async prune(repo: Repo): Promise<string[]> {
    const grace = this.config.pruneAfterSeconds ?? 3600;
    if (grace < 0) return [];
    const tips = new Set((await listRefs(repo, { heads: true, remotes: false, mirrors: false })).map((r) => r.checksum));
    const unreferenced = (this.unreferencedSince ??= await this.loadPruneState());
    let changed = false;
    const forget = (name: string) => {
      changed = unreferenced.delete(name) || changed;
    };
    const now = this.now();
    const removed: string[] = [];
    const present = new Set<string>();
    try {
      for (const name of await listStaticDeltaNames(repo)) {
        present.add(name);
        const to = name.slice(name.indexOf("-") + 1);
        if (tips.has(to)) {
          forget(name);
          continue;
        }
        let since = unreferenced.get(name);
        if (since === undefined) {
          since = now;
          unreferenced.set(name, since);
          changed = true;
        }
        if (now - since < grace * 1000) continue;
        await deleteDelta(repo, name);
        forget(name);
        present.delete(name);
        removed.push(name);
        this.pruned++;
        this.event({ event: "delta-pruned", repo: this.repoPath, delta: name });
      }
      for (const name of [...unreferenced.keys()]) if (!present.has(name)) forget(name);
    } finally {
      // Saved also when a deletion failed half-way: what was recorded so far stays true.
      if (changed) await this.savePruneState(repo, unreferenced);
    }
    return removed;
  }

  private async scan(): Promise<void> {
    const repo = await Repo.open(this.repoPath);
    const removed = await this.prune(repo);
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
    if (made.length || removed.length) await this.published([...made, ...removed.map((n) => `-${n}`)]);
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
