import type { Dir } from "node:fs";
import { lstat, opendir } from "node:fs/promises";
import { join } from "node:path";
import { encodeDirMeta, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, sha256Hex, type Repo } from "@ostree-ts/objstore";
import { errnoError } from "./errors.js";
import { checksumPath, getXattrs } from "./fsutil.js";
import { checkUniqueNames, probeFile, resolveCommit } from "./tree.js";

export interface DiffOptions {
  /** `--no-xattrs`: ignore extended attributes (always so for bare-user-only repos and `core.disable-xattrs`). */
  noXattrs?: boolean;
  /** `--owner-uid` / `--owner-gid`: pretend every local file has this owner. */
  ownerUid?: number;
  ownerGid?: number;
}

export interface DiffResult {
  /** Paths inside the commit (`/a/b`), in ostree's order. */
  modified: string[];
  removed: string[];
  /** Paths relative to the directory (`a/b`), in directory-read order as ostree prints them. */
  added: string[];
}

/** Same lines as a commit-to-commit diff (`M    /path`, `D    /path`, `A    path`). */
export { formatDiff } from "@ostree-ts/objstore";

function typeOfMode(mode: number): "dir" | "file" | "symlink" | "other" {
  switch (mode & S_IFMT) {
    case S_IFDIR:
      return "dir";
    case S_IFREG:
      return "file";
    case S_IFLNK:
      return "symlink";
    default:
      return "other";
  }
}

/** GLib's local enumerator reads this many entries at a time and sorts each batch by inode. */
const GLIB_CHUNK = 1000;

/** Names of a directory in the order GLib's enumerator yields them (what `ostree diff` prints). */
async function readdirRaw(path: string): Promise<string[]> {
  let dir: Dir;
  try {
    dir = await opendir(path);
  } catch (e) {
    // GLib's local enumerator wording (straight quotes, unlike its query-info errors).
    throw errnoError(`Error opening directory '${path}'`, e);
  }
  const names: string[] = [];
  for await (const ent of dir) names.push(ent.name);
  const out: string[] = [];
  for (let i = 0; i < names.length; i += GLIB_CHUNK) {
    const chunk = await Promise.all(
      names.slice(i, i + GLIB_CHUNK).map(async (name) => ({ name, ino: (await lstat(join(path, name), { bigint: true })).ino })),
    );
    // sort_by_inode returns the difference truncated to int; mirror that, quirks included.
    chunk.sort((a, b) => Number(BigInt.asIntN(32, a.ino - b.ino)));
    for (const c of chunk) out.push(c.name);
  }
  return out;
}

/** The commit and directory sides of a commit/directory diff, checked as ostree does before it compares. */
async function openCommitAndDir(repo: Repo, rev: string, dir: string, options: DiffOptions) {
  const commit = await resolveCommit(repo, rev);
  const c = await repo.readCommit(commit);
  const ignoreXattrs = !!options.noXattrs || repo.mode === "bare-user-only" || repo.config.getBoolean("core", "disable-xattrs", false);
  try {
    await lstat(dir);
  } catch (e) {
    throw errnoError(`Error when getting information for file “${dir}”`, e);
  }
  return { c, ignoreXattrs };
}

/**
 * Compare a commit (left, "a") with a directory on disk (right, "b") the way
 * `ostree diff REV DIR` does: files by content checksum (including
 * ownership, mode and xattrs), directories by their dirmeta, and a change of
 * type as modified. Removed directories are listed once; added directories
 * are listed with everything below them.
 */
export async function diffCommitToDir(repo: Repo, rev: string, dir: string, options: DiffOptions = {}): Promise<DiffResult> {
  const { c, ignoreXattrs } = await openCommitAndDir(repo, rev, dir, options);
  const result: DiffResult = { modified: [], removed: [], added: [] };

  const localOwner = (st: { uid: number; gid: number }) => ({ uid: options.ownerUid ?? st.uid, gid: options.ownerGid ?? st.gid });

  async function addAll(abs: string, rel: string): Promise<void> {
    for (const name of await readdirRaw(abs)) {
      const childRel = rel ? `${rel}/${name}` : name;
      result.added.push(childRel);
      if ((await lstat(join(abs, name))).isDirectory()) await addAll(join(abs, name), childRel);
    }
  }

  async function cmpDir(tree: string, abs: string, commitPath: string, rel: string): Promise<void> {
    const t = await repo.readDirTree(tree);
    checkUniqueNames(t, tree);
    const inCommit = new Set<string>();
    const child = (name: string) => (commitPath === "/" ? `/${name}` : `${commitPath}/${name}`);
    const entries: Array<{ name: string; file?: string; dir?: { tree: string; meta: string } }> = [
      ...t.files.map((f) => ({ name: f.name, file: f.checksum })),
      ...t.dirs.map((d) => ({ name: d.name, dir: { tree: d.tree, meta: d.meta } })),
    ];
    for (const e of entries) {
      inCommit.add(e.name);
      const localPath = join(abs, e.name);
      let st;
      try {
        st = await lstat(localPath);
      } catch (err) {
        // Only ENOENT means removed: ENOTDIR (DIR is a file) is an error, as in ostree.
        if ((err as NodeJS.ErrnoException).code === "ENOENT") {
          result.removed.push(child(e.name));
          continue;
        }
        throw errnoError(`Error when getting information for file “${localPath}”`, err);
      }
      const owner = localOwner(st);
      const localType = typeOfMode(st.mode);
      if (e.file) {
        const p = await probeFile(repo, e.file);
        const repoType = (p.meta.mode & S_IFMT) === S_IFLNK ? "symlink" : "file";
        if (repoType !== localType) {
          result.modified.push(child(e.name));
          continue;
        }
        const local = await checksumPath(localPath, st, { ignoreXattrs, uid: owner.uid, gid: owner.gid });
        if (local !== e.file) result.modified.push(child(e.name));
      } else if (e.dir) {
        if (localType !== "dir") {
          result.modified.push(child(e.name));
          continue;
        }
        const xattrs = ignoreXattrs ? [] : await getXattrs(localPath);
        const localMeta = sha256Hex(encodeDirMeta({ uid: owner.uid, gid: owner.gid, mode: st.mode, xattrs }));
        if (localMeta !== e.dir.meta) result.modified.push(child(e.name));
        await cmpDir(e.dir.tree, localPath, child(e.name), rel ? `${rel}/${e.name}` : e.name);
      }
    }
    for (const name of await readdirRaw(abs)) {
      if (inCommit.has(name)) continue;
      const childRel = rel ? `${rel}/${name}` : name;
      result.added.push(childRel);
      if ((await lstat(join(abs, name))).isDirectory()) await addAll(join(abs, name), childRel);
    }
  }

  // No directory check here: as in ostree, a DIR that is a file fails on its first lookup or listing.
  await cmpDir(c.rootTree, dir, "/", "");
  return result;
}

/**
 * Compare a directory on disk (left, "a") with a commit (right, "b") the way
 * `ostree diff DIR REV` does. The mirror of diffCommitToDir: entries only on
 * disk are removed, entries only in the commit are added (with everything
 * below them, in the commit's order: files, then directories). Modified and
 * removed paths are relative to DIR, added ones are commit paths (`/a/b`).
 * `ownerUid`/`ownerGid` change nothing here: ostree applies them to the
 * second tree, which is the commit.
 */
export async function diffDirToCommit(dir: string, repo: Repo, rev: string, options: DiffOptions = {}): Promise<DiffResult> {
  const { c, ignoreXattrs } = await openCommitAndDir(repo, rev, dir, options);
  const result: DiffResult = { modified: [], removed: [], added: [] };

  async function addTree(tree: string, commitPath: string): Promise<void> {
    const t = await repo.readDirTree(tree);
    checkUniqueNames(t, tree);
    for (const f of t.files) result.added.push(`${commitPath}/${f.name}`);
    for (const d of t.dirs) {
      result.added.push(`${commitPath}/${d.name}`);
      await addTree(d.tree, `${commitPath}/${d.name}`);
    }
  }

  async function cmpDir(abs: string, rel: string, tree: string, commitPath: string): Promise<void> {
    const t = await repo.readDirTree(tree);
    checkUniqueNames(t, tree);
    const files = new Map(t.files.map((f) => [f.name, f.checksum]));
    const dirs = new Map(t.dirs.map((d) => [d.name, d]));
    const onDisk = new Set<string>();
    for (const name of await readdirRaw(abs)) {
      onDisk.add(name);
      const localPath = join(abs, name);
      const childRel = rel ? `${rel}/${name}` : name;
      const file = files.get(name);
      const sub = dirs.get(name);
      if (file === undefined && sub === undefined) {
        result.removed.push(childRel);
        continue;
      }
      let st;
      try {
        st = await lstat(localPath);
      } catch (err) {
        throw errnoError(`Error when getting information for file “${localPath}”`, err);
      }
      const localType = typeOfMode(st.mode);
      if (file !== undefined) {
        const p = await probeFile(repo, file);
        const repoType = (p.meta.mode & S_IFMT) === S_IFLNK ? "symlink" : "file";
        if (repoType !== localType) result.modified.push(childRel);
        else if ((await checksumPath(localPath, st, { ignoreXattrs, uid: st.uid, gid: st.gid })) !== file) result.modified.push(childRel);
      } else if (sub !== undefined) {
        if (localType !== "dir") {
          result.modified.push(childRel);
          continue;
        }
        const xattrs = ignoreXattrs ? [] : await getXattrs(localPath);
        if (sha256Hex(encodeDirMeta({ uid: st.uid, gid: st.gid, mode: st.mode, xattrs })) !== sub.meta) result.modified.push(childRel);
        await cmpDir(localPath, childRel, sub.tree, `${commitPath}/${name}`);
      }
    }
    for (const f of t.files) if (!onDisk.has(f.name)) result.added.push(`${commitPath}/${f.name}`);
    for (const d of t.dirs) {
      if (onDisk.has(d.name)) continue;
      result.added.push(`${commitPath}/${d.name}`);
      await addTree(d.tree, `${commitPath}/${d.name}`);
    }
  }

  await cmpDir(dir, "", c.rootTree, "");
  return result;
}

/**
 * Compare two directories on disk the way `ostree diff DIR DIR` does: files
 * by the content checksum they would get (ownership, mode, xattrs unless
 * `noXattrs`), directories by their dirmeta, a change of type as modified.
 * `ownerUid`/`ownerGid` apply to the second tree only, as in ostree.
 * Every path is relative to its own side, as ostree prints local files.
 */
export async function diffDirs(a: string, b: string, options: DiffOptions = {}): Promise<DiffResult> {
  const ignoreXattrs = !!options.noXattrs;
  // Only existence is checked first: as in ostree, a side that is a file fails on its first lookup or listing.
  for (const d of [a, b]) {
    try {
      await lstat(d);
    } catch (e) {
      throw errnoError(`Error when getting information for file “${d}”`, e);
    }
  }
  const result: DiffResult = { modified: [], removed: [], added: [] };
  const owner = (st: { uid: number; gid: number }, side: "a" | "b") =>
    side === "a" ? { uid: st.uid, gid: st.gid } : { uid: options.ownerUid ?? st.uid, gid: options.ownerGid ?? st.gid };
  const dirMeta = async (path: string, st: { uid: number; gid: number; mode: number }, side: "a" | "b") =>
    sha256Hex(encodeDirMeta({ ...owner(st, side), mode: st.mode, xattrs: ignoreXattrs ? [] : await getXattrs(path) }));

  async function addAll(abs: string, rel: string): Promise<void> {
    for (const name of await readdirRaw(abs)) {
      const childRel = `${rel}/${name}`;
      result.added.push(childRel);
      if ((await lstat(join(abs, name))).isDirectory()) await addAll(join(abs, name), childRel);
    }
  }

  async function cmpDir(absA: string, absB: string, rel: string): Promise<void> {
    const child = (name: string) => (rel ? `${rel}/${name}` : name);
    const inA = new Set<string>();
    for (const name of await readdirRaw(absA)) {
      inA.add(name);
      const pathA = join(absA, name);
      const pathB = join(absB, name);
      const stA = await lstat(pathA);
      let stB;
      try {
        stB = await lstat(pathB);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "ENOENT") {
          result.removed.push(child(name));
          continue;
        }
        throw errnoError(`Error when getting information for file “${pathB}”`, err);
      }
      const typeA = typeOfMode(stA.mode);
      if (typeA !== typeOfMode(stB.mode)) {
        result.modified.push(child(name));
        continue;
      }
      if (typeA === "dir") {
        if ((await dirMeta(pathA, stA, "a")) !== (await dirMeta(pathB, stB, "b"))) result.modified.push(child(name));
        await cmpDir(pathA, pathB, child(name));
        continue;
      }
      const sumA = await checksumPath(pathA, stA, { ignoreXattrs, ...owner(stA, "a") });
      const sumB = await checksumPath(pathB, stB, { ignoreXattrs, ...owner(stB, "b") });
      if (sumA !== sumB) result.modified.push(child(name));
    }
    for (const name of await readdirRaw(absB)) {
      if (inA.has(name)) continue;
      result.added.push(child(name));
      if ((await lstat(join(absB, name))).isDirectory()) await addAll(join(absB, name), child(name));
    }
  }

  await cmpDir(a, b, "");
  return result;
}
