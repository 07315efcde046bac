import { sha256Hex } from "./checksum.js";
import { ObjectType } from "./object-types.js";
import { encodeDirTree, compareNames, type DirTree } from "./metadata.js";
import { InvalidArgumentError } from "./errors.js";
import type { Repo } from "./repo.js";

/** sha256 of the empty dirtree (the single byte 00). */
export const EMPTY_DIRTREE_CHECKSUM = "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d";

/** Overlay conflicts and invalid names, with ostree's wording. */
export class MutableTreeError extends InvalidArgumentError {
  override name = "MutableTreeError";
}

/** A file entry whose object is still being written. */
export const PENDING = "";

/**
 * In-memory directory tree being built for a commit (ostree's OstreeMutableTree).
 * A node is either whole (maps of files and subdirs) or lazy: a dirtree
 * checksum from the repo that is only read when something is overlaid on it.
 */
export class MutableTree {
  metaChecksum: string | null = null;
  /** Dirtree checksum when known: set for lazy nodes and after writing. */
  contentsChecksum: string | null = null;
  private lazy = false;
  readonly files = new Map<string, string>();
  readonly dirs = new Map<string, MutableTree>();
  parent: MutableTree | null = null;

  static fromChecksums(tree: string, meta: string): MutableTree {
    const t = new MutableTree();
    t.lazy = true;
    t.contentsChecksum = tree;
    t.metaChecksum = meta;
    return t;
  }

  get isLazy(): boolean {
    return this.lazy;
  }

  private invalidate(): void {
    for (let t: MutableTree | null = this; t && t.contentsChecksum !== null && !t.lazy; t = t.parent) t.contentsChecksum = null;
  }

  setMetadataChecksum(checksum: string): void {
    if (checksum === this.metaChecksum) return;
    this.parent?.invalidate();
    this.metaChecksum = checksum;
  }

  /** Read a lazy node's dirtree so it can be changed. */
  async makeWhole(repo: Repo): Promise<void> {
    if (!this.lazy) return;
    const dt = await repo.readDirTree(this.contentsChecksum!);
    for (const f of dt.files) this.files.set(f.name, f.checksum);
    for (const d of dt.dirs) this.insertChild(d.name, MutableTree.fromChecksums(d.tree, d.meta));
    this.lazy = false;
  }

  private insertChild(name: string, child: MutableTree): void {
    child.parent = this;
    this.dirs.set(name, child);
  }

  /** ostree_mutable_tree_replace_file; the node must be whole. */
  replaceFile(name: string, checksum: string): void {
    validateFilename(name);
    this.assertWhole();
    if (this.dirs.has(name)) throw new MutableTreeError(`Can't replace directory with file: ${name}`);
    this.contentsChecksum = null;
    this.parent?.invalidate();
    this.files.set(name, checksum);
  }

  /** ostree_mutable_tree_ensure_dir; the node must be whole. */
  ensureDir(name: string): MutableTree {
    validateFilename(name);
    this.assertWhole();
    if (this.files.has(name)) throw new MutableTreeError(`Can't replace file with directory: ${name}`);
    let child = this.dirs.get(name);
    if (!child) {
      child = new MutableTree();
      this.contentsChecksum = null;
      this.parent?.invalidate();
      this.insertChild(name, child);
    }
    return child;
  }

  /**
   * ostree_mutable_tree_fill_empty_from_dirtree: graft a stored tree onto an
   * empty node without reading it. Returns false when the node has content,
   * in which case the caller merges entry by entry.
   */
  fillEmptyFromDirtree(tree: string, meta: string): boolean {
    if (this.lazy) {
      if (tree === this.contentsChecksum || this.contentsChecksum === EMPTY_DIRTREE_CHECKSUM) {
        // fall through: replace with the new tree
      } else if (tree === EMPTY_DIRTREE_CHECKSUM) {
        tree = this.contentsChecksum!;
      } else return false;
    } else if (this.files.size > 0 || this.dirs.size > 0) return false;
    this.lazy = true;
    this.setMetadataChecksum(meta);
    if (this.contentsChecksum !== tree) {
      this.parent?.invalidate();
      this.contentsChecksum = tree;
    }
    return true;
  }

  /** Parent directory node of `components` (all but the last must exist), like ostree_mutable_tree_walk. */
  async walk(repo: Repo, components: readonly string[]): Promise<MutableTree> {
    let t: MutableTree = this;
    for (let i = 0; i + 1 < components.length; i++) {
      await t.makeWhole(repo);
      const next = t.dirs.get(components[i]!);
      if (!next) throw new MutableTreeError(`No such file or directory: ${components[i]}`);
      t = next;
    }
    return t;
  }

  private assertWhole(): void {
    if (this.lazy) throw new Error("internal: mutable tree node must be made whole before changing it");
  }
}

export function validateFilename(name: string): void {
  if (name === ".") throw new MutableTreeError("Invalid self-referential filename '.'");
  if (name === "..") throw new MutableTreeError("Invalid path uplink filename '..'");
  if (name === "" || name.includes("/")) throw new MutableTreeError(`Invalid / in filename ${name}`);
  if (name.includes("\0")) throw new MutableTreeError(`Invalid NUL in filename ${JSON.stringify(name)}`);
}

export interface WriteMtreeHooks {
  /** Called for each dirtree write with its byte length (ostree.sizes). */
  onMetadata?(checksum: string, type: ObjectType, length: number): void;
  fsync?: boolean;
}

/**
 * Write every dirtree of `root` bottom-up (ostree_repo_write_mtree) and return
 * the root's dirtree checksum. Iterative, so nesting depth is not limited by
 * the call stack.
 */
export async function writeMtree(repo: Repo, root: MutableTree, hooks: WriteMtreeHooks = {}): Promise<string> {
  if (root.metaChecksum === null) throw new InvalidArgumentError("Can't commit an empty tree");
  const written = new Set<string>();
  const stack: Array<{ node: MutableTree; path: string; expanded: boolean }> = [{ node: root, path: "/", expanded: false }];
  while (stack.length) {
    const top = stack[stack.length - 1]!;
    const { node } = top;
    if (node.contentsChecksum !== null) {
      stack.pop();
      continue;
    }
    if (!top.expanded) {
      top.expanded = true;
      for (const [name, child] of node.dirs) {
        if (child.metaChecksum === null) throw new InvalidArgumentError(`mtree: directory ${top.path}${name} has no metadata`);
        stack.push({ node: child, path: `${top.path}${name}/`, expanded: false });
      }
      continue;
    }
    stack.pop();
    const tree: DirTree = {
      files: [...node.files].sort((a, b) => compareNames(a[0], b[0])).map(([name, checksum]) => {
        if (checksum === PENDING) throw new Error(`internal: ${top.path}${name} was never written`);
        return { name, checksum };
      }),
      dirs: [...node.dirs]
        .sort((a, b) => compareNames(a[0], b[0]))
        .map(([name, child]) => ({ name, tree: child.contentsChecksum!, meta: child.metaChecksum! })),
    };
    const bytes = encodeDirTree(tree);
    const checksum = await writeMetadataOnce(repo, ObjectType.DirTree, bytes, written, hooks.fsync ?? false);
    hooks.onMetadata?.(checksum, ObjectType.DirTree, bytes.length);
    node.contentsChecksum = checksum;
  }
  return root.contentsChecksum!;
}

async function writeMetadataOnce(repo: Repo, type: ObjectType, bytes: Uint8Array, seen: Set<string>, fsync: boolean): Promise<string> {
  const checksum = sha256Hex(bytes);
  if (seen.has(checksum)) return checksum;
  seen.add(checksum);
  await repo.writeMetadata(type, bytes, checksum, { fsync });
  return checksum;
}
