/**
 * ostree_repo_resolve_rev with ostree's order and error texts: full checksum,
 * unique partial commit checksum, `REV^`, then `[remote:]ref` in refs/heads,
 * refs/remotes/REF and every remote, then the parent repo.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Repo } from "@ostree-ts/objstore";
import { CliError } from "./command.js";
import { parseRefspec } from "./reflist.js";

const CHECKSUM = /^[0-9a-f]{64}$/;

/** ostree_validate_structureof_checksum_string's errors. */
export function validateChecksumString(s: string): string {
  if ([...Buffer.from(s)].length !== 64) {
    const b = Buffer.from(s).subarray(0, 64);
    throw new CliError(`Invalid rev ${new TextDecoder().decode(b)}`);
  }
  for (const c of Buffer.from(s)) {
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) throw new CliError(`Invalid character '${c}' in rev '${s}'`);
  }
  return s;
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

/** Commit objects whose checksum starts with `prefix`. */
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
        for (const r of readdirSync(join(repo.path, "refs/remotes"), { withFileTypes: true })) {
          if (!r.isDirectory()) continue;
          text = readOrNull(join(repo.path, "refs/remotes", r.name, ref));
          if (text !== null) break;
        }
      }
    }
  }
  if (text !== null) return validateChecksumString(text.replace(/\s+$/, ""));
  if (!allowNoent) throw new CliError(`Refspec '${remote ? `${remote}:` : ""}${ref}' not found`);
  return null;
}

export async function resolveRev(repo: Repo, refspec: string, allowNoent = false, fallbackRemote = true): Promise<string | null> {
  if (CHECKSUM.test(refspec)) return refspec;
  if (/^[0-9a-f]{0,64}$/.test(refspec)) {
    const matches = commitsStartingWith(repo, refspec);
    if (matches.length > 1) throw new CliError(`Refspec ${refspec} not unique`);
    if (matches.length === 1) return matches[0]!;
  }
  if (refspec.endsWith("^")) {
    const parentRev = await resolveRev(repo, refspec.slice(0, -1), allowNoent, fallbackRemote);
    if (parentRev === null) return null;
    const commit = await repo.readCommit(parentRev);
    if (!commit.parent) throw new CliError(`Commit ${parentRev} has no parent`);
    return commit.parent;
  }
  const { remote, ref } = parseRefspec(refspec);
  const parentPath = repo.config.getString("core", "parent");
  const found = resolveRefspec(repo, remote, ref, allowNoent || parentPath !== undefined, fallbackRemote);
  if (found !== null || !parentPath) return found;
  return resolveRev(await Repo.open(parentPath), refspec, allowNoent, fallbackRemote);
}
