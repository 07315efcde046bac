import { lstatSync, readdirSync, unlinkSync } from "node:fs";
import { lstat, readdir, readlink, rm, unlink } from "node:fs/promises";
import { join } from "node:path";
import { variant } from "@ostree-ts/gvariant";
import { isChecksum } from "./checksum.js";
import { InvalidArgumentError, ObjectNotFoundError, OstreeError } from "./errors.js";
import { withRepoLock } from "./lock.js";
import { encodeMetadataDict } from "./metadata.js";
import { ObjectType, objectTypeFromName, objectTypeName } from "./object-types.js";
import { listRefs } from "./refs.js";
import { resolveRev } from "./rev.js";
import { atomicWrite, type Repo } from "./repo.js";
import { parseTimestamp } from "./datetime.js";
import { objectKey, traverseCommit, type ReachableSet } from "./traverse.js";

export class PruneError extends OstreeError {
  override name = "PruneError";
}

export interface PruneOptions {
  /** `--refs-only`: only refs make objects reachable (else every commit object does). */
  refsOnly?: boolean;
  /** `--depth`: parents followed from each starting commit; -1 (default) = all. */
  depth?: number;
  /** `--keep-younger-than`: a Date, seconds since the epoch, or a date string. */
  keepYoungerThan?: Date | number | string;
  /** `--only-branch` (repeatable): prune only these refs; the others are kept whole. */
  onlyBranches?: string[];
  /** `--retain-branch-depth=BRANCH=DEPTH` (repeatable), as the raw `BRANCH=DEPTH` strings. */
  retainBranchDepth?: string[];
  /** `--delete-commit`: delete this (unreferenced) commit first. */
  deleteCommit?: string;
  /** `--static-deltas-only` (with deleteCommit): delete only the deltas to that commit. */
  staticDeltasOnly?: boolean;
  /** `--no-prune`: count what would go, delete nothing (static deltas excepted, as in ostree). */
  noPrune?: boolean;
  /** `--commit-only`: only commit objects are traversed and deleted. */
  commitOnly?: boolean;
}

export interface PruneResult {
  /** Objects looked at (all loose objects, or commits with commitOnly). */
  total: number;
  /** Objects deleted (or that would be, with noPrune). */
  pruned: number;
  /** Bytes those objects occupy on disk. */
  freedBytes: number;
  /** Names (`csum.type`) of the objects deleted / that would be. */
  prunedObjects: string[];
  /** Static deltas removed (`FROM-TO` or `TO`). */
  prunedDeltas: string[];
}

/** The object types ostree's loose-object listing sees (commitmeta and tombstones are not among them). */
const LISTED = new Set([ObjectType.File, ObjectType.DirTree, ObjectType.DirMeta, ObjectType.Commit, ObjectType.PayloadLink]);

/** Set `core.tombstone-commits=true` unless it already is (ostree's `ot_enable_tombstone_commits`). */
export async function enableTombstoneCommits(repo: Repo): Promise<void> {
  if (repo.config.getBoolean("core", "tombstone-commits", false)) return;
  repo.config.setString("core", "tombstone-commits", "true");
  await repo.saveConfig();
}

/** The tombstone ostree writes for a deleted commit: `a{sv}` `{'commit': <b'CSUM'>}`. */
export function encodeTombstone(commit: string): Uint8Array {
  const bytes = new Uint8Array(commit.length + 1);
  bytes.set(Buffer.from(commit, "ascii"));
  return encodeMetadataDict([["commit", variant("ay", bytes)]]);
}

/**
 * Delete one loose object as `ostree_repo_delete_object` does: a commit takes
 * its detached metadata with it and, with `core.tombstone-commits`, leaves a
 * tombstone-commit object behind.
 */
export async function deleteObject(repo: Repo, checksum: string, type: ObjectType): Promise<void> {
  if (type === ObjectType.Commit) await rm(repo.objectPath(checksum, ObjectType.CommitMeta), { force: true });
  try {
    // unlink, not rm: rm costs an extra lstat and its recursive machinery for every object.
    await unlink(repo.objectPath(checksum, type));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") throw new ObjectNotFoundError(checksum, objectTypeName(type), "Deleting object");
    throw e;
  }
  if (type === ObjectType.Commit && repo.config.getBoolean("core", "tombstone-commits", false)) {
    await atomicWrite(repo.tmpDir, repo.objectPath(checksum, ObjectType.TombstoneCommit), encodeTombstone(checksum), false);
  }
}

/** Static delta names (`FROM-TO` or `TO`, hex) found under `deltas/`. */
export async function listStaticDeltaNames(repo: Repo): Promise<string[]> {
  const root = join(repo.path, "deltas");
  const out: string[] = [];
  let prefixes: string[];
  try {
    prefixes = await readdir(root);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return out;
    throw e;
  }
  for (const p of prefixes.sort()) {
    if (p.length !== 2) continue;
    let names: string[];
    try {
      names = await readdir(join(root, p));
    } catch {
      continue;
    }
    for (const n of names.sort()) {
      try {
        await lstat(join(root, p, n, "superblock"));
      } catch {
        continue;
      }
      const name = decodeDeltaDirName(p + n);
      if (name) out.push(name);
    }
  }
  return out;
}

/** `deltas/` directory names use ostree's modified base64 ('_' for '/'); `FROM-TO` joins two. */
function decodeDeltaDirName(b64name: string): string | null {
  const part = (s: string) => {
    if (s.length !== 43) return null;
    const hex = Buffer.from(s.replace(/_/g, "/") + "=", "base64").toString("hex");
    return isChecksum(hex) ? hex : null;
  };
  const dash = b64name.indexOf("-");
  if (dash < 0) return part(b64name);
  const from = part(b64name.slice(0, dash));
  const to = part(b64name.slice(dash + 1));
  return from && to ? `${from}-${to}` : null;
}

function encodeB64Checksum(hex: string): string {
  return Buffer.from(hex, "hex").toString("base64").replace(/=+$/, "").replace(/\//g, "_");
}

/** Relative directory of a delta: `deltas/XX/REST` of the modified-base64 name. */
export function staticDeltaDir(name: string): string {
  const dash = name.indexOf("-");
  const b64 = dash < 0 ? encodeB64Checksum(name) : `${encodeB64Checksum(name.slice(0, dash))}-${encodeB64Checksum(name.slice(dash + 1))}`;
  return join("deltas", b64.slice(0, 2), b64.slice(2));
}

/**
 * `ostree_repo_prune_static_deltas`: with `commit`, delete the deltas ending
 * at it; without, those whose target commit is gone.
 */
export async function pruneStaticDeltas(repo: Repo, commit: string | null): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await listStaticDeltaNames(repo)) {
    const to = name.includes("-") ? name.slice(name.indexOf("-") + 1) : name;
    if (commit !== null ? to !== commit : await repo.hasObject(to, ObjectType.Commit)) continue;
    await rm(join(repo.path, staticDeltaDir(name)), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}

/** Size of a loose object's file (ostree_repo_query_object_storage_size); 0 when absent. */
export async function objectStorageSize(repo: Repo, checksum: string, type: ObjectType): Promise<number> {
  try {
    return (await lstat(repo.objectPath(checksum, type))).size;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return 0;
    throw e;
  }
}

const HEX2 = /^[0-9a-f]{2}$/;
const HEX62 = /^[0-9a-f]{62}$/;

/**
 * Loose objects prune considers: ostree's listing (commits only with
 * commitOnly), in Repo.listObjects' order. Synchronous readdir of the 256
 * fan-out directories: a threadpool round trip each costs more than the call.
 */
function listPrunable(repo: Repo, commitOnly: boolean): Array<{ checksum: string; type: ObjectType }> {
  const out: Array<{ checksum: string; type: ObjectType }> = [];
  const objects = join(repo.path, "objects");
  for (const prefix of readdirSync(objects).filter((p) => HEX2.test(p)).sort()) {
    for (const name of readdirSync(join(objects, prefix)).sort()) {
      if (name.charCodeAt(62) !== 0x2e /* '.' */) continue;
      const ext = name.slice(63);
      const type = ext === "filez" ? ObjectType.File : objectTypeFromName(ext);
      if (type === undefined || !(commitOnly ? type === ObjectType.Commit : LISTED.has(type))) continue;
      const rest = name.slice(0, 62);
      if (HEX62.test(rest)) out.push({ checksum: prefix + rest, type });
    }
  }
  return out;
}

/** deleteObject for a non-commit object, synchronously. */
function unlinkObjectSync(path: string, checksum: string, type: ObjectType): void {
  try {
    unlinkSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") throw new ObjectNotFoundError(checksum, objectTypeName(type), "Deleting object");
    throw e;
  }
}

/**
 * Delete every listed object not in `reachable` (`ostree_repo_prune_from_reachable`),
 * then the static deltas whose target commit is gone.
 */
export async function pruneFromReachable(repo: Repo, reachable: ReachableSet, options: { noPrune?: boolean; commitOnly?: boolean } = {}): Promise<PruneResult> {
  return withRepoLock(repo, "exclusive", async () => {
    const objects = listPrunable(repo, options.commitOnly ?? false);
    const result: PruneResult = { total: objects.length, pruned: 0, freedBytes: 0, prunedObjects: [], prunedDeltas: [] };
    const threshold = repo.config.getInteger("core", "payload-link-threshold", -1);
    for (const { checksum, type } of objects) {
      const key = objectKey(checksum, type);
      if (reachable.has(key)) continue;
      if (!options.noPrune && type === ObjectType.PayloadLink && threshold >= 0) {
        // A payload link survives while the file it points to is kept and large enough.
        const target = await readlink(repo.objectPath(checksum, type));
        const t = target.slice(3, 5) + target.slice(6, 68);
        if (reachable.has(objectKey(t, ObjectType.File)) && (await objectStorageSize(repo, t, ObjectType.File)) >= threshold) continue;
      }
      // Synchronous: thousands of small metadata calls, each cheaper than a threadpool round trip.
      const path = repo.objectPath(checksum, type);
      result.freedBytes += lstatSync(path, { throwIfNoEntry: false })?.size ?? 0;
      if (!options.noPrune) {
        if (type === ObjectType.Commit) {
          await repo.clearCommitPartial(checksum);
          await deleteObject(repo, checksum, type);
        } else {
          unlinkObjectSync(path, checksum, type);
        }
      }
      result.pruned++;
      result.prunedObjects.push(key);
    }
    result.prunedDeltas = await pruneStaticDeltas(repo, null);
    return result;
  });
}

/** Parse `--keep-younger-than` as `commit --timestamp` reads dates (parseTimestamp: absolute and relative forms). */
export function parseDateSpec(spec: string, now = new Date()): Date {
  try {
    return new Date(parseTimestamp(spec, now) * 1000);
  } catch {
    throw new PruneError(`Could not parse '${spec}'`);
  }
}

function toEpochSeconds(v: Date | number | string): number {
  if (typeof v === "number") return v;
  const d = typeof v === "string" ? parseDateSpec(v) : v;
  return Math.floor(d.getTime() / 1000);
}

/** Keep the ref's commit, then its ancestors while they are at least as new as `ts`. */
async function traverseKeepYoungerThan(repo: Repo, checksum: string, ts: number, reachable: ReachableSet, commitOnly: boolean): Promise<void> {
  await traverseCommit(repo, checksum, reachable, { maxDepth: 0, commitOnly });
  let next: string | null = checksum;
  while (next !== null) {
    if (!(await repo.hasObject(next, ObjectType.Commit))) break;
    const commit = await repo.readCommit(next);
    if (commit.timestamp < ts) break;
    await traverseCommit(repo, next, reachable, { maxDepth: 0, commitOnly });
    next = commit.parent;
  }
}

/** `prune --delete-commit`: refuse a referenced commit, turn on tombstones, delete it. */
async function deleteCommitChecked(repo: Repo, commit: string): Promise<void> {
  const refs = await listRefs(repo, { heads: true, remotes: true, mirrors: true });
  for (const r of refs) if (r.ns.kind !== "mirror" && r.checksum === commit) throw new PruneError(`Commit '${commit}' is referenced by '${r.refspec}'`);
  const main = repo.config.getString("core", "collection-id");
  for (const r of refs) {
    if (r.checksum !== commit) continue;
    if (r.ns.kind === "mirror") throw new PruneError(`Commit '${commit}' is referenced by (${r.ns.collectionId}, ${r.ref})`);
  }
  void main;
  await enableTombstoneCommits(repo);
  await deleteObject(repo, commit, ObjectType.Commit);
}

/** The refs ostree starts prune's reachability from (heads, remotes and mirrors). */
async function startingRefs(repo: Repo): Promise<Array<{ refspec: string; checksum: string }>> {
  return (await listRefs(repo, { heads: true, remotes: true, mirrors: true })).map((r) => ({ refspec: r.refspec, checksum: r.checksum }));
}

/** `ostree prune` with the same option semantics (and quirks) as ostree 2022.7. */
export async function prune(repo: Repo, options: PruneOptions = {}): Promise<PruneResult> {
  const depth = options.depth ?? -1;
  const commitOnly = options.commitOnly ?? false;
  if (options.deleteCommit !== undefined) {
    if (options.noPrune) throw new InvalidArgumentError("Cannot specify both --delete-commit and --no-prune");
    if (options.staticDeltasOnly) await withRepoLock(repo, "exclusive", () => pruneStaticDeltas(repo, options.deleteCommit!));
    else await deleteCommitChecked(repo, options.deleteCommit);
  } else if (options.staticDeltasOnly) {
    throw new PruneError("--static-deltas-only requires --delete-commit; see https://github.com/ostreedev/ostree/issues/1479");
  }

  return withRepoLock(repo, "exclusive", async () => {
    const reachable: ReachableSet = new Set();
    const complex = options.retainBranchDepth?.length || options.keepYoungerThan !== undefined || options.onlyBranches?.length;
    if (!complex) {
      if (options.refsOnly) {
        for (const r of await startingRefs(repo)) await traverseCommit(repo, r.checksum, reachable, { maxDepth: depth, commitOnly });
      } else {
        for (const o of listPrunable(repo, true)) await traverseCommit(repo, o.checksum, reachable, { maxDepth: depth, commitOnly });
      }
      return pruneFromReachable(repo, reachable, { noPrune: options.noPrune, commitOnly });
    }

    const ts = options.keepYoungerThan !== undefined ? toEpochSeconds(options.keepYoungerThan) : undefined;
    const retain = new Map<string, number>();
    for (const bd of options.retainBranchDepth ?? []) {
      const eq = bd.indexOf("=");
      if (eq < 0) throw new PruneError(`Invalid value ${bd}, must specify BRANCH=DEPTH`);
      const m = /^\s*[+-]?\d+/.exec(bd.slice(eq + 1));
      if (!m) throw new PruneError(`Invalid depth ${bd.slice(eq + 1)}`);
      retain.set(bd.slice(0, eq), Number(m[0]));
    }
    // Heads and remote refs only here, as ostree's list_refs (no mirrors).
    const refs = (await listRefs(repo, { heads: true, remotes: true, mirrors: false })).map((r) => ({ refspec: r.refspec, checksum: r.checksum }));
    if (options.onlyBranches?.length) {
      for (const b of options.onlyBranches) await resolveRev(repo, b);
      const only = new Set(options.onlyBranches);
      for (const r of refs) if (!only.has(r.refspec) && !retain.has(r.refspec)) retain.set(r.refspec, -1);
    }
    for (const r of refs) {
      // ostree stores depths as hash-table pointers, so a depth of 0 reads back as "not set".
      const d = retain.get(r.refspec);
      if (d !== undefined && d !== 0) {
        await traverseCommit(repo, r.checksum, reachable, { maxDepth: d, commitOnly });
      } else if (ts !== undefined) {
        await traverseKeepYoungerThan(repo, r.checksum, ts, reachable, commitOnly);
      } else {
        await traverseCommit(repo, r.checksum, reachable, { maxDepth: depth, commitOnly });
      }
    }
    return pruneFromReachable(repo, reachable, { noPrune: options.noPrune, commitOnly });
  });
}

/** GLib's `g_format_size` (SI units, one decimal): "0 bytes", "1 byte", "12.3 kB". */
export function formatSize(bytes: number): string {
  if (bytes < 1000) return bytes === 1 ? "1 byte" : `${bytes} bytes`;
  const units = ["kB", "MB", "GB", "TB", "PB", "EB"];
  let factor = 1000;
  let i = 0;
  while (i < units.length - 1 && bytes >= factor * 1000) {
    factor *= 1000;
    i++;
  }
  return `${toFixed1(bytes / factor)}\u00a0${units[i]}`;
}

/** printf's "%.1f": like toFixed(1) but exact ties round to even, as glibc does. */
function toFixed1(x: number): string {
  const scaled = x * 10;
  if (Number.isInteger(scaled * 2) && !Number.isInteger(scaled)) {
    const down = Math.floor(scaled);
    return ((down % 2 === 0 ? down : down + 1) / 10).toFixed(1);
  }
  return x.toFixed(1);
}

/** The lines `ostree prune` prints for a result. */
export function formatPruneResult(result: PruneResult, options: { noPrune?: boolean; commitOnly?: boolean } = {}): string[] {
  const lines = [options.commitOnly ? `Total (commit only) objects: ${result.total}` : `Total objects: ${result.total}`];
  if (result.pruned === 0) lines.push("No unreachable objects");
  else if (options.noPrune) lines.push(`Would delete: ${result.pruned} objects, freeing ${formatSize(result.freedBytes)}`);
  else lines.push(`Deleted ${result.pruned} objects, ${formatSize(result.freedBytes)} freed`);
  return lines;
}
