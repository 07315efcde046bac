import type { Repo } from "@ostree-ts/objstore";
import { diffCommitToDir, formatDiff } from "@ostree-ts/checkout";
import { CliError, type CommandModule } from "../command.js";
import { resolveRev } from "../rev.js";

/** parse_file_or_commit: an argument starting with `/` or `./` is a directory, anything else a rev. */
const isPath = (arg: string) => arg.startsWith("/") || arg.startsWith("./");

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
    if (inv.opts.stats) throw new CliError("ostree-ts: diff --stats is not implemented yet");
    if (isPath(src) || !isPath(target)) throw new CliError("ostree-ts: diff supports only REV DIR (commit against a directory) so far");
    const commit = (await resolveRev(repo, src))!;
    const result = await diffCommitToDir(repo, commit, target, {
      noXattrs: inv.opts["no-xattrs"] === true,
      ownerUid: typeof inv.opts["owner-uid"] === "number" && inv.opts["owner-uid"] >= 0 ? inv.opts["owner-uid"] : undefined,
      ownerGid: typeof inv.opts["owner-gid"] === "number" && inv.opts["owner-gid"] >= 0 ? inv.opts["owner-gid"] : undefined,
    });
    inv.out.print(formatDiff(result));
  },
};
export default diffCommand;
