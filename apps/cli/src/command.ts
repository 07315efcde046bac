import type { OptionSpec, OptionValues } from "./goption.js";
import type { Output } from "./output.js";

/** What every command file default-exports. */
export interface CommandModule {
  /** GOption parameter string shown in `Usage:` (e.g. "[PREFIX]"). */
  parameterString: string;
  options: OptionSpec[];
  run(inv: Invocation): Promise<void>;
}

export interface Invocation {
  /** "ostree refs" — what Usage: lines show. */
  prgname: string;
  opts: OptionValues;
  /** Positional arguments after the command name (ostree's argv[1..]). */
  args: string[];
  /** The --repo path, or the default ostree picked; undefined for NO_REPO commands. */
  repoPath: string | undefined;
  /** The opened repository (typed loosely so main.ts need not load objstore). */
  repo: unknown;
  out: Output;
  /** Help text as printed by --help (for usage errors). */
  help(): string;
}

/** ostree's ot_util_usage_error: help on stderr, then `error: message`. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** A plain `error: message` failure with exit code 1 (glnx_throw in ostree). */
export class CliError extends Error {
  override name = "CliError";
}

/** The hidden --json flag several commands accept. */
export const JSON_OPTION: OptionSpec = { long: "json", arg: "none", description: "Print machine-readable JSON", hidden: true };
