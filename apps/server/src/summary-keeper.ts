import { createHash } from "node:crypto";
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { atomicWrite, buildSummary, commitRepoMetadata, reindexStaticDeltas, Repo, summaryRefs, withRepoLock } from "@ostree-ts/objstore";
import { parseSummary } from "@ostree-ts/fetch";
import type { SummarySigner } from "./signer.js";

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** One line per listed ref (main refs, then the collection map), to compare a summary with the repo. */
function refLines(main: Iterable<[string, { checksum: string }]>, collections: Iterable<[string, Iterable<[string, { checksum: string }]>]>): string {
  const lines = [...main].map(([ref, r]) => `${ref} ${r.checksum}`);
  for (const [cid, refs] of collections) for (const [ref, r] of refs) lines.push(`(${cid}, ${ref}) ${r.checksum}`);
  return lines.sort().join("\n");
}

/**
 * One published generation of `summary` and its `summary.sig`: the server
 * answers both files from the same snapshot, so a client can never get a
 * summary with the signature of another one. Never mutated once made.
 */
export interface SummarySnapshot {
  readonly summary: Uint8Array;
  /** null: no `summary.sig` (unsigned repo) → 404. */
  readonly sig: Uint8Array | null;
  /** Strong validator of the pair, the same for both files. */
  readonly etag: string;
  readonly lastModified: Date;
}

function snapshotOf(summary: Uint8Array, sig: Uint8Array | null): SummarySnapshot {
  const h = createHash("sha256").update(summary);
  if (sig) h.update("\0sig\0").update(sig);
  // HTTP dates have second resolution; If-Modified-Since compares against this.
  return { summary, sig, etag: `"sum-${h.digest("hex").slice(0, 40)}"`, lastModified: new Date(Math.floor(Date.now() / 1000) * 1000) };
}

/** Generations kept for clients that name one with `If-Match` (they fetched one file and now want its partner). */
export const GENERATIONS_HELD = 8;

async function readOptional(path: string): Promise<Uint8Array | null> {
  return readFile(path).then(
    (b) => new Uint8Array(b),
    () => null,
  );
}

/**
 * Keeps a served repo's `summary` (and `summary.sig`, with a signer) in step
 * with its refs: on start and every `pollMs`, compares the refs the summary
 * lists with refs/heads and rebuilds it (as `ostree summary -u` does, with the
 * `ostree-metadata` commit in repos with a collection ID) when they differ;
 * re-signs when the summary changed under it (someone ran `ostree summary -u`,
 * which deletes `summary.sig`). Work is serialized. Both files are written to
 * disk for other readers, and only then published together as `current`.
 */
export class SummaryKeeper {
  private timer: NodeJS.Timeout | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private polling = false;
  /** sha256 of the summary bytes the current `summary.sig` was made for. */
  private signedFor: string | null = null;
  /** The pair the server answers with; replaced in one assignment. */
  current: SummarySnapshot | null = null;
  private readonly history: SummarySnapshot[] = [];
  /** Regenerations done (tests and logs). */
  updates = 0;
  signatures = 0;
  lastError: unknown;
  /** Called after each successful poll (the delta worker hangs off this). */
  afterCheck: (() => void) | undefined;

  constructor(
    readonly repoPath: string,
    readonly pollMs: number,
    readonly signer: SummarySigner | null = null,
    private readonly event: (e: Record<string, unknown>) => void = () => {},
  ) {}

  async start(): Promise<void> {
    // A signer makes the first pass rebuild and sign: an existing summary.sig may be from other keys.
    await this.serial(async () => (this.signer ? this.regenerate("start") : void (await this.check())));
    this.afterCheck?.();
    if (this.pollMs > 0) {
      this.timer = setInterval(() => {
        if (this.polling) return;
        this.polling = true;
        this.serial(() => this.check())
          .then(() => this.afterCheck?.())
          .catch((e: unknown) => {
            this.lastError = e;
            this.event({ event: "summary-error", repo: this.repoPath, error: (e as Error).message });
          })
          .finally(() => {
            this.polling = false;
          });
      }, this.pollMs);
      this.timer.unref();
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Wait for queued work (tests, shutdown). */
  async idle(): Promise<void> {
    await this.queue.catch(() => undefined);
  }

  /** A recent generation by its ETag (`If-Match`), or undefined when it is no longer held. */
  generation(etag: string): SummarySnapshot | undefined {
    return this.history.find((s) => s.etag === etag);
  }

  private publish(summary: Uint8Array, sig: Uint8Array | null): void {
    const snap = snapshotOf(summary, sig);
    if (this.current?.etag === snap.etag) return;
    this.history.unshift(snap);
    this.history.length = Math.min(this.history.length, GENERATIONS_HELD);
    this.current = snap;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Rebuild (and re-sign) now, after the caller added or removed deltas; serialized with polling. */
  refresh(reason: string): Promise<void> {
    return this.serial(() => this.regenerate(reason));
  }

  /** Regenerate the summary if its refs differ from the repo's, or re-sign it; returns whether it changed anything. */
  async check(): Promise<boolean> {
    const repo = await Repo.open(this.repoPath);
    // The refs `summary -u` would list (objstore's choice: heads, mirrors, collection remotes) against the summary's.
    const wanted = await summaryRefs(repo);
    const entries = (list: Array<{ ref: string; checksum: string }>) => list.map((r): [string, { checksum: string }] => [r.ref, r]);
    const refs = refLines(
      entries(wanted.main),
      [...wanted.collections].map(([cid, list]): [string, Array<[string, { checksum: string }]>] => [cid, entries(list)]),
    );
    const bytes = await readOptional(join(this.repoPath, "summary"));
    let current: string | null = null;
    try {
      if (bytes) {
        const parsed = parseSummary(bytes);
        current = refLines(parsed.refs, parsed.collections);
      }
    } catch {
      current = null;
    }
    if (current === null || current !== refs) {
      await this.regenerate("refs-changed", repo);
      return true;
    }
    const sig = await readOptional(join(this.repoPath, "summary.sig"));
    if (this.signer && bytes) {
      if (!sig || sha256(bytes) !== this.signedFor) {
        await this.resign(repo, bytes);
        return true;
      }
    }
    // Unsigned (or signed outside): serve what is on disk, once it reads as a stable pair.
    if (bytes && (!this.current || snapshotOf(bytes, sig).etag !== this.current.etag)) {
      const again = await readOptional(join(this.repoPath, "summary"));
      if (again && sha256(again) === sha256(bytes)) this.publish(bytes, sig);
    }
    return false;
  }

  /**
   * `ostree summary -u` (+ signing): in a repo with a collection ID first the
   * signed `ostree-metadata` commit, then the summary; the signature is made
   * before anything is written, and the pair is published only after both files are.
   */
  private async regenerate(reason: string, opened?: Repo): Promise<void> {
    const repo = opened ?? (await Repo.open(this.repoPath));
    await withRepoLock(repo, "shared", async () => {
      const signer = this.signer;
      const metadataCommit = await commitRepoMetadata(repo, signer ? { beforeRef: (checksum) => signer.signCommit(repo, checksum) } : {});
      await reindexStaticDeltas(repo);
      const bytes = await buildSummary(repo);
      const sig = signer ? await signer.sign(bytes) : null;
      const fsync = repo.config.getBoolean("core", "fsync", true);
      await atomicWrite(repo.tmpDir, join(repo.path, "summary"), bytes, fsync);
      if (sig) {
        await atomicWrite(repo.tmpDir, join(repo.path, "summary.sig"), sig, fsync);
        this.signedFor = sha256(bytes);
        this.signatures++;
      } else {
        await rm(join(repo.path, "summary.sig"), { force: true });
      }
      this.publish(bytes, sig);
      this.updates++;
      this.event({ event: "summary-updated", repo: this.repoPath, reason, bytes: bytes.length, signed: sig !== null, ...(metadataCommit ? { metadataCommit } : {}) });
    });
  }

  private async resign(repo: Repo, bytes: Uint8Array): Promise<void> {
    const sig = await this.signer!.sign(bytes);
    await atomicWrite(repo.tmpDir, join(repo.path, "summary.sig"), sig, repo.config.getBoolean("core", "fsync", true));
    this.signedFor = sha256(bytes);
    this.signatures++;
    this.publish(bytes, sig);
    this.event({ event: "summary-signed", repo: this.repoPath });
  }
}
