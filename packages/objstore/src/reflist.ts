/**
 * Ref listings in ostree's exact order. ostree walks refs/ with readdir and
 * collects into a GHashTable, then prints in table order; we read directories
 * unsorted (opendir, as readdir returns them) and replay the table.
 */
import { existsSync, opendirSync, readFileSync, readlinkSync, statSync, type Dirent } from "node:fs";
import { join, relative } from "node:path";
import { InvalidNameError, RefError } from "./errors.js";
import { GStrHashMap, gStrHash } from "./ghash.js";
import { validateCollectionId } from "./refs.js";
import { parseRefspec } from "./rev.js";

const FRAGMENT = /^[\p{L}\p{N}_][-._\p{L}\p{N}_]*$/u;

const STRERROR: Record<string, string> = { ENOENT: "No such file or directory", ENOTDIR: "Not a directory", EACCES: "Permission denied" };

/** Thrown inside the walk; the caller prefixes "Listing refs: " like ostree. */
class OpendirError extends RefError {}

function readdirRaw(repoPath: string, dir: string): Dirent[] {
  let d;
  try {
    d = opendirSync(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? "";
    throw new OpendirError(`opendir(${relative(repoPath, dir)}): ${STRERROR[code] ?? code}`);
  }
  const out: Dirent[] = [];
  try {
    for (let e = d.readSync(); e !== null; e = d.readSync()) out.push(e);
  } finally {
    d.closeSync();
  }
  return out;
}

function refContents(path: string): string {
  return readFileSync(path, "utf8").replace(/\s+$/, "");
}

function enumerate(repoPath: string, table: { set(key: string, value: string): unknown }, remote: string | null, baseDir: string, basePath: string, dir: string, aliasesOnly: boolean): void {
  for (const e of readdirRaw(repoPath, dir)) {
    if (!FRAGMENT.test(e.name)) continue;
    const rel = basePath + e.name;
    const full = join(dir, e.name);
    if (e.isDirectory()) {
      enumerate(repoPath, table, remote, baseDir, `${rel}/`, full, aliasesOnly);
    } else if (aliasesOnly && e.isSymbolicLink()) {
      let target = readlinkSync(join(baseDir, rel));
      while (target.startsWith("../")) target = target.slice(3);
      table.set(rel, target);
    } else if ((!aliasesOnly && e.isFile()) || e.isSymbolicLink()) {
      table.set(remote ? `${remote}:${rel}` : rel, refContents(join(baseDir, rel)));
    }
  }
}

export interface OrderedRefsOptions {
  /** ostree_repo_list_refs strips the prefix; list_refs_ext (`refs --list`) keeps it. */
  cutPrefix: boolean;
  /** Only aliases (symlinks in refs/heads), mapped to their target ref. */
  aliasesOnly?: boolean;
  excludeRemotes?: boolean;
}

/**
 * _ostree_repo_list_refs_internal: refspec → checksum (or alias → target) in
 * the iteration order of ostree's GHashTable, which is what `ostree refs` prints.
 */
export function listRefsOrdered(repoPath: string, refspecPrefix: string | null, opts: OrderedRefsOptions): GStrHashMap<string> {
  const table = new GStrHashMap<string>();
  const aliasesOnly = opts.aliasesOnly ?? false;
  try {
    if (refspecPrefix !== null) {
      let remote: string | null = null;
      let refPrefix: string | null = null;
      if (refspecPrefix.endsWith(":") || refspecPrefix.endsWith(":.")) {
        const r = refspecPrefix.slice(0, refspecPrefix.lastIndexOf(":"));
        if (FRAGMENT.test(r)) {
          remote = r;
          refPrefix = ".";
        }
      }
      if (refPrefix === null) ({ remote, ref: refPrefix } = parseRefspec(refspecPrefix));
      const prefixPath = !opts.excludeRemotes && remote ? `refs/remotes/${remote}/` : "refs/heads/";
      const path = join(repoPath, prefixPath + refPrefix);
      let st;
      try {
        st = statSync(path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") return table;
        throw e;
      }
      if (st.isDirectory()) {
        if (opts.cutPrefix) enumerate(repoPath, table, remote, path, "", path, aliasesOnly);
        else enumerate(repoPath, table, remote, join(repoPath, prefixPath), `${refPrefix}/`, path, aliasesOnly);
      } else {
        table.set(remote ? `${remote}:${refPrefix}` : refPrefix!, refContents(path));
      }
      return table;
    }
    const heads = join(repoPath, "refs/heads");
    enumerate(repoPath, table, null, heads, "", heads, aliasesOnly);
    if (!opts.excludeRemotes) {
      const remotes = join(repoPath, "refs/remotes");
      for (const e of readdirRaw(repoPath, remotes)) {
        if (!e.isDirectory()) continue;
        const dir = join(remotes, e.name);
        enumerate(repoPath, table, e.name, dir, "", dir, aliasesOnly);
      }
    }
    return table;
  } catch (e) {
    if (e instanceof InvalidNameError) throw new InvalidNameError(`Listing refs: ${e.message}`);
    if (e instanceof OpendirError) throw new RefError(`Listing refs: ${e.message}`);
    throw e;
  }
}

/** A ref with the collection it belongs to, as `ostree refs --collections` lists it. */
export interface CollectionRefEntry {
  collectionId: string;
  ref: string;
  checksum: string;
}

/** ostree_collection_ref_hash: the XOR of the two g_str_hash values. */
const collectionRefHash = (key: string): number => {
  const nul = key.indexOf("\0");
  return (gStrHash(key.slice(0, nul)) ^ gStrHash(key.slice(nul + 1))) >>> 0;
};

/**
 * ostree_repo_list_collection_refs: refs/heads under the repo's own collection ID
 * (only when it has one), refs/mirrors/<collection-id>, and refs/remotes/<remote>
 * of remotes with a valid collection ID, in ostree's table order. `match` keeps one
 * collection ID (an exact match, validated, not a prefix).
 */
export function listCollectionRefsOrdered(
  repoPath: string,
  mainCollectionId: string | undefined,
  remoteCollectionIds: ReadonlyMap<string, string>,
  match: string | null,
): CollectionRefEntry[] {
  const table = new GStrHashMap<CollectionRefEntry>(collectionRefHash);
  const add = (collectionId: string, dir: string) => {
    // Straight into the one table, in readdir order, as ostree inserts them.
    const sink = { set: (ref: string, checksum: string) => table.set(`${collectionId}\0${ref}`, { collectionId, ref, checksum }) };
    enumerate(repoPath, sink, null, dir, "", dir, false);
  };
  try {
    if (match !== null) validateCollectionId(match);
    if (mainCollectionId !== undefined && (match === null || match === mainCollectionId)) add(mainCollectionId, join(repoPath, "refs/heads"));
    // Older repositories have no refs/mirrors (nor, rarely, refs/remotes): nothing to list there.
    const subdirs = (dir: string) => (existsSync(join(repoPath, dir)) ? readdirRaw(repoPath, join(repoPath, dir)).filter((e) => e.isDirectory()) : []);
    for (const e of subdirs("refs/mirrors")) {
      if (match === null || match === e.name) add(e.name, join(repoPath, "refs/mirrors", e.name));
    }
    for (const e of subdirs("refs/remotes")) {
      const cid = remoteCollectionIds.get(e.name);
      if (cid === undefined || !isValidCollectionId(cid)) continue; // as ostree: such remotes are skipped
      if (match === null || match === cid) add(cid, join(repoPath, "refs/remotes", e.name));
    }
  } catch (e) {
    if (e instanceof InvalidNameError) throw new InvalidNameError(`Listing refs: ${e.message}`);
    if (e instanceof OpendirError) throw new RefError(`Listing refs: ${e.message}`);
    throw e;
  }
  return table.entries().map(([, v]) => v);
}

function isValidCollectionId(id: string): boolean {
  try {
    validateCollectionId(id);
    return true;
  } catch {
    return false;
  }
}
