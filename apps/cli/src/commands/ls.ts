import { print } from "@ostree-ts/gvariant";
import { resolveRev, xattrsToValue, type Repo } from "@ostree-ts/objstore";
import { lookupPath, walk, type WalkEntry } from "@ostree-ts/checkout";
import { JSON_OPTION, UsageError, CliError, type CommandModule, type Invocation } from "../command.js";

function line(inv: Invocation, e: WalkEntry, json: unknown[]): void {
  const o = inv.opts;
  if (o["nul-filenames-only"]) {
    inv.out.print(`${e.path}\0`);
    return;
  }
  const typeChar = e.type === "dir" ? "d" : e.type === "symlink" ? "l" : "-";
  if (o.json) {
    json.push({
      path: e.path,
      type: e.type === "dir" ? "directory" : e.type === "symlink" ? "symlink" : "regular",
      mode: e.mode & 0o7777,
      uid: e.uid,
      gid: e.gid,
      size: e.size,
      ...(e.type === "dir" ? { tree: e.checksum, meta: e.metaChecksum } : { checksum: e.checksum }),
      ...(e.type === "symlink" ? { target: e.symlinkTarget } : {}),
    });
    return;
  }
  let s = `${typeChar}0${(e.mode & ~0o170000).toString(8).padStart(4, "0")} ${e.uid} ${e.gid} ${String(e.size).padStart(6)} `;
  if (o.checksum) s += e.type === "dir" ? `${e.checksum} ${e.metaChecksum} ` : `${e.checksum} `;
  if (o.xattrs) s += `{ ${print("a(ayay)", xattrsToValue(e.xattrs), true)} } `;
  s += e.path;
  if (e.type === "symlink") s += ` -> ${e.symlinkTarget}`;
  inv.out.print(`${s}\n`);
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
    const commit = (await resolveRev(repo, inv.args[0]!))!;
    const paths = inv.args.length > 1 ? inv.args.slice(1) : null;
    const json: unknown[] = [];
    for (const arg of paths ?? ["/"]) {
      try {
        const { path } = await lookupPath(repo, commit, arg);
        for await (const e of walk(repo, commit, { subpath: path, recursive: Boolean(inv.opts.recursive) })) {
          line(inv, e, json);
          if (inv.opts.dironly) break;
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
