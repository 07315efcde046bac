import { listCollectionRefsOrdered, listRefsOrdered, parseRefspec, resolveRev, setRef, setRefAlias, validateCollectionId, validateRef, type Repo } from "@ostree-ts/objstore";
import { existsSync, lstatSync } from "node:fs";
import { join } from "node:path";
import { CliError, JSON_OPTION, type CommandModule, type Invocation } from "../command.js";

interface Flags {
  delete: boolean;
  list: boolean;
  alias: boolean;
  create: string | undefined;
  collections: boolean;
  force: boolean;
  json: boolean;
}

async function existing(repo: Repo, refspec: string): Promise<string | null> {
  // resolve_rev_ext(allow_noent): a directory where the ref would be counts as absent.
  try {
    const { remote, ref } = parseRefspec(refspec);
    const path = remote ? join(repo.path, "refs/remotes", remote, ref) : join(repo.path, "refs/heads", ref);
    if (existsSync(path) && lstatSync(path).isDirectory()) return null;
  } catch {
    // invalid refspec: resolveRev reports it
  }
  return resolveRev(repo, refspec, true, false);
}

/** _ostree_repo_write_ref's directory conflict rule, then the write. */
async function writeRef(repo: Repo, remote: string | null, ref: string, checksum: string | null): Promise<void> {
  const ns = remote ? { kind: "remote" as const, remote } : { kind: "heads" as const };
  if (checksum !== null) {
    const path = remote ? join(repo.path, "refs/remotes", remote, ref) : join(repo.path, "refs/heads", ref);
    if (existsSync(path) && lstatSync(path).isDirectory()) {
      const under = listRefsOrdered(repo.path, remote ? `${remote}:${ref}` : ref, { cutPrefix: true }).entries();
      for (const [name] of under) if (name !== ref) throw new CliError(`Conflict: ${name} exists under ${ref} when attempting write`);
      const { rm } = await import("node:fs/promises");
      await rm(path, { recursive: true, force: true });
    }
  }
  await setRef(repo, ns, ref, checksum);
}

async function doRef(inv: Invocation, f: Flags, prefix: string | null, json: Array<Record<string, string>>): Promise<void> {
  const repo = inv.repo as Repo;
  if (f.collections) return doRefWithCollections(inv, f, prefix, json);
  const aliases = f.alias || f.delete ? listRefsOrdered(repo.path, null, { cutPrefix: false, aliasesOnly: true }) : undefined;
  const isList = !(f.delete || f.create);
  let refs;
  if (f.delete || f.list || (!f.create && f.alias)) refs = listRefsOrdered(repo.path, prefix, { cutPrefix: false, aliasesOnly: f.alias });
  else if (f.create) refs = listRefsOrdered(repo.path, null, { cutPrefix: false });
  else refs = listRefsOrdered(repo.path, prefix, { cutPrefix: true });

  if (isList) {
    for (const [ref, value] of refs.entries()) {
      if (f.json) json.push(f.alias ? { ref, target: value } : { ref, checksum: value });
      else inv.out.print(f.alias ? `${ref} -> ${value}\n` : `${ref}\n`);
    }
  } else if (f.create) {
    const checksumExisting = await existing(repo, f.create);
    const replacingAlias = f.alias && aliases!.has(f.create);
    if (!replacingAlias && !f.force && checksumExisting !== null) throw new CliError(`--create specified but ref ${f.create} already exists`);
    const { remote, ref } = parseRefspec(f.create);
    if (f.alias) {
      if (remote) throw new CliError(`Cannot create alias to remote ref: ${remote}`);
      if (!refs.has(prefix!)) throw new CliError(`Cannot create alias to non-existent ref: ${prefix}`);
      await setRefAlias(repo, ref, prefix!);
    } else {
      const checksum = (await resolveRev(repo, prefix!))!;
      await writeRef(repo, remote, ref, checksum);
    }
  } else {
    for (const [refspec] of refs.entries()) {
      const { remote, ref } = parseRefspec(refspec);
      for (const [alias, target] of aliases!.entries()) {
        if (ref === target) throw new CliError(`Ref '${ref}' has an active alias: '${alias}'`);
      }
      await writeRef(repo, remote, ref, null);
    }
  }
}

async function doRefWithCollections(inv: Invocation, f: Flags, prefix: string | null, json: Array<Record<string, string>>): Promise<void> {
  const repo = inv.repo as Repo;
  const mainCollection = repo.config.getString("core", "collection-id");
  if (f.create) {
    // resolve_rev_ext(allow_noent) on the new name as a refspec: errors other than a directory in the way stop here.
    const checksumExisting = await existing(repo, f.create);
    if (!f.force && checksumExisting !== null) throw new CliError(`--create specified but ref ${f.create} already exists`);
    const checksum = (await resolveRev(repo, prefix!))!;
    const colon = f.create.indexOf(":");
    const collectionId = colon < 0 ? f.create : f.create.slice(0, colon);
    validateCollectionId(collectionId);
    // Without a colon ostree validates a NULL ref name and reports it as "(null)".
    if (colon < 0) throw new CliError("Invalid ref name (null)");
    const refName = validateRef(f.create.slice(colon + 1));
    await setCollectionRef(repo, mainCollection, collectionId, refName, checksum);
    return;
  }
  const remoteCollectionIds = new Map<string, string>();
  const { Remotes } = await import("@ostree-ts/fetch");
  const remotes = new Remotes(repo);
  for (const name of await remotes.list()) {
    const cid = (await remotes.get(name)).collectionId;
    if (cid !== undefined) remoteCollectionIds.set(name, cid);
  }
  // The PREFIX argument is a collection ID here, matched exactly.
  const entries = listCollectionRefsOrdered(repo.path, mainCollection, remoteCollectionIds, prefix);
  if (f.delete) {
    for (const e of entries) await setCollectionRef(repo, mainCollection, e.collectionId, e.ref, null);
    return;
  }
  for (const e of entries) {
    if (f.json) json.push({ collection: e.collectionId, ref: e.ref, checksum: e.checksum });
    else inv.out.print(`(${e.collectionId}, ${e.ref})\n`);
  }
}

/**
 * ostree_repo_set_collection_ref_immediate: the repo's own collection lives in refs/heads,
 * any other in refs/mirrors/<collection-id>, so deleting a remote's ref by its
 * collection ID removes only a mirror of that name (if any), never refs/remotes.
 */
async function setCollectionRef(repo: Repo, mainCollection: string | undefined, collectionId: string, ref: string, checksum: string | null): Promise<void> {
  if (collectionId === mainCollection) await writeRef(repo, null, ref, checksum);
  else await setRef(repo, { kind: "mirror", collectionId }, ref, checksum);
}

const refs: CommandModule = {
  parameterString: "[PREFIX]",
  options: [
    { long: "delete", arg: "none", description: "Delete refs which match PREFIX, rather than listing them" },
    { long: "list", arg: "none", description: "Do not remove the prefix from the refs" },
    { long: "alias", short: "A", arg: "none", description: "If used with --create, create an alias, otherwise just list aliases" },
    { long: "create", arg: "string", description: "Create a new ref for an existing commit", argDescription: "NEWREF" },
    { long: "collections", short: "c", arg: "none", description: "Enable listing collection IDs for refs" },
    { long: "force", arg: "none", description: "Overwrite existing refs when creating" },
    JSON_OPTION,
  ],
  async run(inv) {
    const o = inv.opts;
    const f: Flags = {
      delete: o.delete === true,
      list: o.list === true,
      alias: o.alias === true,
      create: o.create as string | undefined,
      collections: o.collections === true,
      force: o.force === true,
      json: o.json === true,
    };
    const json: Array<Record<string, string>> = [];
    if (inv.args.length >= 1) {
      if (f.create && inv.args.length > 1) throw new CliError("You must specify only 1 existing ref when creating a new ref");
      for (const prefix of inv.args) await doRef(inv, f, prefix, json);
    } else {
      if (f.delete) throw new CliError("At least one PREFIX is required when deleting refs");
      if (f.create) throw new CliError("You must specify a revision when creating a new ref");
      await doRef(inv, f, null, json);
    }
    if (f.json && !f.delete && !f.create) inv.out.print(`${JSON.stringify(json)}\n`);
  },
};
export default refs;
