import { readFile } from "node:fs/promises";
import { resolveRev, type Repo } from "@ostree-ts/objstore";
import { checkout, SubpathNotFoundError, type CheckoutOptions } from "@ostree-ts/checkout";
import { CliError, type CommandModule, type Invocation } from "../command.js";

/** ot_parse_boolean */
function parseBoolean(value: string): boolean {
  if (["1", "true", "yes"].includes(value)) return true;
  if (["0", "false", "no", "none"].includes(value)) return false;
  throw new CliError(`Invalid boolean argument '${value}'`);
}

/** ostree_builtin_checkout: flags that need ostree_repo_checkout_at() (the rest use the legacy API, uncompressed cache on). */
async function checkoutOptions(inv: Invocation, subpath: string | undefined): Promise<CheckoutOptions> {
  const o = inv.opts;
  if (o["selinux-policy"] || o["selinux-prefix"]) throw new CliError("SELinux labeling is not supported by ostree-ts");
  const atPath = !!(
    o["disable-cache"] || o.whiteouts || o["require-hardlinks"] || o["union-add"] || o["force-copy"] ||
    o["force-copy-zerosized"] || o["bareuseronly-dirs"] || o["union-identical"] || o["skip-list"] ||
    o["process-passthrough-whiteouts"]
  );
  const opts: CheckoutOptions = {
    userMode: !!o["user-mode"],
    union: !!o.union,
    subpath,
    uncompressedCache: !atPath,
  };
  if (atPath) {
    if (o.union && o["union-add"]) throw new CliError("Cannot specify both --union and --union-add");
    if (o.union && o["union-identical"]) throw new CliError("Cannot specify both --union and --union-identical");
    if (o["union-add"] && o["union-identical"]) throw new CliError("Cannot specify both --union-add and --union-identical");
    if (o["require-hardlinks"] && o["force-copy"]) throw new CliError("Cannot specify both --require-hardlinks and --force-copy");
    if (o["union-identical"] && !o["require-hardlinks"]) throw new CliError("--union-identical requires --require-hardlinks");
    Object.assign(opts, {
      unionAdd: !!o["union-add"],
      unionIdentical: !!o["union-identical"],
      whiteouts: !!o.whiteouts,
      processPassthroughWhiteouts: !!o["process-passthrough-whiteouts"],
      requireHardlinks: !!o["require-hardlinks"],
      forceCopy: !!o["force-copy"],
      forceCopyZerosized: !!o["force-copy-zerosized"],
      bareuseronlyDirs: !!o["bareuseronly-dirs"],
    });
    if (typeof o["skip-list"] === "string") {
      let text: string;
      try {
        text = await readFile(o["skip-list"], "utf8");
      } catch (e) {
        throw new CliError(`${o["skip-list"]}: ${(e as Error).message}`);
      }
      opts.skipList = text.split("\n").filter((l) => l !== "");
    }
  }
  return opts;
}

async function one(inv: Invocation, repo: Repo, commit: string, subpath: string | undefined, destination: string, disableFsync: boolean): Promise<void> {
  const opts = { ...(await checkoutOptions(inv, subpath)), disableFsync };
  try {
    await checkout(repo, commit, destination, opts);
  } catch (e) {
    // --allow-noent only exists on the legacy path, as in ostree.
    if (e instanceof SubpathNotFoundError && opts.uncompressedCache && inv.opts["allow-noent"]) return;
    throw e;
  }
}

/** --from-file/--from-stdin: NUL-separated (rev, subpath) pairs, all into one destination. */
async function many(inv: Invocation, repo: Repo, destination: string, disableFsync: boolean): Promise<void> {
  const data = inv.opts["from-stdin"] ? await readStdin() : await readFile(inv.opts["from-file"] as string);
  const fields = data.toString("utf8").split("\0");
  for (let i = 0; i + 1 < fields.length || (i < fields.length && fields[i] !== ""); i += 2) {
    const rev = fields[i]!;
    if (rev === "") break;
    const subpath = fields[i + 1] ?? "";
    const commit = (await resolveRev(repo, rev))!;
    try {
      await one(inv, repo, commit, subpath === "" ? undefined : subpath, destination, disableFsync);
    } catch (e) {
      throw new CliError(`Processing tree ${commit}: ${(e as Error).message}`);
    }
  }
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const checkoutCommand: CommandModule = {
  parameterString: "COMMIT [DESTINATION]",
  options: [
    { long: "user-mode", short: "U", arg: "none", description: "Do not change file ownership or initialize extended attributes" },
    { long: "disable-cache", arg: "none", description: "Do not update or use the internal repository uncompressed object cache" },
    { long: "subpath", arg: "filename", description: "Checkout sub-directory PATH", argDescription: "PATH" },
    { long: "union", arg: "none", description: "Keep existing directories, overwrite existing files" },
    { long: "union-add", arg: "none", description: "Keep existing files/directories, only add new" },
    { long: "union-identical", arg: "none", description: "When layering checkouts, error out if a file would be replaced with a different version, but add new files and directories" },
    { long: "whiteouts", arg: "none", description: "Process 'whiteout' (Docker style) entries" },
    { long: "process-passthrough-whiteouts", arg: "none", description: "Enable overlayfs whiteout extraction into char 0:0 devices" },
    { long: "allow-noent", arg: "none", description: "Do nothing if specified path does not exist" },
    { long: "from-stdin", arg: "none", description: "Process many checkouts from standard input" },
    { long: "from-file", arg: "string", description: "Process many checkouts from input file", argDescription: "FILE" },
    { long: "fsync", arg: "string", description: "Specify how to invoke fsync()", argDescription: "POLICY" },
    { long: "require-hardlinks", short: "H", arg: "none", description: "Do not fall back to full copies if hardlinking fails" },
    { long: "force-copy-zerosized", short: "z", arg: "none", description: "Do not hardlink zero-sized files", hidden: true },
    { long: "force-copy", short: "C", arg: "none", description: "Never hardlink (but may reflink if available)" },
    { long: "bareuseronly-dirs", short: "M", arg: "none", description: "Suppress mode bits outside of 0775 for directories (suid, world writable, etc.)" },
    { long: "skip-list", arg: "filename", description: "File containing list of files to skip", argDescription: "FILE" },
    { long: "selinux-policy", arg: "filename", description: "Set SELinux labels based on policy in root filesystem PATH (may be /); implies --force-copy", argDescription: "PATH" },
    { long: "selinux-prefix", arg: "string", description: "When setting SELinux labels, prefix all paths by PREFIX", argDescription: "PREFIX" },
  ],
  async run(inv) {
    const repo = inv.repo as Repo;
    // Checkouts never fsync their files in 2022.7; --fsync=false only affects the uncompressed cache.
    const disableFsync = typeof inv.opts.fsync === "string" && !parseBoolean(inv.opts.fsync);
    if (inv.args.length < 1) {
      process.stderr.write(`${inv.help()}\n`);
      throw new CliError("COMMIT must be specified");
    }
    if (inv.opts["from-stdin"] || inv.opts["from-file"]) {
      await many(inv, repo, inv.args[0]!, disableFsync);
      return;
    }
    const rev = inv.args[0]!;
    const destination = inv.args[1] ?? rev;
    const commit = (await resolveRev(repo, rev))!;
    await one(inv, repo, commit, typeof inv.opts.subpath === "string" ? inv.opts.subpath : undefined, destination, disableFsync);
  },
};
export default checkoutCommand;
