import { lstat, mkdir, readdir, readFile, readlink, rm, rmdir, symlink } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { isChecksum } from "./checksum.js";
import { InvalidNameError, RefError } from "./errors.js";
import { atomicWrite, type Repo } from "./repo.js";

// commit.ts imports it from here.
export { resolveRev } from "./rev.js";

// GRegex's \w (PCRE with Unicode properties): letters, digits and `_`. Combining marks and other
// connector punctuation (U+203F …) are refused by ostree 2022.7 (test/ref-names.test.ts).
const COMPONENT = String.raw`[\p{L}\p{N}_][-._\p{L}\p{N}_]*`;
const REF_RE = new RegExp(`^(?:${COMPONENT}/)*${COMPONENT}$`, "u");
const REMOTE_RE = new RegExp(`^${COMPONENT}$`, "u");
// The ASCII part of COMPONENT. V8 needs ~0.9 ms for each of the first two runs of the Unicode
// property regexes (building the classes, then compiling them), which every pull paid twice
// before its first request; a name these accept is accepted by those, so those run only when
// these do not match.
const ASCII_COMPONENT = "[A-Za-z0-9_][-._A-Za-z0-9_]*";
const ASCII_REF_RE = new RegExp(`^(?:${ASCII_COMPONENT}/)*${ASCII_COMPONENT}$`);
const ASCII_REMOTE_RE = new RegExp(`^${ASCII_COMPONENT}$`);
const COLLECTION_ELEMENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function isValidRef(ref: string): boolean {
  return ASCII_REF_RE.test(ref) || REF_RE.test(ref);
}

export function validateRef(ref: string): string {
  if (!isValidRef(ref)) throw new InvalidNameError(`Invalid ref name ${ref}`);
  return ref;
}

export function validateRemoteName(name: string): string {
  if (!ASCII_REMOTE_RE.test(name) && !REMOTE_RE.test(name)) throw new InvalidNameError(`Invalid remote name ${name}`);
  return name;
}

export function validateCollectionId(id: string): string {
  const parts = id.split(".");
  if (id.length > 255 || parts.length < 2 || !parts.every((p) => COLLECTION_ELEMENT.test(p))) {
    throw new InvalidNameError(`Invalid collection ID ${id}`);
  }
  return id;
}

/** A ref location: `heads`, `remotes/<remote>` or `mirrors/<collection-id>`. */
export type RefNamespace = { kind: "heads" } | { kind: "remote"; remote: string } | { kind: "mirror"; collectionId: string };

function namespaceDir(repo: Repo, ns: RefNamespace): string {
  switch (ns.kind) {
    case "heads":
      return join(repo.path, "refs", "heads");
    case "remote":
      return join(repo.path, "refs", "remotes", ns.remote);
    case "mirror":
      return join(repo.path, "refs", "mirrors", ns.collectionId);
  }
}

async function readRefFile(path: string, name: string): Promise<string | null> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return null;
    if (code === "EISDIR") return null;
    throw e;
  }
  const csum = text.trimEnd();
  if (!isChecksum(csum) || text.length > 65 + 1) throw new RefError(`Corrupt ref '${name}' (${path}): content is not a checksum`);
  return csum;
}

/** Checksum a ref points at in one namespace, or null. */
export async function readRef(repo: Repo, ns: RefNamespace, ref: string): Promise<string | null> {
  validateRef(ref);
  return readRefFile(join(namespaceDir(repo, ns), ref), ref);
}

export interface RefEntry {
  /** How ostree prints it: `ref`, `remote:ref`, or `(collection, ref)` pairs for mirrors. */
  refspec: string;
  ns: RefNamespace;
  ref: string;
  checksum: string;
  /** Target ref when this ref is an alias (a symlink in refs/heads). */
  aliasOf?: string;
}

async function walk(dir: string, prefix: string, out: Array<{ name: string; path: string }>): Promise<void> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
    throw e;
  }
  for (const e of entries) {
    // ostree skips hidden names (tools leave files like `.latest_rsync` in refs/).
    if (e.name.startsWith(".")) continue;
    const name = prefix ? `${prefix}/${e.name}` : e.name;
    const path = join(dir, e.name);
    if (e.isDirectory()) await walk(path, name, out);
    else out.push({ name, path });
  }
}

/** Every ref in the repository, sorted by refspec. */
export async function listRefs(repo: Repo, filter: { remotes?: boolean; mirrors?: boolean; heads?: boolean } = {}): Promise<RefEntry[]> {
  const out: RefEntry[] = [];
  const add = async (ns: RefNamespace, dir: string, display: (ref: string) => string) => {
    const files: Array<{ name: string; path: string }> = [];
    await walk(dir, "", files);
    for (const f of files) {
      const checksum = await readRefFile(f.path, f.name);
      if (checksum === null) continue;
      const entry: RefEntry = { refspec: display(f.name), ns, ref: f.name, checksum };
      const st = await lstat(f.path);
      if (st.isSymbolicLink()) entry.aliasOf = relative(dir, join(dirname(f.path), await readlink(f.path)));
      out.push(entry);
    }
  };
  if (filter.heads ?? true) await add({ kind: "heads" }, join(repo.path, "refs", "heads"), (r) => r);
  if (filter.remotes ?? true) {
    for (const remote of await listDir(join(repo.path, "refs", "remotes"))) {
      await add({ kind: "remote", remote }, join(repo.path, "refs", "remotes", remote), (r) => `${remote}:${r}`);
    }
  }
  if (filter.mirrors ?? false) {
    for (const cid of await listDir(join(repo.path, "refs", "mirrors"))) {
      await add({ kind: "mirror", collectionId: cid }, join(repo.path, "refs", "mirrors", cid), (r) => `(${cid}, ${r})`);
    }
  }
  return out.sort((a, b) => (a.refspec < b.refspec ? -1 : a.refspec > b.refspec ? 1 : 0));
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw e;
  }
}

/** Point a ref at `checksum` atomically, or delete it when `checksum` is null. */
export async function setRef(repo: Repo, ns: RefNamespace, ref: string, checksum: string | null, options: { fsync?: boolean } = {}): Promise<void> {
  validateRef(ref);
  if (ns.kind === "remote") validateRemoteName(ns.remote);
  if (ns.kind === "mirror") validateCollectionId(ns.collectionId);
  const dir = namespaceDir(repo, ns);
  const path = join(dir, ref);
  if (checksum === null) {
    await rm(path, { force: true });
    await pruneEmptyDirs(dirname(path), dir);
    return;
  }
  if (!isChecksum(checksum)) throw new RefError(`Invalid checksum ${checksum} for ref ${ref}`);
  await mkdir(dirname(path), { recursive: true });
  // A directory in the way means a ref `a` where refs `a/...` exist: refuse, as ostree does.
  try {
    const st = await lstat(path);
    if (st.isDirectory()) throw new RefError(`Cannot create ref ${ref}: a ref directory of that name exists`);
    if (st.isSymbolicLink()) await rm(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  await atomicWrite(repo.tmpDir, path, `${checksum}\n`, options.fsync ?? false);
}

/** Create `alias` as a symlink to ref `target` in refs/heads (`ostree refs --alias`). */
export async function setRefAlias(repo: Repo, alias: string, target: string): Promise<void> {
  validateRef(alias);
  validateRef(target);
  const dir = join(repo.path, "refs", "heads");
  const path = join(dir, alias);
  await mkdir(dirname(path), { recursive: true });
  await rm(path, { force: true });
  // As ostree writes it: up to refs/heads, then the target's full name.
  await symlink(`${"../".repeat(alias.split("/").length - 1)}${target}`, path);
}

async function pruneEmptyDirs(dir: string, stop: string): Promise<void> {
  while (dir.startsWith(stop) && dir !== stop) {
    try {
      await rmdir(dir);
    } catch {
      return;
    }
    dir = dirname(dir);
  }
}
