import { existsSync, statSync } from "node:fs";
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { CliError, UsageError, type CommandModule, type Invocation } from "../command.js";
import { formatHelp, type OptionSpec } from "../goption.js";
import type { Repo } from "@ostree-ts/objstore";

const REPO_OPT: OptionSpec = {
  long: "repo",
  arg: "filename",
  description: "Path to OSTree repository (defaults to current directory or /sysroot/ostree/repo)",
  argDescription: "PATH",
};
const REPO_OPT_SYSROOT: OptionSpec = { ...REPO_OPT, description: "Path to OSTree repository (defaults to /sysroot/ostree/repo)" };
const SYSROOT_OPT: OptionSpec = { long: "sysroot", arg: "filename", description: "Use sysroot at PATH (overrides --repo)", argDescription: "PATH" };
const CACHE_DIR_OPT: OptionSpec = { long: "cache-dir", arg: "filename", description: "Use custom cache dir" };
const GLOBAL: OptionSpec[] = [
  { long: "verbose", short: "v", arg: "none", description: "Print debug information during command processing" },
  { long: "version", arg: "none", description: "Print version information and exit" },
];

interface Sub {
  name: string;
  description: string;
  parameterString: string;
  options: OptionSpec[];
}

/** ostree 2022.7's `remote` subcommands, in its order. */
const SUBS: Sub[] = [
  {
    name: "add",
    description: "Add a remote repository",
    parameterString: "NAME [metalink=|mirrorlist=]URL [BRANCH...]",
    options: [
      { long: "set", arg: "strv", description: "Set config option KEY=VALUE for remote", argDescription: "KEY=VALUE" },
      { long: "no-gpg-verify", arg: "none", description: "Disable GPG verification" },
      { long: "no-sign-verify", arg: "none", description: "Disable signature verification" },
      { long: "sign-verify", arg: "strv", description: "Verify signatures using KEYTYPE=inline:PUBKEY or KEYTYPE=file:/path/to/key", argDescription: "KEYTYPE=[inline|file]:PUBKEY" },
      { long: "if-not-exists", arg: "none", description: "Do nothing if the provided remote exists" },
      { long: "force", arg: "none", description: "Replace the provided remote if it exists" },
      { long: "gpg-import", arg: "filename", description: "Import GPG key from FILE", argDescription: "FILE" },
      { long: "custom-backend", arg: "string", description: "This remote has content not fetched via libostree", argDescription: "NAME" },
      { long: "contenturl", arg: "string", description: "Use URL when fetching content", argDescription: "URL" },
      { long: "collection-id", arg: "string", description: "Globally unique ID for this repository as an collection of refs for redistribution to other repositories", argDescription: "COLLECTION-ID" },
      REPO_OPT_SYSROOT,
      SYSROOT_OPT,
    ],
  },
  {
    name: "delete",
    description: "Delete a remote repository",
    parameterString: "NAME",
    options: [{ long: "if-exists", arg: "none", description: "Do nothing if the provided remote does not exist" }, REPO_OPT_SYSROOT, SYSROOT_OPT],
  },
  { name: "show-url", description: "Show remote repository URL", parameterString: "NAME", options: [REPO_OPT] },
  {
    name: "list",
    description: "List remote repository names",
    parameterString: "",
    options: [REPO_OPT, { long: "show-urls", short: "u", arg: "none", description: "Show remote URLs in list" }],
  },
  {
    name: "gpg-import",
    description: "Import GPG keys",
    parameterString: "NAME [KEY-ID...]",
    options: [
      REPO_OPT,
      { long: "keyring", short: "k", arg: "filenamev", description: "Import keys from a keyring file (repeatable)", argDescription: "FILE" },
      { long: "stdin", arg: "none", description: "Import keys from standard input" },
    ],
  },
  { name: "gpg-list-keys", description: "Show remote GPG keys", parameterString: "NAME", options: [REPO_OPT] },
  { name: "add-cookie", description: "Add a cookie to remote", parameterString: "NAME DOMAIN PATH COOKIE_NAME VALUE", options: [REPO_OPT] },
  { name: "delete-cookie", description: "Remove one cookie from remote", parameterString: "NAME DOMAIN PATH COOKIE_NAME", options: [REPO_OPT] },
  { name: "list-cookies", description: "Show remote repository cookies", parameterString: "NAME", options: [REPO_OPT] },
  { name: "refs", description: "List remote refs", parameterString: "NAME", options: [REPO_OPT, CACHE_DIR_OPT] },
  {
    name: "summary",
    description: "Show remote summary",
    parameterString: "NAME",
    options: [REPO_OPT, CACHE_DIR_OPT, { long: "raw", arg: "none", description: "Show raw variant data" }],
  },
];

/** Every subcommand's options, so the shared parser accepts them; each subcommand then rejects the others. */
const ALL_OPTIONS: OptionSpec[] = (() => {
  const seen = new Map<string, OptionSpec>();
  for (const s of SUBS) for (const o of s.options) if (!seen.has(o.long)) seen.set(o.long, { ...o, hidden: true });
  return [...seen.values()];
})();

function mainHelp(prgname: string): string {
  const summary = ['Builtin "remote" Commands:', ...SUBS.map((s) => `  ${s.name.padEnd(18)}${s.description}`)].join("\n");
  return formatHelp({ prgname, parameterString: "COMMAND", summary, options: GLOBAL });
}

function defaultRepoPath(): string {
  try {
    if (statSync("objects").isDirectory() && statSync("config").isFile()) return ".";
  } catch {
    // not a repo here
  }
  return process.env.OSTREE_REPO || join(process.env.OSTREE_SYSROOT || "/", "ostree/repo");
}

/** Which argv options were given, by long name (the shared parser folds short forms into long ones). */
function givenOptions(inv: Invocation): string[] {
  return Object.keys(inv.opts).filter((k) => inv.opts[k] !== undefined && k !== "verbose" && k !== "version");
}

/** `remote gpg-import` (and `remote add --gpg-import`): keys into `<repo>/NAME.trustedkeys.gpg`. */
async function gpgImport(inv: Invocation, repo: Repo, name: string, files: string[], stdin: boolean, keyIds: string[]): Promise<void> {
  const gpg = await import("@ostree-ts/gpg");
  const chunks: Buffer[] = [];
  if (stdin) for await (const c of process.stdin) chunks.push(c as Buffer);
  else for (const f of files) chunks.push(await readFile(f));
  try {
    const n = await gpg.importRemoteKeys(repo, name, new Uint8Array(Buffer.concat(chunks)), keyIds);
    inv.out.print(`Imported ${n} GPG key${n === 1 ? "" : "s"} to remote "${name}"\n`);
  } catch (e) {
    if (e instanceof gpg.GpgKeyError) throw new CliError(e.message);
    throw e;
  }
}

const remote: CommandModule = {
  parameterString: "COMMAND",
  options: ALL_OPTIONS,
  async run(inv) {
    const [subName, ...args] = inv.args;
    const sub = SUBS.find((s) => s.name === subName);
    const subPrg = `${inv.prgname} ${subName ?? ""}`;
    if (!sub) {
      process.stderr.write(mainHelp(inv.prgname));
      throw new CliError(subName === undefined ? "No \"remote\" subcommand specified" : `Unknown "remote" subcommand '${subName}'`);
    }
    const subHelp = () => formatHelp({ prgname: subPrg, parameterString: sub.parameterString, summary: sub.description, options: [...sub.options, ...GLOBAL] });
    const allowed = new Set(sub.options.map((o) => o.long));
    for (const k of givenOptions(inv)) if (!allowed.has(k)) throw new CliError(`Unknown option --${k}`);
    const usage = (msg: string): never => {
      process.stderr.write(`${subHelp()}\n`);
      throw new UsageError(msg);
    };

    const { Repo } = await import("@ostree-ts/objstore");
    const fetch = await import("@ostree-ts/fetch");
    const sysroot = inv.opts.sysroot as string | undefined;
    const repoPath = sysroot ? join(sysroot, "ostree/repo") : ((inv.opts.repo as string | undefined) ?? defaultRepoPath());
    if (!existsSync(join(repoPath, "objects"))) {
      if (inv.opts.repo === undefined && !sysroot) {
        process.stderr.write(subHelp());
        throw new CliError("Command requires a --repo argument");
      }
      throw new CliError(`opening repo: opendir(${repoPath}): No such file or directory`);
    }
    const repo = await Repo.open(repoPath);
    const remotes = new fetch.Remotes(repo);
    const name = args[0];

    switch (sub.name) {
      case "add": {
        // A custom backend (e.g. ostree-rs-ext) needs no URL.
        if (args.length < 2 && !(args.length === 1 && inv.opts["custom-backend"] !== undefined)) usage("NAME and URL must be specified");
        if (inv.opts["if-not-exists"] && inv.opts.force) usage("Can only specify one of --if-not-exists and --force");
        const set: Array<[string, string]> = ((inv.opts.set as string[] | undefined) ?? []).map((kv) => {
          const eq = kv.indexOf("=");
          if (eq < 0) throw new CliError(`Missing '=' in KEY=VALUE for --set`);
          return [kv.slice(0, eq), kv.slice(eq + 1)];
        });
        await remotes.add(name!, args[1] ?? null, {
          branches: args.slice(2),
          contentUrl: inv.opts.contenturl as string | undefined,
          set,
          noGpgVerify: Boolean(inv.opts["no-gpg-verify"]),
          noSignVerify: Boolean(inv.opts["no-sign-verify"]),
          signVerify: inv.opts["sign-verify"] as string[] | undefined,
          collectionId: inv.opts["collection-id"] as string | undefined,
          customBackend: inv.opts["custom-backend"] as string | undefined,
          ifNotExists: Boolean(inv.opts["if-not-exists"]),
          force: Boolean(inv.opts.force),
        });
        const keyFile = inv.opts["gpg-import"] as string | undefined;
        if (keyFile !== undefined) await gpgImport(inv, repo, name!, [keyFile], false, []);
        return;
      }
      case "delete":
        if (args.length < 1) usage("NAME must be specified");
        await remotes.delete(name!, { ifExists: Boolean(inv.opts["if-exists"]) });
        // As ostree: the remote's keyring goes with it.
        await rm(join(repo.path, `${name}.trustedkeys.gpg`), { force: true });
        return;
      case "show-url":
        if (args.length < 1) usage("NAME must be specified");
        inv.out.print(`${(await remotes.get(name!)).url}\n`);
        return;
      case "list": {
        const names = await remotes.list();
        if (inv.opts["show-urls"]) {
          const w = Math.max(0, ...names.map((n) => n.length));
          for (const n of names) inv.out.print(`${n.padEnd(w)}  ${(await remotes.get(n)).url}\n`);
        } else for (const n of names) inv.out.print(`${n}\n`);
        return;
      }
      case "gpg-import":
        if (args.length < 1) usage("NAME must be specified");
        if (inv.opts.stdin && inv.opts.keyring !== undefined) usage("--keyring and --stdin are mutually exclusive");
        await gpgImport(inv, repo, name!, (inv.opts.keyring as string[] | undefined) ?? [], Boolean(inv.opts.stdin), args.slice(1));
        return;
      case "gpg-list-keys": {
        const gpg = await import("@ostree-ts/gpg");
        try {
          inv.out.print(gpg.formatGpgKeys(await gpg.listGpgKeys(repo, name ?? null)));
        } catch (e) {
          if (e instanceof gpg.GpgKeyError || e instanceof gpg.GpgError) throw new CliError(e.message);
          throw e;
        }
        return;
      }
      case "add-cookie":
        if (args.length < 5) usage("NAME, DOMAIN, PATH, COOKIE_NAME and VALUE must be specified");
        await fetch.addCookie(repo, name!, args[1]!, args[2]!, args[3]!, args[4]!);
        return;
      case "delete-cookie":
        if (args.length < 4) usage("NAME, DOMAIN, PATH and COOKIE_NAME must be specified");
        await fetch.deleteCookie(repo, name!, args[1]!, args[2]!, args[3]!);
        return;
      case "list-cookies":
        if (args.length < 1) usage("NAME must be specified");
        for (const c of await fetch.listCookies(repo, name!)) inv.out.print(fetch.formatCookie(c));
        return;
      case "refs":
      case "summary": {
        if (args.length < 1) usage("NAME must be specified");
        // A remote without a URL (custom backend) fails as ostree does: "No "url" option"; a metalink stands in for it.
        const named = await remotes.get(name!);
        if (named.option("metalink") === undefined) void named.url;
        const { source, remote: r } = await fetch.openRemoteSource(repo, name!);
        try {
          const s = await fetch.fetchSummary(repo, source, name!, { gpgVerifySummary: r?.gpgVerifySummary, cacheDir: inv.opts["cache-dir"] as string | undefined });
          if (!s) throw new CliError(sub.name === "refs" ? "Remote refs not available; server has no summary file" : `Remote "${name}" has no summary file`);
          if (sub.name === "refs") {
            for (const ref of [...s.parsed.refs.keys()].sort()) inv.out.print(`${name}:${ref}\n`);
          } else {
            const { viewSummary } = await import("@ostree-ts/objstore");
            for (const line of viewSummary(s.bytes, { raw: Boolean(inv.opts.raw) })) inv.out.print(`${line}\n`);
            // As ot-remote-builtin-summary.c: with gpg-verify-summary, the (already checked) signatures are described; not for --raw.
            if (r?.gpgVerifySummary && s.sig && !inv.opts.raw) {
              const gpg = await import("@ostree-ts/gpg");
              const result = await gpg.verifySummaryForRemote(repo, name!, s.bytes, gpg.decodeSummarySig(s.sig));
              inv.out.print(`\n${gpg.formatVerifyResult(result)}`);
            }
          }
        } finally {
          await source.close();
        }
        return;
      }
    }
  },
};
export default remote;
