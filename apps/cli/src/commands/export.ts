import { resolveRev, exportCommit, type Repo } from "@ostree-ts/objstore";
import { UsageError, type CommandModule } from "../command.js";

const exportCmd: CommandModule = {
  parameterString: "COMMIT",
  options: [
    { long: "no-xattrs", arg: "none", description: "Skip output of extended attributes" },
    { long: "subpath", arg: "filename", description: "Checkout sub-directory PATH", argDescription: "PATH" },
    { long: "prefix", arg: "filename", description: "Add PATH as prefix to archive pathnames", argDescription: "PATH" },
    { long: "output", short: "o", arg: "filename", description: "Output to PATH ", argDescription: "PATH" },
  ],
  async run(inv) {
    const repo = inv.repo as Repo;
    if (inv.args.length < 1) throw new UsageError("A COMMIT argument is required");
    const commit = (await resolveRev(repo, inv.args[0]!))!;
    const options = { subpath: inv.opts.subpath as string | undefined, prefix: inv.opts.prefix as string | undefined };
    const output = inv.opts.output as string | undefined;
    if (output) {
      await exportCommit(repo, commit, output, options);
    } else {
      // libarchive pads stdout output to a whole 10240-byte record.
      await inv.out.flush();
      await exportCommit(repo, commit, process.stdout, { ...options, padToRecord: true });
    }
  },
};
export default exportCmd;
