import { commitsStartingWith, resolveRev, type Repo } from "@ostree-ts/objstore";
import { CliError, JSON_OPTION, UsageError, type CommandModule } from "../command.js";

const revParse: CommandModule = {
  parameterString: "REV",
  options: [
    { long: "single", short: "S", arg: "none", description: "If the repository has exactly one commit, then print it; any other case will result in an error" },
    JSON_OPTION,
  ],
  async run(inv) {
    const repo = inv.repo as Repo;
    const json = inv.opts.json === true;
    if (inv.opts.single) {
      if (inv.args.length >= 1) throw new UsageError("Cannot specify arguments with --single");
      const commits = commitsStartingWith(repo, "");
      if (commits.length > 1) throw new CliError("Multiple commit objects found");
      if (commits.length === 0) throw new CliError("No commit objects found");
      inv.out.print(json ? `${JSON.stringify({ rev: null, checksum: commits[0] })}\n` : `${commits[0]}\n`);
      return;
    }
    if (inv.args.length < 1) throw new UsageError("REV must be specified");
    const results: Array<{ rev: string; checksum: string }> = [];
    for (const rev of inv.args) {
      const checksum = (await resolveRev(repo, rev))!;
      if (json) results.push({ rev, checksum });
      else inv.out.print(`${checksum}\n`);
    }
    if (json) inv.out.print(`${JSON.stringify(results)}\n`);
  },
};
export default revParse;
