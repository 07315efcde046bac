/**
 * Ref listings in ostree's exact order. ostree walks refs/ with readdir and
 * collects into a GHashTable, then prints in table order; we read directories
 * unsorted (opendir, as readdir returns them) and replay the table.
 */
import { lstatSync, opendirSync, readFileSync, readlinkSync, statSync, type Dirent } from "node:fs";
import { join } from "node:path";
import { GHashOrder } from "./ghash.js";
import { CliError } from "./command.js";

const FRAGMENT = /^[\p{L}\p{N}\p{M}\p{Pc}][-._\p{L}\p{N}\p{M}\p{Pc}]*$/u;
const COMPONENT = String.raw`[\p{L}\p{N}\p{M}\p{Pc}][-._\p{L}\p{N}\p{M}\p{Pc}]*`;
const REFSPEC = new RegExp(`^(?:(${COMPONENT}):)?((?:${COMPONENT}/)*${COMPONENT})$`, "u");
const REMOTE = new RegExp(`^${COMPONENT}$`, "u");

/** ostree_parse_refspec, with its error text. */
export function parseRefspec(refspec: string): { remote: string | null; ref: string } {
  const m = REFSPEC.exec(refspec);
  if (!m) throw new CliError(`Invalid refspec ${refspec}`);
  return { remote: m[1] ?? null, ref: m[2]! };
}

function readdirRaw(dir: string): Dirent[] {
  const d = opendirSync(dir);
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

interface WalkOptions {
  aliasesOnly: boolean;
}

function enumerate(table: GHashOrder<string>, remote: string | null, baseDir: string, basePath: string, dir: string, o: WalkOptions): void {
  for (const e of readdirRaw(dir)) {
    if (!FRAGMENT.test(e.name)) continue;
    const rel = basePath + e.name;
    const full = join(dir, e.name);
    if (e.isDirectory()) {
      enumerate(table, remote, baseDir, `${rel}/`, full, o);
    } else if (o.aliasesOnly && e.isSymbolicLink()) {
      let target = readlinkSync(join(baseDir, rel));
      while (target.startsWith("../")) target = target.slice(3);
      table.insert(rel, target);
    } else if ((!o.aliasesOnly && e.isFile()) || e.isSymbolicLink()) {
      table.insert(remote ? `${remote}:${rel}` : rel, refContents(join(baseDir, rel)));
    }
  }
}

export interface ListRefsOptions {
  /** ostree_repo_list_refs strips the prefix; list_refs_ext (--list) keeps it. */
  cutPrefix: boolean;
  aliasesOnly?: boolean;
  excludeRemotes?: boolean;
}

/** _ostree_repo_list_refs_internal: refspec → checksum (or alias → target), in GHashTable order. */
export function listRefs(repoPath: string, refspecPrefix: string | null, opts: ListRefsOptions): GHashOrder<string> {
  const table = new GHashOrder<string>();
  const o = { aliasesOnly: opts.aliasesOnly ?? false };
  try {
    if (refspecPrefix !== null) {
      let remote: string | null = null;
      let refPrefix: string | null = null;
      if (refspecPrefix.endsWith(":") || refspecPrefix.endsWith(":.")) {
        const r = refspecPrefix.slice(0, refspecPrefix.lastIndexOf(":"));
        if (REMOTE.test(r)) {
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
        if (opts.cutPrefix) enumerate(table, remote, path, "", path, o);
        else enumerate(table, remote, join(repoPath, prefixPath), `${refPrefix}/`, path, o);
      } else {
        table.insert(remote ? `${remote}:${refPrefix}` : refPrefix!, refContents(path));
      }
      return table;
    }
    const heads = join(repoPath, "refs/heads");
    enumerate(table, null, heads, "", heads, o);
    if (!opts.excludeRemotes) {
      const remotes = join(repoPath, "refs/remotes");
      for (const e of readdirRaw(remotes)) {
        if (!e.isDirectory()) continue;
        const dir = join(remotes, e.name);
        enumerate(table, e.name, dir, "", dir, o);
      }
    }
    return table;
  } catch (e) {
    if (e instanceof CliError) throw new CliError(`Listing refs: ${e.message}`);
    throw e;
  }
}

/** Whether `path` is a symlink (an alias) inside refs/heads. */
export function isAlias(repoPath: string, ref: string): boolean {
  try {
    return lstatSync(join(repoPath, "refs/heads", ref)).isSymbolicLink();
  } catch {
    return false;
  }
}
