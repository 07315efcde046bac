import { diffCommits, diffStats, formatDiff, formatSize, resolveRev, type Repo } from "@ostree-ts/objstore";
import { resolve } from "node:path";
import { diffCommitToDir, diffDirs, diffDirToCommit } from "@ostree-ts/checkout";
import { CliError, type CommandModule } from "../command.js";

/** parse_file_or_commit: an argument starting with `/` or `./` is a directory, anything else a rev. */
const isPath = (arg: string) => arg.startsWith("/") || arg.startsWith("./");

/** g_file_new_for_path: ostree's messages name local paths absolute and normalised. */
const localPath = (arg: string) => resolve(arg);

const diffCommand: CommandModule = {
  parameterString: "REV_OR_DIR REV_OR_DIR",
  options: [
    { long: "stats", arg: "none", description: "Print various statistics" },
    { long: "fs-diff", arg: "none", description: "Print filesystem diff" },
    { long: "no-xattrs", arg: "none", description: "Skip output of extended attributes" },
    { long: "owner-uid", arg: "int", description: "Use file ownership user id for local files", argDescription: "UID" },
    { long: "owner-gid", arg: "int", description: "Use file ownership group id for local files", argDescription: "GID" },
  ],
  async run(inv) {
    const repo = inv.repo as Repo;
    if (inv.args.length < 1) {
      process.stderr.write(`${inv.help()}\n`);
      throw new CliError("REV must be specified");
    }
    const [src, target] = inv.args.length === 1 ? [`${inv.args[0]}^`, inv.args[0]!] : [inv.args[0]!, inv.args[1]!];
    const stats = inv.opts.stats === true;
    // ostree prints the filesystem diff by default, and with --stats only when --fs-diff asks for it.
    if (inv.opts["fs-diff"] === true || !stats) {
      const options = {
        noXattrs: inv.opts["no-xattrs"] === true,
        ownerUid: typeof inv.opts["owner-uid"] === "number" && inv.opts["owner-uid"] >= 0 ? inv.opts["owner-uid"] : undefined,
        ownerGid: typeof inv.opts["owner-gid"] === "number" && inv.opts["owner-gid"] >= 0 ? inv.opts["owner-gid"] : undefined,
      };
      if (isPath(src) && isPath(target)) {
        inv.out.print(formatDiff(await diffDirs(localPath(src), localPath(target), options)));
      } else if (isPath(src)) {
        const commit = (await resolveRev(repo, target))!;
        inv.out.print(formatDiff(await diffDirToCommit(localPath(src), repo, commit, options)));
      } else if (isPath(target)) {
        const commit = (await resolveRev(repo, src))!;
        inv.out.print(formatDiff(await diffCommitToDir(repo, commit, localPath(target), options)));
      } else {
        inv.out.print(formatDiff(await diffCommits(repo, src, target)));
      }
    }
    if (stats) {
      const s = await diffStats(repo, src, target);
      inv.out.print(
        `[A] Object Count: ${s.aObjects}\n[B] Object Count: ${s.bObjects}\nCommon Object Count: ${s.commonObjects}\nCommon Object Size: ${formatSize(s.commonBytes)}\n`,
      );
    }
  },
};
export default diffCommand;
