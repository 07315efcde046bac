/**
 * Entry point: ostree's ostree_run() — pick the command (first argument not
 * starting with `-`), parse the rest with that command's GOption table, open
 * the repository, run. Nothing heavy is imported here so `--version` is fast.
 */
import { existsSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { CliError, UsageError, type CommandModule, type Invocation } from "./command.js";
import { COMMANDS, type CommandEntry } from "./commands/index.js";
import { formatHelp, HelpRequested, OptionError, parseOptions, type OptionSpec } from "./goption.js";
import { Output } from "./output.js";
import { versionText } from "./version.js";

const GLOBAL_OPTIONS: OptionSpec[] = [
  { long: "verbose", short: "v", arg: "none", description: "Print debug information during command processing" },
  { long: "version", arg: "none", description: "Print version information and exit" },
];

const REPO_OPTION: OptionSpec = {
  long: "repo",
  arg: "filename",
  description: "Path to OSTree repository (defaults to current directory or /sysroot/ostree/repo)",
  argDescription: "PATH",
};

/** g_get_prgname(): ostree uses argv[0] as given; our shims pass it in OSTREE_TS_PRGNAME. */
function programName(): string {
  const env = process.env.OSTREE_TS_PRGNAME;
  if (env) return env;
  return basename(process.argv[1] ?? "ostree-ts").replace(/\.(mjs|js|cjs)$/, "");
}

function mainUsage(prgname: string): string {
  const summary = ["Builtin Commands:", ...COMMANDS.map((c) => `  ${c.name.padEnd(18)}${c.description}`)].join("\n");
  return formatHelp({ prgname, parameterString: "COMMAND", summary, options: GLOBAL_OPTIONS });
}

function printError(message: string): void {
  process.stderr.write(`error: ${message}\n`);
}

/** Message ostree would print for an error thrown by our packages. */
function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** The repository ostree_repo_new_default() picks when there is no --repo. */
function defaultRepoPath(): string {
  try {
    if (statSync("objects").isDirectory() && statSync("config").isFile()) return ".";
  } catch {
    // not a repo: fall through
  }
  const env = process.env.OSTREE_REPO;
  if (env) return env;
  return join(process.env.OSTREE_SYSROOT || "/", "ostree/repo");
}

/** Thrown when the repo is missing: ostree reports it as G_IO_ERROR_NOT_FOUND. */
class RepoNotFound extends Error {}

/** ostree_repo_open's messages for a missing directory or objects/. */
function checkRepoDir(path: string): void {
  if (path === "") throw new CliError("opening repo: opendir((null)): Bad address");
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") throw new RepoNotFound(`opening repo: opendir(${path}): No such file or directory`);
    throw e;
  }
  if (!st.isDirectory()) throw new CliError(`opening repo: opendir(${path}): Not a directory`);
  if (!existsSync(join(path, "objects"))) throw new RepoNotFound("opening repo: opendir(objects): No such file or directory");
}

async function runCommand(entry: CommandEntry, argv: string[], prgname: string, out: Output): Promise<number> {
  const cmdPrgname = `${prgname} ${entry.name}`;
  if (!entry.load) throw new CliError(`ostree-ts: the '${entry.name}' command is not implemented yet`);
  const cmd: CommandModule = await entry.load();
  const options = [...(entry.noRepo ? [] : [REPO_OPTION]), ...cmd.options, ...GLOBAL_OPTIONS];
  const help = () => formatHelp({ prgname: cmdPrgname, parameterString: cmd.parameterString, summary: entry.description, options });
  let parsed;
  try {
    parsed = parseOptions(argv, options);
  } catch (e) {
    if (e instanceof HelpRequested) {
      out.print(help());
      return 0;
    }
    throw e;
  }
  if (parsed.values.version) {
    out.print(versionText());
    return 0;
  }
  let repoPath: string | undefined;
  let repo: unknown;
  if (!entry.noRepo) {
    const explicit = parsed.values.repo as string | undefined;
    repoPath = explicit ?? defaultRepoPath();
    if (!entry.noCheck) {
      try {
        checkRepoDir(repoPath);
      } catch (e) {
        if (e instanceof RepoNotFound && explicit === undefined) {
          process.stderr.write(help());
          throw new CliError("Command requires a --repo argument");
        }
        throw e;
      }
      const { Repo } = await import("@ostree-ts/objstore");
      repo = await Repo.open(repoPath);
    }
  }
  const inv: Invocation = { prgname: cmdPrgname, opts: parsed.values, args: parsed.args, repoPath, repo, out, help };
  try {
    await cmd.run(inv);
  } catch (e) {
    if (e instanceof UsageError) {
      await out.flush();
      process.stderr.write(`${help()}\n`);
    }
    throw e;
  }
  return 0;
}

async function main(): Promise<number> {
  const prgname = programName();
  const argv = process.argv.slice(2);
  const out = new Output();
  // ostree_run: the first argument not starting with '-' names the command.
  const idx = argv.findIndex((a) => !a.startsWith("-"));
  const commandName = idx >= 0 ? argv[idx]! : undefined;
  const rest = idx >= 0 ? [...argv.slice(0, idx), ...argv.slice(idx + 1)] : argv;
  const entry = COMMANDS.find((c) => c.name === commandName);
  try {
    if (!entry) {
      let err: string;
      try {
        const { values } = parseOptions(rest, GLOBAL_OPTIONS);
        if (values.version) {
          out.print(versionText());
          await out.flush();
          return 0;
        }
        err = commandName === undefined ? "No command specified" : `Unknown command '${commandName}'`;
      } catch (e) {
        if (e instanceof HelpRequested) {
          out.print(mainUsage(prgname));
          await out.flush();
          return 0;
        }
        if (!(e instanceof OptionError)) throw e;
        err = e.message;
      }
      process.stderr.write(mainUsage(prgname));
      printError(err);
      return 1;
    }
    const rc = await runCommand(entry, rest, prgname, out);
    await out.flush();
    return rc;
  } catch (e) {
    await out.flush();
    printError(errorMessage(e));
    if (process.env.OSTREE_TS_DEBUG && e instanceof Error) process.stderr.write(`${e.stack}\n`);
    return 1;
  }
}

process.exitCode = await main();
