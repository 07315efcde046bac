import { resolveRev, decodeCommit, ObjectNotFoundError, ObjectType, type Repo } from "@ostree-ts/objstore";
import { JSON_OPTION, UsageError, type CommandModule } from "../command.js";
import { commitJson, dumpCommit, dumpVariantBytes, COMMIT_TYPE } from "../dump.js";

const log: CommandModule = {
  parameterString: "REV",
  options: [{ long: "raw", arg: "none", description: "Show raw variant data" }, JSON_OPTION],
  async run(inv) {
    const repo = inv.repo as Repo;
    if (inv.args.length < 1) throw new UsageError("A rev argument is required");
    let checksum: string | null = (await resolveRev(repo, inv.args[0]!))!;
    const json: Array<Record<string, unknown>> = [];
    let recurse = false;
    while (checksum) {
      let bytes;
      try {
        bytes = await repo.loadMetadataBytes(ObjectType.Commit, checksum);
      } catch (e) {
        if (recurse && e instanceof ObjectNotFoundError) {
          if (inv.opts.json) json.push({ checksum, missing: true });
          else inv.out.print("<< History beyond this commit not fetched >>\n");
          break;
        }
        throw e;
      }
      const commit = decodeCommit(bytes, checksum);
      if (inv.opts.json) json.push(commitJson(checksum, commit));
      else if (inv.opts.raw) inv.out.print(`commit ${checksum}\n${dumpVariantBytes(COMMIT_TYPE, bytes)}`);
      else inv.out.print(dumpCommit(checksum, commit));
      checksum = commit.parent;
      recurse = true;
    }
    if (inv.opts.json) inv.out.print(`${JSON.stringify(json)}\n`);
  },
};
export default log;
