import { Repo, parseRepoMode, validateCollectionId, type RepoMode } from "@ostree-ts/objstore";
import { CliError, type CommandModule } from "../command.js";

const MODES: Record<string, RepoMode> = { bare: "bare", "bare-user": "bare-user", "bare-user-only": "bare-user-only", archive: "archive", "archive-z2": "archive" };

const init: CommandModule = {
  parameterString: "",
  options: [
    { long: "mode", arg: "string", description: "Initialize repository in given mode (bare, bare-user, bare-user-only, archive)" },
    {
      long: "collection-id",
      arg: "string",
      description: "Globally unique ID for this repository as an collection of refs for redistribution to other repositories",
      argDescription: "COLLECTION-ID",
    },
  ],
  async run(inv) {
    const modeName = (inv.opts.mode as string | undefined) ?? "bare";
    const mode = MODES[modeName];
    if (!mode) throw new CliError(`Invalid mode '${modeName}' in repository configuration`);
    parseRepoMode(modeName);
    const collectionId = inv.opts["collection-id"] as string | undefined;
    if (collectionId !== undefined) validateCollectionId(collectionId);
    await Repo.init(inv.repoPath!, { mode, ...(collectionId ? { collectionId } : {}) });
  },
};
export default init;
