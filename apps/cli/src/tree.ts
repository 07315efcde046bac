/** Walking a commit's tree the way OstreeRepoFile presents it (files first, then subdirectories). */
import type { FileMeta, Repo } from "@ostree-ts/objstore";
import { posix } from "node:path";
import { CliError } from "./command.js";

export type TreeNode =
  | { kind: "dir"; path: string; tree: string; meta: string; uid: number; gid: number; mode: number; xattrs: FileMeta["xattrs"] }
  | { kind: "file"; path: string; checksum: string; meta: FileMeta; size: number };

export async function dirNode(repo: Repo, path: string, tree: string, meta: string): Promise<TreeNode> {
  const m = await repo.readDirMeta(meta);
  return { kind: "dir", path, tree, meta, uid: m.uid, gid: m.gid, mode: m.mode, xattrs: m.xattrs };
}

export async function fileNode(repo: Repo, path: string, checksum: string): Promise<TreeNode> {
  const obj = await repo.openContent(checksum);
  return { kind: "file", path, checksum, meta: obj.meta, size: obj.size };
}

/** g_file_resolve_relative_path on the commit root, then lookup. */
export async function resolvePath(repo: Repo, root: TreeNode, arg: string): Promise<TreeNode> {
  const norm = posix.normalize(posix.join("/", arg));
  const parts = norm.split("/").filter((p) => p !== "");
  let node = root;
  let path = "";
  for (const part of parts) {
    path += `/${part}`;
    if (node.kind !== "dir") throw new CliError(`Not a directory: ${path}`);
    const t = await repo.readDirTree(node.tree);
    const d = t.dirs.find((x) => x.name === part);
    if (d) {
      node = await dirNode(repo, path, d.tree, d.meta);
      continue;
    }
    const f = t.files.find((x) => x.name === part);
    if (!f) throw new CliError(`No such file or directory: ${path}`);
    node = await fileNode(repo, path, f.checksum);
  }
  return node;
}

export async function* children(repo: Repo, dir: TreeNode & { kind: "dir" }): AsyncGenerator<TreeNode> {
  const t = await repo.readDirTree(dir.tree);
  const base = dir.path === "/" ? "" : dir.path;
  for (const f of t.files) yield fileNode(repo, `${base}/${f.name}`, f.checksum);
  for (const d of t.dirs) yield dirNode(repo, `${base}/${d.name}`, d.tree, d.meta);
}

export async function commitRoot(repo: Repo, commitChecksum: string): Promise<TreeNode & { kind: "dir" }> {
  const c = await repo.readCommit(commitChecksum);
  return (await dirNode(repo, "/", c.rootTree, c.rootMeta)) as TreeNode & { kind: "dir" };
}
