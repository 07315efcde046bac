import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { listRefs, Repo, updateSummary } from "@ostree-ts/objstore";
import { parseSummary } from "@ostree-ts/fetch";

/**
 * Keeps a served repo's `summary` in step with its refs: on start and every
 * `pollMs`, compares the refs the summary lists with refs/heads and
 * regenerates it (objstore's `updateSummary`, as `ostree summary -u`) when they differ.
 */
export class SummaryKeeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  /** Regenerations done (tests and logs). */
  updates = 0;
  lastError: unknown;

  constructor(
    readonly repoPath: string,
    readonly pollMs: number,
  ) {}

  async start(): Promise<void> {
    await this.check();
    if (this.pollMs > 0) {
      this.timer = setInterval(() => {
        this.running ??= this.check()
          .then(() => undefined)
          .catch((e: unknown) => {
            this.lastError = e;
          })
          .finally(() => {
            this.running = undefined;
          });
      }, this.pollMs);
      this.timer.unref();
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Regenerate the summary if its refs differ from the repo's; returns whether it did. */
  async check(): Promise<boolean> {
    const repo = await Repo.open(this.repoPath);
    if (repo.config.getString("core", "collection-id")) return false;
    const refs = (await listRefs(repo, { heads: true, remotes: false, mirrors: false })).map((r) => `${r.ref} ${r.checksum}`).sort();
    let current: string[] | null = null;
    try {
      const parsed = parseSummary(new Uint8Array(await readFile(join(this.repoPath, "summary"))));
      current = [...parsed.refs].map(([ref, r]) => `${ref} ${r.checksum}`).sort();
    } catch {
      current = null;
    }
    if (current !== null && current.join("\n") === refs.join("\n")) return false;
    await updateSummary(repo);
    this.updates++;
    return true;
  }
}
