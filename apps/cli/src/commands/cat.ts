import { lookupPathFollowingLinks } from "@ostree-ts/checkout";
import { resolveRev, type Repo } from "@ostree-ts/objstore";
import { CliError, UsageError, type CommandModule } from "../command.js";

const cat: CommandModule = {
  parameterString: "COMMIT PATH...",
  options: [],
  async run(inv) {
    const repo = inv.repo as Repo;
    if (inv.args.length < 2) throw new UsageError("A COMMIT and at least one PATH argument are required");
    const commit = (await resolveRev(repo, inv.args[0]!))!;
    for (const arg of inv.args.slice(1)) {
      const node = await lookupPathFollowingLinks(repo, commit, arg);
      if (node.kind === "dir") throw new CliError("Can't open directory");
      const obj = await repo.openContent(node.checksum);
      for await (const chunk of obj.payload()) inv.out.write(chunk as Buffer);
      await inv.out.flush();
    }
  },
};
export default cat;
