/**
 * ostree_repo_resolve_rev with ostree's order and error texts: full checksum,
 * unique partial commit checksum, `REV^`, then `[remote:]ref` in refs/heads,
 * refs/remotes/REF and every remote, then the parent repo (core.parent).
 */
import { readdirSync, readFileSync, type Dirent } from "node:fs";
import { join } from "node:path";
import { InvalidNameError, RefError } from "./errors.js";
import { Repo } from "./repo.js";

// As refs.ts: GRegex's \w is letters, digits and `_`.
const COMPONENT = String.raw`[\p{L}\p{N}_][-._\p{L}\p{N}_]*`;
const REFSPEC = new RegExp(`^(?:(${COMPONENT}):)?((?:${COMPONENT}/)*${COMPONENT})$`, "u");
const CHECKSUM = /^[0-9a-f]{64}$/;

/** ostree_parse_refspec: `[remote:]ref`, with its error text. */
export function parseRefspec(refspec: string): { remote: string | null; ref: string } {
  const m = REFSPEC.exec(refspec);
  if (!m) throw new InvalidNameError(`Invalid refspec ${refspec}`);
  return { remote: m[1] ?? null, ref: m[2]! };
}

/** ostree_validate_structureof_checksum_string, with its error texts; returns `s`. */
export function validateChecksumString(s: string): string {
  const bytes = Buffer.from(s);
  if (bytes.length !== 64) throw new RefError(`Invalid rev ${new TextDecoder().decode(bytes.subarray(0, 64))}`);
  for (const c of bytes) {
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) throw new RefError(`Invalid character '${c}' in rev '${s}'`);
  }
  return s;
}

/**
 * ot_parse_boolean, as ostree reads boolean option values (`--fsync=`):
 * 1/true/yes and 0/false/no/none, case-insensitively.
 */
export function parseBoolean(value: string): boolean {
  const v = value.toLowerCase();
  if (v === "1" || v === "true" || v === "yes") return true;
  if (v === "0" || v === "false" || v === "no" || v === "none") return false;
  throw new InvalidNameError(`Invalid boolean argument '${value}'`);
}

function readOrNull(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return null;
    throw e;
  }
}

/** Commit objects whose checksum starts with `prefix` (all commits for ""). */
export function commitsStartingWith(repo: Repo, prefix: string): string[] {
  const objects = join(repo.path, "objects");
  const out: string[] = [];
  for (const dir of readdirSync(objects)) {
    if (!/^[0-9a-f]{2}$/.test(dir)) continue;
    if (!(prefix.length >= 2 ? dir === prefix.slice(0, 2) : dir.startsWith(prefix))) continue;
    for (const name of readdirSync(join(objects, dir))) {
      if (!name.endsWith(".commit")) continue;
      const csum = dir + name.slice(0, -".commit".length);
      if (CHECKSUM.test(csum) && csum.startsWith(prefix)) out.push(csum);
    }
  }
  return out;
}

function resolveRefspec(repo: Repo, remote: string | null, ref: string, allowNoent: boolean, fallbackRemote: boolean): string | null {
  if (CHECKSUM.test(ref)) return ref;
  let text: string | null;
  if (remote !== null) text = readOrNull(join(repo.path, "refs/remotes", remote, ref));
  else {
    text = readOrNull(join(repo.path, "refs/heads", ref));
    if (text === null && fallbackRemote) {
      text = readOrNull(join(repo.path, "refs/remotes", ref));
      if (text === null) {
        let remotes: Dirent[];
        try {
          remotes = readdirSync(join(repo.path, "refs/remotes"), { withFileTypes: true });
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
          remotes = [];
        }
        for (const r of remotes) {
          if (!r.isDirectory()) continue;
          text = readOrNull(join(repo.path, "refs/remotes", r.name, ref));
          if (text !== null) break;
        }
      }
    }
  }
  if (text !== null) return validateChecksumString(text.replace(/\s+$/, ""));
  if (!allowNoent) throw new RefError(`Refspec '${remote ? `${remote}:` : ""}${ref}' not found`);
  return null;
}

/**
 * Resolve a rev to a commit checksum; null only when `allowNoent` and the ref
 * does not exist. `fallbackRemote` = false is ostree's
 * OSTREE_REPO_RESOLVE_REV_EXT_LOCAL_ONLY (refs/heads only).
 */
export async function resolveRev(repo: Repo, refspec: string, allowNoent = false, fallbackRemote = true): Promise<string | null> {
  if (CHECKSUM.test(refspec)) return refspec;
  if (/^[0-9a-f]{0,64}$/.test(refspec)) {
    const matches = commitsStartingWith(repo, refspec);
    if (matches.length > 1) throw new RefError(`Refspec ${refspec} not unique`);
    if (matches.length === 1) return matches[0]!;
  }
  if (refspec.endsWith("^")) {
    const parentRev = await resolveRev(repo, refspec.slice(0, -1), allowNoent, fallbackRemote);
    if (parentRev === null) return null;
    const commit = await repo.readCommit(parentRev);
    if (!commit.parent) throw new RefError(`Commit ${parentRev} has no parent`);
    return commit.parent;
  }
  const { remote, ref } = parseRefspec(refspec);
  const parentPath = repo.config.getString("core", "parent");
  const found = resolveRefspec(repo, remote, ref, allowNoent || parentPath !== undefined, fallbackRemote);
  if (found !== null || !parentPath) return found;
  return resolveRev(await Repo.open(parentPath), refspec, allowNoent, fallbackRemote);
}
