import type { Repo } from "./repo.js";
import { ObjectType } from "./object-types.js";
import { objectStorageSize } from "./prune.js";
import { resolveRev } from "./rev.js";
import { parseObjectKey, reachableFromCommit } from "./traverse.js";

export interface CommitDiff {
  /** Paths whose content object, dirmeta or type changed (`M`). */
  modified: string[];
  /** Paths only in the first commit (`D`); a removed directory is listed once, not its contents. */
  removed: string[];
  /** Paths only in the second commit (`A`), a new directory followed by everything under it. */
  added: string[];
}

interface Node {
  files: Map<string, string>;
  dirs: Map<string, { tree: string; meta: string }>;
  /** ostree enumerates a directory's files, then its subdirectories, each sorted. */
  order: Array<{ name: string; dir: boolean }>;
}

async function load(repo: Repo, tree: string): Promise<Node> {
  const dt = await repo.readDirTree(tree);
  return {
    files: new Map(dt.files.map((f) => [f.name, f.checksum])),
    dirs: new Map(dt.dirs.map((d) => [d.name, { tree: d.tree, meta: d.meta }])),
    order: [...dt.files.map((f) => ({ name: f.name, dir: false })), ...dt.dirs.map((d) => ({ name: d.name, dir: true }))],
  };
}

function join(dir: string, name: string): string {
  return dir === "/" ? `/${name}` : `${dir}/${name}`;
}

/**
 * What `ostree diff A B` reports between two commits (revs or checksums), in
 * its order: walking A's entries (files, then subdirs) records modified and
 * removed paths and descends into directories present in both; then B's
 * entries missing from A are added, each new directory followed by its
 * whole subtree. Directories with equal dirtrees are skipped.
 */
export async function diffCommits(repo: Repo, a: string, b: string): Promise<CommitDiff> {
  const ca = await repo.readCommit((await resolveRev(repo, a))!);
  const cb = await repo.readCommit((await resolveRev(repo, b))!);
  const out: CommitDiff = { modified: [], removed: [], added: [] };

  const addAll = async (tree: string, path: string) => {
    const stack: Array<{ node: Node; path: string; i: number }> = [{ node: await load(repo, tree), path, i: 0 }];
    while (stack.length) {
      const top = stack[stack.length - 1]!;
      if (top.i >= top.node.order.length) {
        stack.pop();
        continue;
      }
      const e = top.node.order[top.i++]!;
      const p = join(top.path, e.name);
      out.added.push(p);
      if (e.dir) stack.push({ node: await load(repo, top.node.dirs.get(e.name)!.tree), path: p, i: 0 });
    }
  };

  // Frames walk A's entries, then B's; explicit so deep trees don't exhaust the call stack.
  type Frame = { a: Node; b: Node; path: string; phase: 0 | 1; i: number };
  const frames: Frame[] = [];
  const enter = async (ta: string, tb: string, path: string) => {
    if (ta === tb) return;
    frames.push({ a: await load(repo, ta), b: await load(repo, tb), path, phase: 0, i: 0 });
  };
  await enter(ca.rootTree, cb.rootTree, "/");
  while (frames.length) {
    const f = frames[frames.length - 1]!;
    if (f.phase === 0) {
      if (f.i >= f.a.order.length) {
        f.phase = 1;
        f.i = 0;
        continue;
      }
      const e = f.a.order[f.i++]!;
      const p = join(f.path, e.name);
      const bIsDir = f.b.dirs.has(e.name);
      const bIsFile = f.b.files.has(e.name);
      if (!bIsDir && !bIsFile) out.removed.push(p);
      else if (e.dir !== bIsDir) out.modified.push(p);
      else if (!e.dir) {
        if (f.a.files.get(e.name) !== f.b.files.get(e.name)) out.modified.push(p);
      } else {
        const da = f.a.dirs.get(e.name)!;
        const db = f.b.dirs.get(e.name)!;
        if (da.meta !== db.meta) out.modified.push(p);
        await enter(da.tree, db.tree, p);
      }
    } else {
      if (f.i >= f.b.order.length) {
        frames.pop();
        continue;
      }
      const e = f.b.order[f.i++]!;
      if (f.a.files.has(e.name) || f.a.dirs.has(e.name)) continue;
      const p = join(f.path, e.name);
      out.added.push(p);
      // Children of a new directory follow it immediately.
      if (e.dir) await addAll(f.b.dirs.get(e.name)!.tree, p);
    }
  }
  return out;
}

/** Lines as `ostree diff` prints them: all `M`, then `D`, then `A`, with four spaces. */
export function formatDiff(d: CommitDiff): string {
  return [...d.modified.map((p) => `M    ${p}`), ...d.removed.map((p) => `D    ${p}`), ...d.added.map((p) => `A    ${p}`)]
    .map((l) => `${l}\n`)
    .join("");
}

export interface DiffStats {
  aObjects: number;
  bObjects: number;
  /** Objects reachable from both commits, and their total size on disk. */
  commonObjects: number;
  commonBytes: number;
}

/** `ostree diff --stats A B`: objects reachable from each commit (no parents) and what they share. */
export async function diffStats(repo: Repo, a: string, b: string): Promise<DiffStats> {
  const ra = await reachableFromCommit(repo, (await resolveRev(repo, a))!, { maxDepth: 0 });
  const rb = await reachableFromCommit(repo, (await resolveRev(repo, b))!, { maxDepth: 0 });
  let commonObjects = 0;
  let commonBytes = 0;
  for (const key of ra) {
    if (!rb.has(key)) continue;
    commonObjects++;
    const { checksum, type } = parseObjectKey(key);
    commonBytes += await objectStorageSize(repo, checksum, type as ObjectType);
  }
  return { aObjects: ra.size, bObjects: rb.size, commonObjects, commonBytes };
}
