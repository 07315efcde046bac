import { print } from "@ostree-ts/gvariant";
import { xattrsToValue, type Repo } from "@ostree-ts/objstore";
import { JSON_OPTION, UsageError, CliError, type CommandModule, type Invocation } from "../command.js";
import { resolveRev } from "../rev.js";
import { children, commitRoot, resolvePath, type TreeNode } from "../tree.js";

function line(inv: Invocation, n: TreeNode, json: unknown[]): void {
  const o = inv.opts;
  if (o["nul-filenames-only"]) {
    inv.out.print(`${n.path}\0`);
    return;
  }
  const mode = n.kind === "dir" ? n.mode : n.meta.mode;
  const uid = n.kind === "dir" ? n.uid : n.meta.uid;
  const gid = n.kind === "dir" ? n.gid : n.meta.gid;
  const size = n.kind === "dir" ? 0 : n.size;
  const fmt = mode & 0o170000;
  const typeChar = n.kind === "dir" ? "d" : fmt === 0o120000 ? "l" : fmt === 0o100000 ? "-" : "?";
  const xattrs = n.kind === "dir" ? n.xattrs : n.meta.xattrs;
  if (o.json) {
    json.push({
      path: n.path,
      type: n.kind === "dir" ? "directory" : typeChar === "l" ? "symlink" : "regular",
      mode: mode & 0o7777,
      uid,
      gid,
      size,
      ...(n.kind === "dir" ? { tree: n.tree, meta: n.meta } : { checksum: n.checksum }),
      ...(typeChar === "l" && n.kind === "file" ? { target: n.meta.symlinkTarget } : {}),
    });
    return;
  }
  let s = `${typeChar}0${(mode & ~0o170000).toString(8).padStart(4, "0")} ${uid} ${gid} ${String(size).padStart(6)} `;
  if (o.checksum) s += n.kind === "dir" ? `${n.tree} ${n.meta} ` : `${n.checksum} `;
  if (o.xattrs) s += `{ ${print("a(ayay)", xattrsToValue(xattrs), true)} } `;
  s += n.path;
  if (typeChar === "l" && n.kind === "file") s += ` -> ${n.meta.symlinkTarget}`;
  inv.out.print(`${s}\n`);
}

async function recurse(inv: Invocation, repo: Repo, dir: TreeNode & { kind: "dir" }, depth: number, json: unknown[]): Promise<void> {
  if (depth > 0) depth--;
  else if (depth === 0) return;
  for await (const c of children(repo, dir)) {
    line(inv, c, json);
    if (c.kind === "dir") await recurse(inv, repo, c, depth, json);
  }
}

const ls: CommandModule = {
  parameterString: "COMMIT [PATH...]",
  options: [
    { long: "dironly", short: "d", arg: "none", description: "Do not recurse into directory arguments" },
    { long: "recursive", short: "R", arg: "none", description: "Print directories recursively" },
    { long: "checksum", short: "C", arg: "none", description: "Print checksum" },
    { long: "xattrs", short: "X", arg: "none", description: "Print extended attributes" },
    { long: "nul-filenames-only", arg: "none", description: "Print only filenames, NUL separated" },
    JSON_OPTION,
  ],
  async run(inv) {
    const repo = inv.repo as Repo;
    if (inv.args.length < 1) throw new UsageError("An COMMIT argument is required");
    const root = await commitRoot(repo, (await resolveRev(repo, inv.args[0]!))!);
    const paths = inv.args.length > 1 ? inv.args.slice(1) : null;
    const json: unknown[] = [];
    for (const arg of paths ?? ["/"]) {
      try {
        const node = await resolvePath(repo, root, arg);
        line(inv, node, json);
        if (node.kind === "dir") {
          if (inv.opts.recursive) await recurse(inv, repo, node, -1, json);
          else if (!inv.opts.dironly) await recurse(inv, repo, node, 1, json);
        }
      } catch (e) {
        if (paths && e instanceof Error) throw new CliError(`Inspecting path '${arg}': ${e.message}`);
        throw e;
      }
    }
    if (inv.opts.json) inv.out.print(`${JSON.stringify(json)}\n`);
  },
};
export default ls;
