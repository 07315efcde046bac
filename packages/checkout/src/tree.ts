import { lstat, open, readFile, readlink } from "node:fs/promises";
import { posix } from "node:path";
import { getAttribute } from "@napi-rs/xattr";
import {
  CorruptObjectError,
  decodeFilezHeader,
  decodeOstreeMeta,
  isChecksum,
  ObjectNotFoundError,
  ObjectType,
  resolveRev,
  S_IFLNK,
  S_IFMT,
  unframe,
  type DirTree,
  type FileMeta,
  type Repo,
} from "@ostree-ts/objstore";
import { CheckoutError, UnsafePathError } from "./errors.js";

/** A file's metadata as found in the store, without reading its payload. */
export interface ProbedFile {
  checksum: string;
  /** Path of the stored object (`.file` or `.filez`). */
  objectPath: string;
  meta: FileMeta;
  /** Uncompressed payload size (0 for symlinks). */
  size: number;
  /** Bare-mode xattrs are read only on request (copies, walks); others come with the header. */
  xattrsLoaded: boolean;
}

function sizeOf(meta: FileMeta, stSize: number): number {
  return (meta.mode & S_IFMT) === S_IFLNK ? 0 : stSize;
}

/**
 * Metadata of a content object at the cost of one lstat (bare, bare-user-only),
 * an lstat and a getxattr (bare-user) or a header read (archive).
 */
export async function probeFile(repo: Repo, checksum: string): Promise<ProbedFile> {
  const objectPath = repo.objectPath(checksum, ObjectType.File);
  let st;
  try {
    st = await lstat(objectPath);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    // ostree reads objects missing here from the `core.parent` repo; its objects are in its own mode.
    const parent = await repo.parentRepo();
    if (parent) return probeFile(parent, checksum);
    throw new ObjectNotFoundError(checksum, "file");
  }
  if (st.isDirectory()) throw new CorruptObjectError(checksum, "file", `object ${objectPath} is a directory`);
  switch (repo.mode) {
    case "archive": {
      if (!st.isFile()) throw new CorruptObjectError(checksum, "file", `object ${objectPath} is not a regular file`);
      const fh = await open(objectPath, "r");
      let buf: Buffer;
      try {
        const prefix = Buffer.alloc(8);
        await fh.read(prefix, 0, 8, 0);
        const len = prefix.readUInt32BE(0);
        if (len > st.size) throw new CorruptObjectError(checksum, "file", `header length ${len} exceeds object size`);
        buf = Buffer.alloc(8 + len);
        const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
        if (bytesRead < buf.length) throw new CorruptObjectError(checksum, "file", "truncated header");
      } finally {
        await fh.close();
      }
      const { header } = unframe(new Uint8Array(buf.buffer, buf.byteOffset, buf.length), checksum);
      const { meta, size } = decodeFilezHeader(header, checksum);
      return { checksum, objectPath, meta, size: sizeOf(meta, size), xattrsLoaded: true };
    }
    case "bare-user": {
      if (!st.isFile()) throw new CorruptObjectError(checksum, "file", `bare-user object ${objectPath} is not a regular file`);
      const raw = await getAttribute(objectPath, "user.ostreemeta");
      if (!raw) throw new CorruptObjectError(checksum, "file", "missing user.ostreemeta xattr");
      const m = decodeOstreeMeta(new Uint8Array(raw), checksum);
      let symlinkTarget = "";
      if ((m.mode & S_IFMT) === S_IFLNK) {
        const content = await readFile(objectPath);
        if (content.length === 0 || content[content.length - 1] !== 0) {
          throw new CorruptObjectError(checksum, "file", "bare-user symlink object lacks its NUL terminator");
        }
        symlinkTarget = content.subarray(0, content.length - 1).toString("utf8");
      }
      const meta = { ...m, symlinkTarget };
      return { checksum, objectPath, meta, size: sizeOf(meta, st.size), xattrsLoaded: true };
    }
    case "bare":
    case "bare-user-only": {
      if (!st.isFile() && !st.isSymbolicLink()) throw new CorruptObjectError(checksum, "file", `object ${objectPath} is not a regular file or symlink`);
      const userOnly = repo.mode === "bare-user-only";
      const symlinkTarget = st.isSymbolicLink() ? await readlink(objectPath) : "";
      const meta: FileMeta = { uid: userOnly ? 0 : st.uid, gid: userOnly ? 0 : st.gid, mode: st.mode, symlinkTarget, xattrs: [] };
      return { checksum, objectPath, meta, size: sizeOf(meta, st.size), xattrsLoaded: userOnly };
    }
  }
}

/** A rev (ref, `ref^`, or checksum) resolved to a commit checksum. */
export async function resolveCommit(repo: Repo, rev: string): Promise<string> {
  if (isChecksum(rev)) return rev;
  const c = await resolveRev(repo, rev, false);
  if (!c) throw new CheckoutError(`Refspec '${rev}' not found`);
  return c;
}

/** Split a subpath into validated components ("/" and "" are the root). */
export function subpathComponents(subpath: string | undefined): string[] {
  if (!subpath) return [];
  const parts = subpath.split("/").filter((p) => p !== "" && p !== ".");
  for (const p of parts) if (p === "..") throw new UnsafePathError(`Invalid subpath ${subpath}: '..' is not allowed`);
  return parts;
}

export class SubpathNotFoundError extends CheckoutError {
  override name = "SubpathNotFoundError";
}

/** What a subpath of a commit names: a directory (tree+meta) or a file (content checksum). */
export type Resolved =
  | { kind: "dir"; tree: string; meta: string; name: string }
  | { kind: "file"; checksum: string; name: string };

export async function resolveSubpath(repo: Repo, commit: string, subpath?: string): Promise<Resolved> {
  const c = await repo.readCommit(commit);
  let cur: Resolved = { kind: "dir", tree: c.rootTree, meta: c.rootMeta, name: "/" };
  const parts = subpathComponents(subpath);
  for (let i = 0; i < parts.length; i++) {
    const name = parts[i]!;
    if (cur.kind !== "dir") throw new SubpathNotFoundError(`No such file or directory: ${subpath}`, "ENOENT");
    const tree: DirTree = await repo.readDirTree(cur.tree);
    const d = tree.dirs.find((x) => x.name === name);
    if (d) {
      cur = { kind: "dir", tree: d.tree, meta: d.meta, name };
      continue;
    }
    const f = tree.files.find((x) => x.name === name);
    if (f && i === parts.length - 1) {
      cur = { kind: "file", checksum: f.checksum, name };
      continue;
    }
    throw new SubpathNotFoundError(`No such file or directory: ${subpath}`, "ENOENT");
  }
  return cur;
}

/**
 * A path inside a commit as OstreeRepoFile resolves it for `ostree ls`/`cat`:
 * components looked up one at a time with no `..` normalisation, and ostree's
 * errors (`No such file or directory: /a/b` naming the first missing prefix,
 * `Not a directory` when a file is in the way). Returns the canonical path too.
 */
export async function lookupPath(repo: Repo, commit: string, path: string): Promise<Resolved & { path: string }> {
  const c = await repo.readCommit(commit);
  let cur: Resolved = { kind: "dir", tree: c.rootTree, meta: c.rootMeta, name: "/" };
  let prefix = "";
  for (const name of path.split("/").filter((p) => p !== "")) {
    if (cur.kind !== "dir") throw new SubpathNotFoundError("Not a directory", "ENOTDIR");
    prefix += `/${name}`;
    const tree: DirTree = await repo.readDirTree(cur.tree);
    const d = tree.dirs.find((x) => x.name === name);
    const f = d ? undefined : tree.files.find((x) => x.name === name);
    if (d) cur = { kind: "dir", tree: d.tree, meta: d.meta, name };
    else if (f) cur = { kind: "file", checksum: f.checksum, name };
    else throw new SubpathNotFoundError(`No such file or directory: ${prefix}`, "ENOENT");
  }
  return { ...cur, path: prefix || "/" };
}

/**
 * lookupPath, then through symlinks the way reading an OstreeRepoFile does
 * (`ostree cat` of a link prints its target's content): relative targets from
 * the link's directory, absolute ones from the commit root.
 */
export async function lookupPathFollowingLinks(repo: Repo, commit: string, path: string): Promise<Resolved & { path: string }> {
  let current = path;
  for (let hops = 0; hops < 40; hops++) {
    const r = await lookupPath(repo, commit, current);
    if (r.kind !== "file") return r;
    const { meta } = await probeFile(repo, r.checksum);
    if ((meta.mode & S_IFMT) !== S_IFLNK) return r;
    current = posix.join(meta.symlinkTarget.startsWith("/") ? "/" : posix.dirname(r.path), meta.symlinkTarget);
  }
  throw new SubpathNotFoundError(`Too many levels of symbolic links: ${path}`, "ELOOP");
}

/**
 * ot_util_filename_validate, applied again right before a name touches the
 * filesystem: objstore validates on decode, but a name must never reach a
 * path join unchecked.
 */
export function validateName(name: string, where: string): void {
  if (name === "") throw new UnsafePathError(`Invalid empty filename in ${where}`);
  if (name === ".") throw new UnsafePathError(`Invalid self-referential filename '.' in ${where}`);
  if (name === "..") throw new UnsafePathError(`Invalid path uplink filename '..' in ${where}`);
  if (name.includes("/")) throw new UnsafePathError(`Invalid / in filename ${name} in ${where}`);
  if (name.includes("\0")) throw new UnsafePathError(`Invalid NUL in filename ${JSON.stringify(name)} in ${where}`);
  // A JS string that is not well-formed UTF-16 came from bytes that were not valid UTF-8.
  if (!(name as unknown as { isWellFormed(): boolean }).isWellFormed()) throw new UnsafePathError(`Invalid UTF-8 in filename ${JSON.stringify(name)} in ${where}`);
}

/** Refuse a dirtree that names one entry twice (as file and directory, or twice in one list). */
export function checkUniqueNames(tree: DirTree, checksum: string): void {
  const where = `dirtree ${checksum}`;
  // Stored dirtrees list names sorted: then a merge finds a name in both lists without a Set (a checkout checks every name of the commit).
  let prev: string | undefined;
  for (const f of tree.files) {
    validateName(f.name, where);
    if (prev !== undefined && !(prev < f.name)) return checkUniqueNamesUnsorted(tree, where);
    prev = f.name;
  }
  prev = undefined;
  let i = 0;
  for (const d of tree.dirs) {
    validateName(d.name, where);
    if (prev !== undefined && !(prev < d.name)) return checkUniqueNamesUnsorted(tree, where);
    prev = d.name;
    while (i < tree.files.length && tree.files[i]!.name < d.name) i++;
    if (i < tree.files.length && tree.files[i]!.name === d.name) throw duplicate(where, d.name);
  }
}

/** The same checks, in the same order, for lists that are not sorted. */
function checkUniqueNamesUnsorted(tree: DirTree, where: string): void {
  const seen = new Set<string>();
  for (const list of [tree.files, tree.dirs]) {
    for (const e of list) {
      validateName(e.name, where);
      if (seen.has(e.name)) throw duplicate(where, e.name);
      seen.add(e.name);
    }
  }
}

function duplicate(where: string, name: string): UnsafePathError {
  return new UnsafePathError(`${where} lists ${JSON.stringify(name)} more than once`);
}
