import type { Repo } from "@ostree-ts/objstore";
import { CliError, UsageError, type CommandModule } from "../command.js";

function splitKey(k: string): [string, string] {
  const dot = k.indexOf(".");
  if (dot < 0) throw new CliError('Key must be of the form "sectionname.keyname"');
  return [k.slice(0, dot), k.slice(dot + 1)];
}

const config: CommandModule = {
  parameterString: "(get KEY|set KEY VALUE|unset KEY)",
  options: [{ long: "group", arg: "string", description: "Group name" }],
  async run(inv) {
    const repo = inv.repo as Repo;
    const group = inv.opts.group as string | undefined;
    const argc = inv.args.length + 1;
    if (argc < 2) throw new UsageError("OPERATION must be specified");
    const op = inv.args[0]!;
    if (argc > (op === "set" ? 4 : 3)) throw new UsageError("Too many arguments given");
    const target = (): [string, string] => {
      if (group !== undefined) {
        if (argc < 3) throw new CliError("Group name and key must be specified");
        return [group, inv.args[1]!];
      }
      if (argc < 3) throw new CliError("KEY must be specified");
      return splitKey(inv.args[1]!);
    };
    if (op === "set") {
      if (argc < 4) throw new CliError(group !== undefined ? "GROUP name, KEY and VALUE must be specified" : "KEY and VALUE must be specified");
      const [section, key] = group !== undefined ? [group, inv.args[1]!] : splitKey(inv.args[1]!);
      repo.config.setString(section, key, inv.args[2]!);
      await repo.saveConfig();
    } else if (op === "get") {
      const [section, key] = target();
      if (!repo.config.hasGroup(section)) throw new CliError(`Key file does not have group “${section}”`);
      const value = repo.config.getString(section, key);
      if (value === undefined) throw new CliError(`Key file does not have key “${key}” in group “${section}”`);
      inv.out.print(`${value}\n`);
    } else if (op === "unset") {
      const [section, key] = target();
      if (repo.config.removeKey(section, key)) await repo.saveConfig();
    } else {
      throw new CliError(`Unknown operation ${op}`);
    }
  },
};
export default config;
