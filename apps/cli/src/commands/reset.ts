import { resolveRev, listRefsOrdered, setRef, type Repo } from "@ostree-ts/objstore";
import { accessSync, constants } from "node:fs";
import { join } from "node:path";
import { CliError, UsageError, type CommandModule } from "../command.js";

const reset: CommandModule = {
  parameterString: "REF COMMIT",
  options: [],
  async run(inv) {
    const repo = inv.repo as Repo;
    try {
      accessSync(join(repo.path, "objects"), constants.W_OK);
    } catch (e) {
      throw new CliError(`Cannot write to repository: ${(e as Error).message}`);
    }
    if (inv.args.length < 2) throw new UsageError("A REF and COMMIT argument is required");
    const [ref, target] = inv.args as [string, string];
    if (!listRefsOrdered(repo.path, null, { cutPrefix: true }).has(ref)) throw new CliError(`Invalid ref '${ref}'`);
    const checksum = (await resolveRev(repo, target))!;
    const colon = ref.indexOf(":");
    if (colon >= 0) await setRef(repo, { kind: "remote", remote: ref.slice(0, colon) }, ref.slice(colon + 1), checksum);
    else await setRef(repo, { kind: "heads" }, ref, checksum);
  },
};
export default reset;
