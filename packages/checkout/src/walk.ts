import { mapLimit, S_IFLNK, S_IFMT, type Repo, type Xattrs } from "@ostree-ts/objstore";
import { getXattrs } from "./fsutil.js";
import { checkUniqueNames, probeFile, resolveCommit, resolveSubpath } from "./tree.js";

export interface WalkEntry {
  /** Absolute path inside the commit (`/`, `/usr/bin/sh`). */
  path: string;
  type: "dir" | "file" | "symlink";
  /** Full st_mode including the type bits. */
  mode: number;
  uid: number;
  gid: number;
  /** Payload size for regular files; 0 for directories and symlinks. */
  size: number;
  /** Content checksum (files, symlinks) or dirtree checksum (directories). */
  checksum: string;
  /** dirmeta checksum (directories only). */
  metaChecksum?: string;
  /** Symlink target; "" otherwise. */
  symlinkTarget: string;
  xattrs: Xattrs;
}

export interface WalkOptions {
  subpath?: string;
  /** Descend into subdirectories (default true); false lists one level like `ostree ls` without -R. */
  recursive?: boolean;
  /** Concurrent object reads per directory (default 16). */
  concurrency?: number;
}

/**
 * Every entry of a commit (or of `subpath`) in `ostree ls -R` order: a
 * directory, then its files in dirtree order, then each subdirectory in turn.
 * Only one directory's file metadata is held at a time.
 */
export async function* walk(repo: Repo, rev: string, options: WalkOptions = {}): AsyncGenerator<WalkEntry> {
  const commit = await resolveCommit(repo, rev);
  const resolved = await resolveSubpath(repo, commit, options.subpath);
  const base = options.subpath ? `/${options.subpath.split("/").filter((p) => p !== "" && p !== ".").join("/")}` : "/";
  const limit = options.concurrency ?? 16;
  if (resolved.kind === "file") {
    yield await fileEntry(repo, resolved.checksum, base);
    return;
  }
  const join = (dir: string, name: string) => (dir === "/" ? `/${name}` : `${dir}/${name}`);

  async function* dir(path: string, tree: string, meta: string, descend: boolean): AsyncGenerator<WalkEntry> {
    const [t, m] = await Promise.all([repo.readDirTree(tree), repo.readDirMeta(meta)]);
    checkUniqueNames(t, tree);
    yield { path, type: "dir", mode: m.mode, uid: m.uid, gid: m.gid, size: 0, checksum: tree, metaChecksum: meta, symlinkTarget: "", xattrs: m.xattrs };
    if (!descend) return;
    const files = await mapLimit(t.files, limit, (f) => fileEntry(repo, f.checksum, join(path, f.name)));
    yield* files;
    for (const d of t.dirs) yield* dir(join(path, d.name), d.tree, d.meta, options.recursive ?? true);
  }
  yield* dir(base, resolved.tree, resolved.meta, true);
}

async function fileEntry(repo: Repo, checksum: string, path: string): Promise<WalkEntry> {
  const p = await probeFile(repo, checksum);
  const xattrs = p.xattrsLoaded ? p.meta.xattrs : await getXattrs(p.objectPath);
  const isLink = (p.meta.mode & S_IFMT) === S_IFLNK;
  return {
    path,
    type: isLink ? "symlink" : "file",
    mode: p.meta.mode,
    uid: p.meta.uid,
    gid: p.meta.gid,
    size: p.size,
    checksum,
    symlinkTarget: p.meta.symlinkTarget,
    xattrs,
  };
}
