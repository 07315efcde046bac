import { readFileSync } from "node:fs";
import { CorruptObjectError, ObjectNotFoundError } from "./errors.js";
import { decodeDirTree, type DirTree } from "./metadata.js";
import { objectName, ObjectType, parseObjectName } from "./object-types.js";
import type { Repo } from "./repo.js";

/**
 * Reachability sets are keyed by ostree's object name `checksum.type`
 * (e.g. `ab…cd.dirtree`), one short string per object.
 */
export type ReachableSet = Set<string>;

/** object name → names of the objects (commit or dirtree) that point at it. */
export type ParentMap = Map<string, Set<string>>;

export interface TraverseOptions {
  /** Parents to follow: -1 (default) = all, 0 = only this commit, N = this one and N parents. */
  maxDepth?: number;
  /** Record only commits; skip their trees (`--commit-only`). */
  commitOnly?: boolean;
  /** When given, filled with each object's referrers (fsck uses this to mark commits partial). */
  parents?: ParentMap;
}

export function objectKey(checksum: string, type: ObjectType): string {
  return objectName(checksum, type);
}

export function parseObjectKey(key: string): { checksum: string; type: ObjectType } {
  const parsed = parseObjectName(key);
  if (!parsed) throw new Error(`invalid object key ${key}`);
  return parsed;
}

function addParent(parents: ParentMap | undefined, key: string, parent: string): void {
  if (!parents) return;
  let set = parents.get(key);
  if (!set) parents.set(key, (set = new Set()));
  set.add(parent);
}

/**
 * A dirtree for traversal. ostree reads dirtrees through GVariant's lenient
 * accessors and only detects damage when fsck re-hashes the object, so a
 * dirtree that does not decode is treated as empty here: it stays in the
 * reachable set and the checksum pass reports it by name.
 */
async function loadDirTreeForWalk(repo: Repo, checksum: string): Promise<DirTree | null> {
  try {
    // A synchronous read of objects/ first: a tree walk reads thousands of small dirtrees, and a
    // threadpool round trip each costs more than the read. Repo.readDirTree covers the rest
    // (a transaction's staging dir, core.parent).
    const bytes = readLooseSync(repo.objectPath(checksum, ObjectType.DirTree));
    return bytes ? decodeDirTree(bytes, checksum) : await repo.readDirTree(checksum);
  } catch (e) {
    if (e instanceof CorruptObjectError) return { files: [], dirs: [] };
    if (e instanceof ObjectNotFoundError) return null;
    throw e;
  }
}

/** A loose object's bytes, or undefined when it is not there. */
function readLooseSync(path: string): Uint8Array | undefined {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
}

async function walkDirTree(
  repo: Repo,
  checksum: string,
  selfKey: string,
  reachable: ReachableSet,
  parents: ParentMap | undefined,
  ignoreMissing: boolean,
): Promise<void> {
  const tree = await loadDirTreeForWalk(repo, checksum);
  if (tree === null) {
    if (ignoreMissing) return;
    throw new ObjectNotFoundError(checksum, "dirtree");
  }
  for (const f of tree.files) {
    const key = objectKey(f.checksum, ObjectType.File);
    addParent(parents, key, selfKey);
    reachable.add(key);
  }
  for (const d of tree.dirs) {
    const metaKey = objectKey(d.meta, ObjectType.DirMeta);
    addParent(parents, metaKey, selfKey);
    reachable.add(metaKey);
    const treeKey = objectKey(d.tree, ObjectType.DirTree);
    addParent(parents, treeKey, selfKey);
    // The memo: a dirtree shared by many directories or commits is walked once.
    if (!reachable.has(treeKey)) {
      await walkDirTree(repo, d.tree, treeKey, reachable, parents, ignoreMissing);
      reachable.add(treeKey);
    }
  }
}

/**
 * Add everything reachable from `commit` to `reachable`, following parents up
 * to `maxDepth`, like `ostree_repo_traverse_commit_with_flags`: a missing
 * commit ends the walk silently (repos are often shallow); in a partial commit
 * (`state/<c>.commitpartial`) missing dirtrees are skipped, elsewhere they are
 * an error. Detached metadata is not part of the set (prune keeps a
 * `.commitmeta` exactly when its commit is kept).
 */
export async function traverseCommit(repo: Repo, commit: string, reachable: ReachableSet, options: TraverseOptions = {}): Promise<void> {
  let depth = options.maxDepth ?? -1;
  let current: string | null = commit;
  while (current !== null) {
    const key = objectKey(current, ObjectType.Commit);
    if (reachable.has(key)) break;
    if (!(await repo.hasObject(current, ObjectType.Commit))) break;
    const ignoreMissing = (await repo.commitPartialState(current)) !== null;
    reachable.add(key);
    let parsed;
    try {
      parsed = await repo.readCommit(current);
    } catch (e) {
      // Undecodable commit: keep it named in the set for fsck, nothing more to follow.
      if (e instanceof CorruptObjectError) break;
      throw e;
    }
    if (!options.commitOnly) {
      const rootTree = await loadDirTreeForWalk(repo, parsed.rootTree);
      if (rootTree === null && !ignoreMissing) throw new ObjectNotFoundError(parsed.rootTree, "dirtree");
      if (rootTree !== null) {
        const metaKey = objectKey(parsed.rootMeta, ObjectType.DirMeta);
        const treeKey = objectKey(parsed.rootTree, ObjectType.DirTree);
        addParent(options.parents, metaKey, key);
        reachable.add(metaKey);
        addParent(options.parents, treeKey, key);
        if (!reachable.has(treeKey)) {
          await walkDirTree(repo, parsed.rootTree, treeKey, reachable, options.parents, ignoreMissing);
          reachable.add(treeKey);
        }
      }
    }
    if (depth === 0 || parsed.parent === null) break;
    if (depth > 0) depth--;
    current = parsed.parent;
  }
}

/** Every object reachable from one commit (convenience wrapper). */
export async function reachableFromCommit(repo: Repo, commit: string, options: TraverseOptions = {}): Promise<ReachableSet> {
  const set: ReachableSet = new Set();
  await traverseCommit(repo, commit, set, options);
  return set;
}

/** The commits whose trees reach `key`, following the parent map up to commits. */
export function parentCommits(parents: ParentMap, key: string): string[] {
  const out = new Set<string>();
  const seen = new Set<string>();
  const stack = [key];
  while (stack.length) {
    const k = stack.pop()!;
    if (seen.has(k)) continue;
    seen.add(k);
    if (k.endsWith(".commit")) {
      out.add(k.slice(0, 64));
      continue;
    }
    for (const p of parents.get(k) ?? []) stack.push(p);
  }
  return [...out];
}
