import { createHash } from "node:crypto";
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { atomicWrite, buildSummary, listRefs, reindexStaticDeltas, Repo, withRepoLock } from "@ostree-ts/objstore";
import { parseSummary } from "@ostree-ts/fetch";
import type { SummarySigner } from "./signer.js";

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/**
 * Keeps a served repo's `summary` (and `summary.sig`, with a signer) in step
 * with its refs: on start and every `pollMs`, compares the refs the summary
 * lists with refs/heads and rebuilds it (byte-identical to `ostree summary -u`)
 * when they differ; re-signs when the summary changed under it (someone ran
 * `ostree summary -u`, which deletes `summary.sig`). Work is serialized.
 */
export class SummaryKeeper {
  private timer: NodeJS.Timeout | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private polling = false;
  /** sha256 of the summary bytes the current `summary.sig` was made for. */
  private signedFor: string | null = null;
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

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Rebuild (and re-sign) now, after the caller added deltas; serialized with polling. */
  refresh(reason: string): Promise<void> {
    return this.serial(() => this.regenerate(reason));
  }

  /** Regenerate the summary if its refs differ from the repo's, or re-sign it; returns whether it changed anything. */
  async check(): Promise<boolean> {
    const repo = await Repo.open(this.repoPath);
    if (repo.config.getString("core", "collection-id")) return false;
    const refs = (await listRefs(repo, { heads: true, remotes: false, mirrors: false })).map((r) => `${r.ref} ${r.checksum}`).sort();
    let bytes: Uint8Array | null = null;
    let current: string[] | null = null;
    try {
      bytes = new Uint8Array(await readFile(join(this.repoPath, "summary")));
      current = [...parseSummary(bytes).refs].map(([ref, r]) => `${ref} ${r.checksum}`).sort();
    } catch {
      current = null;
    }
    if (current === null || current.join("\n") !== refs.join("\n")) {
      await this.regenerate("refs-changed", repo);
      return true;
    }
    if (this.signer && bytes) {
      const sigPresent = await readFile(join(this.repoPath, "summary.sig")).then(
        () => true,
        () => false,
      );
      if (!sigPresent || sha256(bytes) !== this.signedFor) {
        await this.resign(repo, bytes);
        return true;
      }
    }
    return false;
  }

  /**
   * `ostree summary -u` (+ signing): the signature is made before anything is
   * written, so `summary` and `summary.sig` are replaced back to back.
   */
  private async regenerate(reason: string, opened?: Repo): Promise<void> {
    const repo = opened ?? (await Repo.open(this.repoPath));
    if (repo.config.getString("core", "collection-id")) return;
    await withRepoLock(repo, "shared", async () => {
      await reindexStaticDeltas(repo);
      const bytes = await buildSummary(repo);
      const sig = this.signer ? await this.signer.sign(bytes) : null;
      const fsync = repo.config.getBoolean("core", "fsync", true);
      await atomicWrite(repo.tmpDir, join(repo.path, "summary"), bytes, fsync);
      if (sig) {
        await atomicWrite(repo.tmpDir, join(repo.path, "summary.sig"), sig, fsync);
        this.signedFor = sha256(bytes);
        this.signatures++;
      } else {
        await rm(join(repo.path, "summary.sig"), { force: true });
      }
      this.updates++;
      this.event({ event: "summary-updated", repo: this.repoPath, reason, bytes: bytes.length, signed: sig !== null });
    });
  }

  private async resign(repo: Repo, bytes: Uint8Array): Promise<void> {
    const sig = await this.signer!.sign(bytes);
    await atomicWrite(repo.tmpDir, join(repo.path, "summary.sig"), sig, repo.config.getBoolean("core", "fsync", true));
    this.signedFor = sha256(bytes);
    this.signatures++;
    this.event({ event: "summary-signed", repo: this.repoPath });
  }
}
