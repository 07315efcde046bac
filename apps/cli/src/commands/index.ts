import type { CommandModule } from "../command.js";

export interface CommandEntry {
  name: string;
  description: string;
  /** OSTREE_BUILTIN_FLAG_NO_REPO: no --repo option, no repository opened. */
  noRepo?: boolean;
  /** OSTREE_BUILTIN_FLAG_NO_CHECK: --repo accepted but not opened (init). */
  noCheck?: boolean;
  /** Lazy so start-up only loads the command that runs; absent = not implemented yet. */
  load?: () => Promise<CommandModule>;
}

const mod = (p: Promise<{ default: CommandModule }>) => p.then((m) => m.default);

/**
 * ostree 2022.7's builtin command table, in its order (the usage text lists it).
 * To add a command: create `./<name>.ts` exporting a default CommandModule and set `load`.
 */
export const COMMANDS: CommandEntry[] = [
  { name: "admin", description: "Commands for managing a host system booted with ostree", noRepo: true },
  { name: "cat", description: "Concatenate contents of files", load: () => mod(import("./cat.js")) },
  { name: "checkout", description: "Check out a commit into a filesystem tree", load: () => mod(import("./checkout.js")) },
  { name: "checksum", description: "Checksum a file or directory", noRepo: true, load: () => mod(import("./checksum.js")) },
  { name: "commit", description: "Commit a new revision", load: () => mod(import("./commit.js")) },
  { name: "config", description: "Change repo configuration settings", load: () => mod(import("./config.js")) },
  { name: "diff", description: "Compare directory TARGETDIR against revision REV", load: () => mod(import("./diff.js")) },
  { name: "export", description: "Stream COMMIT to stdout in tar format", load: () => mod(import("./export.js")) },
  { name: "find-remotes", description: "Find remotes to serve the given refs", load: () => mod(import("./find-remotes.js")) },
  { name: "create-usb", description: "Copy the refs to a USB stick" },
  { name: "fsck", description: "Check the repository for consistency", load: () => mod(import("./fsck.js")) },
  { name: "gpg-sign", description: "Sign a commit", load: () => mod(import("./gpg-sign.js")) },
  { name: "init", description: "Initialize a new empty repository", noCheck: true, load: () => mod(import("./init.js")) },
  { name: "log", description: "Show log starting at commit or ref", load: () => mod(import("./log.js")) },
  { name: "ls", description: "List file paths", load: () => mod(import("./ls.js")) },
  { name: "prune", description: "Search for unreachable objects", load: () => mod(import("./prune.js")) },
  { name: "pull-local", description: "Copy data from SRC_REPO", load: () => mod(import("./pull-local.js")) },
  { name: "pull", description: "Download data from remote repository", load: () => mod(import("./pull.js")) },
  { name: "refs", description: "List refs", load: () => mod(import("./refs.js")) },
  { name: "remote", description: "Remote commands that may involve internet access", noRepo: true, load: () => mod(import("./remote.js")) },
  { name: "reset", description: "Reset a REF to a previous COMMIT", load: () => mod(import("./reset.js")) },
  { name: "rev-parse", description: "Output the target of a rev", load: () => mod(import("./rev-parse.js")) },
  { name: "sign", description: "Sign a commit", load: () => mod(import("./sign.js")) },
  { name: "show", description: "Output a metadata object", load: () => mod(import("./show.js")) },
  { name: "static-delta", description: "Static delta related commands", noRepo: true, load: () => mod(import("./static-delta.js")) },
  { name: "summary", description: "Manage summary metadata", load: () => mod(import("./summary.js")) },
];
