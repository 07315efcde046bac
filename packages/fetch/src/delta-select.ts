import { parseDeltaName } from "@ostree-ts/deltas";
import { ObjectType, type Repo } from "@ostree-ts/objstore";
import { PullError } from "./errors.js";

/** Outcome of ostree's `get_best_static_delta_start_for` (ostree-repo-pull.c, 2022.7). */
export type DeltaSearch =
  | { result: "unchanged" }
  | { result: "from"; from: string }
  | { result: "scratch" }
  | { result: "no-match" };

async function completeCommit(repo: Repo, checksum: string): Promise<boolean> {
  if (!(await repo.hasObject(checksum, ObjectType.Commit))) return false;
  return (await repo.commitPartialState(checksum)) === null;
}

/**
 * Among the known deltas (summary `ostree.static-deltas` plus delta-index
 * entries), the one to use for `to`: unchanged when `to` is already complete
 * locally; else a FROM delta whose FROM is a complete local commit (newest
 * commit timestamp wins); else a scratch delta if one exists.
 */
export async function bestDeltaStart(repo: Repo, deltas: ReadonlyMap<string, string>, to: string): Promise<DeltaSearch> {
  if (await completeCommit(repo, to)) return { result: "unchanged" };
  let scratch = false;
  let best: { from: string; ts: number } | null = null;
  for (const name of deltas.keys()) {
    let parsed: { from: string | null; to: string };
    try {
      parsed = parseDeltaName(name);
    } catch (e) {
      throw new PullError(`Invalid static delta name '${name}' in summary: ${(e as Error).message}`);
    }
    if (parsed.to !== to) continue;
    if (parsed.from === null) {
      scratch = true;
      continue;
    }
    if (!(await completeCommit(repo, parsed.from))) continue;
    const ts = (await repo.readCommit(parsed.from)).timestamp;
    if (best === null || ts > best.ts) best = { from: parsed.from, ts };
  }
  if (best) return { result: "from", from: best.from };
  return scratch ? { result: "scratch" } : { result: "no-match" };
}
