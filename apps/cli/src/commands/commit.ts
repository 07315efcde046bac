import { readFile } from "node:fs/promises";
import { setFlagsFromString } from "node:v8";
import { parseText, variant, type Variant } from "@ostree-ts/gvariant";
import {
  commit,
  parseBoolean,
  parseRefspec,
  parseSkipList,
  parseStatOverride,
  resolveRev,
  setRef,
  validateChecksumString,
  type CommitOptions,
  type Repo,
  type TreeSource,
} from "@ostree-ts/objstore";
import { CliError, type CommandModule } from "../command.js";

/** parse_keyvalue_strings: split at the first `=`; values are strings or GVariant text. */
function keyValues(args: string[] | undefined, asVariant: boolean): Array<[string, Variant]> {
  const out: Array<[string, Variant]> = [];
  for (const kv of args ?? []) {
    const eq = kv.indexOf("=");
    if (eq < 0) throw new CliError(`Missing '=' in KEY=VALUE metadata '${kv}'`);
    const value = kv.slice(eq + 1);
    if (!asVariant) {
      out.push([kv.slice(0, eq), variant("s", value)]);
      continue;
    }
    let parsed;
    try {
      parsed = parseText(value);
    } catch (e) {
      throw new CliError(`Parsing ${kv}: ${(e as Error).message}`);
    }
    out.push([kv.slice(0, eq), variant(parsed.type, parsed.value)]);
  }
  return out;
}

/** glnx_file_get_contents_utf8_at's error text for a file that cannot be read. */
async function readTextFile(path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === "ENOENT") throw new CliError(`openat(${path}): No such file or directory`);
    if (err.code === "EACCES") throw new CliError(`openat(${path}): Permission denied`);
    throw e;
  }
}

function treeSource(spec: string): TreeSource {
  const eq = spec.indexOf("=");
  if (eq < 0) throw new CliError(`Missing type in tree specification '${spec}'`);
  const kind = spec.slice(0, eq);
  const arg = spec.slice(eq + 1);
  if (kind === "dir") return { dir: arg };
  if (kind === "tar") return { tar: arg };
  if (kind === "ref") return { ref: arg };
  throw new CliError(`Invalid tree type specification '${kind}'`);
}

/** As ot-builtin-commit.c: `--sign` keys (ostree sign engines) first, then `--gpg-sign` keys. */
async function signCommitObject(
  checksum: string,
  gpgKeys: string[],
  signKeys: string[],
  signType: string | undefined,
  homedir: string | undefined,
  repo: Repo,
): Promise<void> {
  const gpg = await import("@ostree-ts/gpg");
  try {
    if (signKeys.length) {
      const engine = gpg.signEngineByName(signType ?? "ed25519");
      for (const key of signKeys) {
        engine.setSecretKey(key);
        await gpg.signCommitWith(repo, checksum, engine);
      }
    }
    for (const keyId of gpgKeys) await gpg.signCommit(repo, checksum, { keyId, homedir });
  } catch (e) {
    if (e instanceof gpg.SignError || e instanceof gpg.GpgError || e instanceof gpg.GpgKeyError) throw new CliError(e.message);
    throw e;
  }
}

const commitCommand: CommandModule = {
  parameterString: "[PATH]",
  options: [
    { long: "parent", arg: "string", description: 'Parent commit checksum, or "none"', argDescription: "COMMIT" },
    { long: "subject", short: "s", arg: "string", description: "One line subject", argDescription: "SUBJECT" },
    { long: "body", short: "m", arg: "string", description: "Full description", argDescription: "BODY" },
    { long: "body-file", short: "F", arg: "filename", description: "Commit message from FILE path", argDescription: "FILE" },
    { long: "editor", short: "e", arg: "none", description: "Use an editor to write the commit message" },
    { long: "branch", short: "b", arg: "string", description: "Branch", argDescription: "BRANCH" },
    { long: "orphan", arg: "none", description: "Create a commit without writing a ref" },
    { long: "no-bindings", arg: "none", description: "Do not write any ref bindings" },
    { long: "bind-ref", arg: "strv", description: "Add a ref to ref binding commit metadata", argDescription: "BRANCH" },
    { long: "base", arg: "string", description: "Start from the given commit as a base (no modifiers apply)", argDescription: "REV" },
    { long: "tree", arg: "strv", description: "Overlay the given argument as a tree", argDescription: "dir=PATH or tar=TARFILE or ref=COMMIT" },
    { long: "add-metadata-string", arg: "strv", description: "Add a key/value pair to metadata", argDescription: "KEY=VALUE" },
    {
      long: "add-metadata",
      arg: "strv",
      description: "Add a key/value pair to metadata, where the KEY is a string, and VALUE is in GVariant Text Format",
      argDescription: "KEY=VALUE",
    },
    { long: "keep-metadata", arg: "strv", description: "Keep metadata KEY and its associated VALUE from parent", argDescription: "KEY" },
    { long: "add-detached-metadata-string", arg: "strv", description: "Add a key/value pair to detached metadata", argDescription: "KEY=VALUE" },
    { long: "owner-uid", arg: "int", description: "Set file ownership user id", argDescription: "UID" },
    { long: "owner-gid", arg: "int", description: "Set file ownership group id", argDescription: "GID" },
    { long: "canonical-permissions", arg: "none", description: "Canonicalize permissions in the same way bare-user does for hardlinked files" },
    { long: "bootable", arg: "none", description: "Flag this commit as a bootable OSTree (e.g. contains a Linux kernel)" },
    { long: "mode-ro-executables", arg: "none", description: "Ensure executable files are not writable" },
    { long: "no-xattrs", arg: "none", description: "Do not import extended attributes" },
    { long: "selinux-policy", arg: "filename", description: "Set SELinux labels based on policy in root filesystem PATH (may be /)", argDescription: "PATH" },
    { long: "selinux-policy-from-base", short: "P", arg: "none", description: "Set SELinux labels based on first --tree argument" },
    { long: "link-checkout-speedup", arg: "none", description: "Optimize for commits of trees composed of hardlinks into the repository" },
    { long: "devino-canonical", short: "I", arg: "none", description: "Assume hardlinked objects are unmodified.  Implies --link-checkout-speedup" },
    { long: "tar-autocreate-parents", arg: "none", description: "When loading tar archives, automatically create parent directories as needed" },
    {
      long: "tar-pathname-filter",
      arg: "string",
      description: "When loading tar archives, use REGEX,REPLACEMENT against path names",
      argDescription: "REGEX,REPLACEMENT",
    },
    { long: "skip-if-unchanged", arg: "none", description: "If the contents are unchanged from previous commit, do nothing" },
    { long: "statoverride", arg: "filename", description: "File containing list of modifications to make to permissions", argDescription: "PATH" },
    { long: "skip-list", arg: "filename", description: "File containing list of files to skip", argDescription: "PATH" },
    { long: "consume", arg: "none", description: "Consume (delete) content after commit (for local directories)" },
    { long: "table-output", arg: "none", description: "Output more information in a KEY: VALUE format" },
    { long: "gpg-sign", arg: "strv", description: "GPG Key ID to sign the commit with", argDescription: "KEY-ID" },
    { long: "gpg-homedir", arg: "filename", description: "GPG Homedir to use when looking for keyrings", argDescription: "HOMEDIR" },
    { long: "sign", arg: "strv", description: "Sign the commit with", argDescription: "KEY_ID" },
    { long: "sign-type", arg: "string", description: "Signature type to use (defaults to 'ed25519')", argDescription: "NAME" },
    { long: "generate-sizes", arg: "none", description: "Generate size information along with commit metadata" },
    { long: "fsync", arg: "string", description: "Specify how to invoke fsync()", argDescription: "POLICY" },
    { long: "timestamp", arg: "string", description: "Override the timestamp of the commit", argDescription: "TIMESTAMP" },
  ],
  async run(inv) {
    // A commit keeps a slow trickle of survivors (the tree being built): V8 would keep doubling the
    // young generation to its 16 MiB semispaces, ~40 MB of peak RSS that buys no speed here.
    setFlagsFromString("--semi-space-growth-factor=1");
    const repo = inv.repo as Repo;
    const o = inv.opts;
    const str = (k: string) => o[k] as string | undefined;
    const strv = (k: string) => o[k] as string[] | undefined;

    const statOverride = str("statoverride") !== undefined ? parseStatOverride(await readTextFile(str("statoverride")!)) : undefined;
    const skipList = str("skip-list") !== undefined ? parseSkipList(await readTextFile(str("skip-list")!)) : undefined;
    const metadata: Array<readonly [string, Variant]> = [...keyValues(strv("add-metadata-string"), false), ...keyValues(strv("add-metadata"), true)];
    const detached = strv("add-detached-metadata-string") ? keyValues(strv("add-detached-metadata-string"), false) : undefined;

    const branch = str("branch");
    if (branch === undefined && !o.orphan) throw new CliError("A branch must be specified with --branch, or use --orphan");
    if (o["selinux-policy"] !== undefined || o["selinux-policy-from-base"]) throw new CliError("ostree-ts: SELinux labeling is not implemented");
    if (o.editor) throw new CliError("ostree-ts: --editor is not supported; use -s/-m/-F");
    if (o["tar-pathname-filter"] !== undefined) throw new CliError("ostree-ts: --tar-pathname-filter is not implemented yet");

    let fsync: boolean | undefined;
    if (str("fsync") !== undefined && !parseBoolean(str("fsync")!)) fsync = false;

    let parent: string | null;
    const parentOpt = str("parent");
    if (parentOpt !== undefined) parent = parentOpt === "none" ? null : validateChecksumString(parentOpt);
    else if (!o.orphan) parent = await resolveRev(repo, branch!, true);
    else parent = null;

    if (o["keep-metadata"]) {
      if (!parent) throw new CliError("Either --branch or --parent must be specified when using --keep-metadata");
      const parentMeta = (await repo.readCommit(parent)).metadata;
      for (const key of strv("keep-metadata")!) {
        const found = parentMeta.find(([k]) => k === key);
        if (!found) throw new CliError(`Missing metadata key '${key}' from commit '${parent}'`);
        metadata.push(found);
      }
    }

    const body = str("body-file") !== undefined ? await readTextFile(str("body-file")!) : str("body");

    let tree: TreeSource[] = (strv("tree") ?? []).map(treeSource);
    if (tree.length === 0) tree = [{ dir: inv.args[0] ?? "." }];

    const gpgKeys = strv("gpg-sign") ?? [];
    const signKeys = strv("sign") ?? [];
    const signing = gpgKeys.length > 0 || signKeys.length > 0;
    // ostree signs before the ref moves, so a failed signature leaves the branch
    // alone: a signed commit is written as an orphan with the same bindings and
    // its branch is set here once the signatures are in.
    const signedBranch = signing && branch !== undefined ? parseRefspec(branch) : null;
    const uid = o["owner-uid"] as number | undefined;
    const gid = o["owner-gid"] as number | undefined;
    const options: CommitOptions = {
      tree,
      base: str("base"),
      branch: signedBranch ? undefined : branch,
      orphan: Boolean(o.orphan) || signedBranch !== null,
      subject: str("subject"),
      body,
      timestamp: str("timestamp"),
      parent,
      metadata,
      detachedMetadata: detached,
      bindRefs: signedBranch ? [branch!, ...(strv("bind-ref") ?? [])] : strv("bind-ref"),
      noBindings: Boolean(o["no-bindings"]),
      bootable: Boolean(o.bootable),
      linkCheckoutSpeedup: Boolean(o["link-checkout-speedup"]),
      devinoCanonical: Boolean(o["devino-canonical"]),
      skipIfUnchanged: Boolean(o["skip-if-unchanged"]),
      fsync,
      tarAutocreateParents: Boolean(o["tar-autocreate-parents"]),
      ownerUid: uid !== undefined && uid >= 0 ? uid : undefined,
      ownerGid: gid !== undefined && gid >= 0 ? gid : undefined,
      canonicalPermissions: o["canonical-permissions"] ? true : undefined,
      noXattrs: Boolean(o["no-xattrs"]),
      modeRoExecutables: Boolean(o["mode-ro-executables"]),
      statOverride,
      skipList,
      consume: Boolean(o.consume),
      generateSizes: Boolean(o["generate-sizes"]),
    };
    const result = await commit(repo, options);
    if (signing && !result.skipped) {
      await signCommitObject(result.commit, gpgKeys, signKeys, str("sign-type"), str("gpg-homedir"), repo);
      if (signedBranch) await setRef(repo, signedBranch.remote !== null ? { kind: "remote", remote: signedBranch.remote } : { kind: "heads" }, signedBranch.ref, result.commit);
    }
    if (o["table-output"]) {
      const w = repo.writeStats;
      inv.out.print(
        `Commit: ${result.commit}\nMetadata Total: ${result.stats.metadataObjects}\nMetadata Written: ${w.metadataWritten}\n` +
          `Content Total: ${result.stats.contentObjects}\nContent Written: ${w.contentWritten}\nContent Cache Hits: ${result.stats.devinoHits}\n` +
          `Content Bytes Written: ${w.contentBytesWritten}\n`,
      );
    } else {
      inv.out.print(`${result.commit}\n`);
    }
  },
};

export default commitCommand;
