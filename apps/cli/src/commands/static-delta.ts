/**
 * `ostree static-delta SUBCOMMAND`: list, show, delete, generate,
 * apply-offline, verify, indexes, reindex — plus `explain` (ours).
 *
 * ostree dispatches the subcommand itself, each with its own option table
 * and help (`ostree static-delta list --help` shows "ostree static-delta
 * list"). main.ts parses one table per command, so this module picks the
 * subcommand from argv when it is loaded (before main parses), exposes that
 * subcommand's table, and prints help itself.
 */
import { existsSync, statSync, writeSync } from "node:fs";
import { mkdtemp, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { resolveRev, validateChecksumString, type Repo } from "@ostree-ts/objstore";
import type { DummyEngine, Ed25519Engine } from "@ostree-ts/gpg";
import { CliError, JSON_OPTION, type CommandModule, type Invocation } from "../command.js";
import { formatHelp, type OptionSpec } from "../goption.js";

const REPO_OPTION: OptionSpec = {
  long: "repo",
  arg: "filename",
  description: "Path to OSTree repository (defaults to current directory or /sysroot/ostree/repo)",
  argDescription: "PATH",
};
const GLOBALS: OptionSpec[] = [
  { long: "verbose", short: "v", arg: "none", description: "Print debug information during command processing" },
  { long: "version", arg: "none", description: "Print version information and exit" },
];
const SIGN_TYPE: OptionSpec = { long: "sign-type", arg: "string", description: "Signature type to use (defaults to 'ed25519')", argDescription: "NAME" };
// As an ostree built with libsodium (ed25519) offers them.
const KEYS_FILE: OptionSpec = { long: "keys-file", arg: "string", description: "Read key(s) from file", argDescription: "NAME" };
const KEYS_DIR: OptionSpec = { long: "keys-dir", arg: "string", description: "Redefine system-wide directories with public and revoked keys for verification", argDescription: "NAME" };
const FROM_TO: OptionSpec[] = [
  { long: "from", arg: "string", description: "Create delta from revision REV", argDescription: "REV" },
  { long: "empty", arg: "none", description: "Create delta from scratch" },
  { long: "inline", arg: "none", description: "Inline delta parts into main delta" },
  { long: "to", arg: "string", description: "Create delta to revision REV", argDescription: "REV" },
  { long: "disable-bsdiff", arg: "none", description: "Disable use of bsdiff" },
];
const SIZES: OptionSpec[] = [
  { long: "min-fallback-size", arg: "string", description: "Minimum uncompressed size in megabytes for individual HTTP request" },
  { long: "max-bsdiff-size", arg: "string", description: "Maximum size in megabytes to consider bsdiff compression for input files" },
  { long: "max-chunk-size", arg: "string", description: "Maximum size of delta chunks in megabytes" },
];
const OURS: OptionSpec[] = [
  { long: "ostree-matching", arg: "none", description: "Use only ostree's similar-file rules and rollsum keying", hidden: true },
  { long: "xz-extreme", arg: "none", description: "Compress parts with xz -9e (smaller, slower)", hidden: true },
];

interface Sub {
  name: string;
  description: string;
  parameterString: string;
  options: OptionSpec[];
  run(inv: Invocation, repo: Repo): Promise<void>;
  hidden?: boolean;
}

/** g_ascii_strtoull(s, NULL, 10) as ostree parses the size options: leading digits, else 0. */
function strtoull(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  const m = /^\s*\+?([0-9]+)/.exec(s);
  return m ? Number(m[1]) : 0;
}

async function deltas() {
  return import("@ostree-ts/deltas");
}

function needArg(inv: Invocation, msg: string): string {
  const a = inv.args[1];
  if (a === undefined) throw new CliError(msg);
  return a;
}

async function resolveFromTo(inv: Invocation, repo: Repo): Promise<{ from: string | null; to: string }> {
  const o = inv.opts;
  const toRev = (o.to as string | undefined) ?? inv.args[1];
  if (toRev === undefined) throw new CliError("TO revision must be specified");
  let fromSource: string | null;
  if (o.empty) {
    if (o.from) throw new CliError("Cannot specify both --empty and --from=REV");
    fromSource = null;
  } else {
    fromSource = (o.from as string | undefined) ?? `${toRev}^`;
  }
  const from = fromSource === null ? null : (await resolveRev(repo, fromSource))!;
  const to = (await resolveRev(repo, toRev))!;
  return { from, to };
}

function generatorOptions(inv: Invocation) {
  const o = inv.opts;
  return {
    minFallbackSize: strtoull(o["min-fallback-size"] as string | undefined),
    maxBsdiffSize: strtoull(o["max-bsdiff-size"] as string | undefined),
    maxChunkSize: strtoull(o["max-chunk-size"] as string | undefined),
    bsdiff: !o["disable-bsdiff"],
    inline: Boolean(o.inline),
    matching: o["ostree-matching"] ? ("ostree" as const) : ("extended" as const),
    xzPreset: o["xz-extreme"] ? ("-9e" as const) : undefined,
  };
}

type SignEngine = Ed25519Engine | DummyEngine;

/**
 * The signing engine for `--sign-type` (default ed25519, as an ostree built
 * with libsodium). `dummy` (ostree's test signer) needs OSTREE_DUMMY_SIGN_ENABLED=1.
 */
async function signEngine(name: string | undefined): Promise<SignEngine> {
  const gpg = await import("@ostree-ts/gpg");
  try {
    const engine = gpg.signEngineByName(name ?? "ed25519");
    if (engine.name === "dummy" && process.env.OSTREE_DUMMY_SIGN_ENABLED !== "1") throw new CliError("dummy signature type is only for ostree testing");
    return engine;
  } catch (e) {
    if (e instanceof gpg.SignError) throw new CliError(e.message);
    throw e;
  }
}

/**
 * Public keys as ostree's static-delta verify/apply-offline load them: the
 * KEY-ID arguments, then `--keys-file` / `--keys-dir` (or the default key
 * directories) when no KEY-ID was given or a keys file was. With `optional`
 * (apply-offline), default directories without keys mean no verification (null).
 */
async function withPublicKeys(engine: SignEngine, inv: Invocation, keyIds: string[], optional: boolean): Promise<SignEngine | null> {
  const gpg = await import("@ostree-ts/gpg");
  const keysFile = inv.opts["keys-file"] as string | undefined;
  const keysDir = inv.opts["keys-dir"] as string | undefined;
  try {
    for (const k of keyIds) engine.addPublicKey(k);
    if (keyIds.length === 0 || keysFile !== undefined) {
      try {
        if (!(engine instanceof gpg.Ed25519Engine)) throw new gpg.SignError(`${engine.name}: loading public keys is not implemented`);
        await engine.loadPublicKeys({ filename: keysFile, basedir: keysDir });
      } catch (e) {
        if (optional && keysFile === undefined && keysDir === undefined && e instanceof gpg.SignError) return null;
        throw e;
      }
    }
    return engine;
  } catch (e) {
    if (e instanceof gpg.SignError) throw new CliError(e.message);
    throw e;
  }
}

/** ostree_sign_data_verify over a signed superblock's `ostree.sign.<type>` entries. */
async function verifySuperblock(engine: SignEngine, superblock: Uint8Array, signatures: ReadonlyArray<readonly [string, { type: string; value: unknown }]>): Promise<void> {
  const gpg = await import("@ostree-ts/gpg");
  const entry = signatures.find(([k]) => k === engine.metadataKey);
  if (!entry) throw new CliError(`no signature for '${engine.metadataKey}' in static-delta superblock`);
  const sigs = entry[1].type === "aay" ? (entry[1].value as Uint8Array[]) : [];
  try {
    await engine.verify(superblock, sigs);
  } catch (e) {
    if (e instanceof gpg.SignError) throw new CliError(e.message);
    throw e;
  }
}

/** `--sign` keys then `--keys-file` lines (one secret key per line), as ostree collects them. */
async function secretKeys(inv: Invocation): Promise<string[] | undefined> {
  const keys = [...((inv.opts.sign as string[] | undefined) ?? [])];
  const keysFile = inv.opts["keys-file"] as string | undefined;
  if (keysFile === undefined) return inv.opts.sign === undefined ? undefined : keys;
  if (!(await stat(keysFile).catch(() => null))?.isFile()) throw new CliError(`File object '${keysFile}' is not a regular file`);
  const lines = (await readFile(keysFile, "utf8")).split("\n");
  if (lines.at(-1) === "") lines.pop();
  return [...keys, ...lines];
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

const SUBS: Sub[] = [
  {
    name: "list",
    description: "List static delta files",
    parameterString: "",
    options: [],
    async run(inv, repo) {
      const names = await (await deltas()).listDeltas(repo);
      if (names.length === 0) inv.out.print("(No static deltas)\n");
      for (const n of names) inv.out.print(`${n}\n`);
    },
  },
  {
    name: "show",
    description: "Dump information on a delta",
    parameterString: "",
    options: [],
    async run(inv, repo) {
      const name = needArg(inv, "DELTA must be specified");
      await (await deltas()).showDelta(repo, name, (l) => inv.out.print(l));
    },
  },
  {
    name: "delete",
    description: "Remove a delta",
    parameterString: "",
    options: [],
    async run(inv, repo) {
      await (await deltas()).deleteDelta(repo, needArg(inv, "DELTA must be specified"));
    },
  },
  {
    name: "generate",
    description: "Generate static delta files",
    parameterString: "[TO]",
    options: [
      ...FROM_TO,
      { long: "if-not-exists", short: "n", arg: "none", description: "Only generate if a delta does not already exist" },
      { long: "set-endianness", arg: "string", description: "Choose metadata endianness ('l' or 'B')", argDescription: "ENDIAN" },
      { long: "swap-endianness", arg: "none", description: "Swap metadata endianness from host order" },
      ...SIZES,
      { long: "filename", arg: "filename", description: "Write the delta content to PATH (a directory).  If not specified, the OSTree repository is used", argDescription: "PATH" },
      { long: "sign", arg: "strv", description: "Sign the delta with", argDescription: "KEY_ID" },
      SIGN_TYPE,
      KEYS_FILE,
      ...OURS,
    ],
    async run(inv, repo) {
      const o = inv.opts;
      const { from, to } = await resolveFromTo(inv, repo);
      const d = await deltas();
      if (o["if-not-exists"]) {
        const name = d.deltaName(from, to);
        if ((await d.listDeltas(repo)).includes(name)) {
          inv.out.print(`Delta ${name} already exists.\n`);
          return;
        }
      }
      let endianness: "l" | "B" = "l";
      const e = o["set-endianness"] as string | undefined;
      if (e !== undefined) {
        if (e !== "l" && e !== "B") throw new CliError(`Invalid endianness '${e}'`);
        endianness = e;
      }
      if (o["swap-endianness"]) endianness = endianness === "l" ? "B" : "l";
      // Checked before generating, so a failure leaves no unsigned delta behind.
      const keys = await secretKeys(inv);
      const engine = keys ? await signEngine(o["sign-type"] as string | undefined) : null;
      inv.out.print(`Generating static delta:\n  From: ${from ?? "empty"}\n  To:   ${to}\n`);
      await inv.out.flush();
      const r = await d.generateDelta(repo, {
        from,
        to,
        ...generatorOptions(inv),
        endianness,
        filename: o.filename as string | undefined,
        log: (l) => process.stderr.write(`${l}\n`),
      });
      if (keys && engine) {
        const plain = new Uint8Array(await readFile(r.superblockPath));
        const sigs: Uint8Array[] = [];
        const gpg = await import("@ostree-ts/gpg");
        try {
          for (const k of keys) {
            engine.setSecretKey(k);
            sigs.push(await engine.sign(plain));
          }
        } catch (e) {
          if (e instanceof gpg.SignError) throw new CliError(e.message);
          throw e;
        }
        const signed = d.encodeSignedSuperblock(plain, { [engine.name]: sigs });
        const tmp = `${r.superblockPath}.tmp-sign`;
        await writeFile(tmp, signed, { mode: 0o644 });
        await rename(tmp, r.superblockPath);
      }
    },
  },
  {
    name: "apply-offline",
    description: "Apply static delta file",
    parameterString: "",
    options: [SIGN_TYPE, KEYS_FILE, KEYS_DIR],
    async run(inv, repo) {
      const path = needArg(inv, "PATH must be specified");
      const d = await deltas();
      // KEY-IDs follow PATH; without any (and no --keys-file/--keys-dir), the default key
      // directories are tried and, holding no keys, nothing is verified. dummy keeps the last key.
      const engine = await withPublicKeys(await signEngine(inv.opts["sign-type"] as string | undefined), inv, inv.args.slice(2), true);
      const delta = await d.loadDelta(path);
      if (delta.signed) {
        if (!engine && repo.config.getBoolean("core", "sign-verify-deltas", false)) throw new CliError("Key is mandatory to check delta signature");
        if (engine) await verifySuperblock(engine, delta.signed.superblock, delta.signed.signatures);
      }
      await d.applyOffline(repo, path);
    },
  },
  {
    name: "verify",
    description: "Verify static delta signatures",
    parameterString: "STATIC-DELTA-FILE [KEY-ID...]",
    options: [SIGN_TYPE, KEYS_FILE, KEYS_DIR],
    async run(inv, repo) {
      const name = needArg(inv, "DELTA must be specified");
      let engine: SignEngine;
      try {
        engine = await signEngine(inv.opts["sign-type"] as string | undefined);
      } catch (e) {
        inv.out.print("Sign-type not supported\n");
        throw e;
      }
      const d = await deltas();
      const keyIds = inv.args.slice(2);
      // dummy cannot load keys from files: without a KEY-ID it checks against the empty key.
      const loaded = engine.name === "dummy" && keyIds.length === 0 ? await withPublicKeys(engine, inv, [""], false) : await withPublicKeys(engine, inv, keyIds, false);
      let error: Error | null = null;
      try {
        const bytes = name.includes("/") ? new Uint8Array(await readFile(name)) : (await d.readRepoSuperblock(repo, name)).bytes;
        if (!d.isSignedSuperblock(bytes)) throw new CliError("no signatures in static-delta");
        const signed = d.decodeSignedSuperblock(bytes);
        await verifySuperblock(loaded!, signed.superblock, signed.signatures);
      } catch (e) {
        error = e as Error;
      }
      inv.out.print(`Verification ${error ? "fails" : "OK"}\n`);
      if (error) throw error;
    },
  },
  {
    name: "indexes",
    description: "List static delta indexes",
    parameterString: "",
    options: [],
    async run(inv, repo) {
      const list = await (await deltas()).listDeltaIndexes(repo);
      if (list.length === 0) inv.out.print("(No static deltas indexes)\n");
      for (const t of list) inv.out.print(`${t}\n`);
    },
  },
  {
    name: "reindex",
    description: "Regenerate static delta indexes",
    parameterString: "",
    options: [{ long: "to", arg: "string", description: "Only update delta index to revision REV", argDescription: "REV" }],
    async run(inv, repo) {
      const to = inv.opts.to as string | undefined;
      await (await deltas()).reindexDeltas(repo, to === undefined ? undefined : validateChecksumString(to));
    },
  },
  {
    name: "explain",
    description: "Show how each file of a delta would be sent and what it costs",
    parameterString: "[TO]",
    hidden: true,
    options: [...FROM_TO, ...SIZES, ...OURS, { long: "limit", arg: "int", description: "Print only the N most expensive files", argDescription: "N" }, JSON_OPTION],
    async run(inv, repo) {
      const { from, to } = await resolveFromTo(inv, repo);
      const d = await deltas();
      // Generated outside the repository: explaining changes nothing.
      const dir = await mkdtemp(join(tmpdir(), "ostree-ts-explain-"));
      try {
        const r = await d.generateDelta(repo, { from, to, ...generatorOptions(inv), explain: true, filename: join(dir, "superblock") });
        const rows = d.sortExplain(r.explain);
        const limit = inv.opts.limit as number | undefined;
        const shown = limit === undefined ? rows : rows.slice(0, limit);
        const total = r.parts.reduce((s, p) => s + p.size, 0) + r.fallbacks.reduce((s, f) => s + f.size, 0) + r.superblockSize;
        if (inv.opts.json) {
          inv.out.print(`${JSON.stringify({ from, to, totalBytes: total, superblockBytes: r.superblockSize, parts: r.parts, fallbacks: r.fallbacks.length, stats: r.stats, files: shown }, null, 2)}\n`);
          return;
        }
        const byStrategy = new Map<string, { n: number; cost: number; size: number }>();
        for (const e of r.explain) {
          const s = byStrategy.get(e.strategy) ?? { n: 0, cost: 0, size: 0 };
          s.n++;
          s.cost += e.cost;
          s.size += e.size;
          byStrategy.set(e.strategy, s);
        }
        inv.out.print(`Delta ${from ?? "empty"} -> ${to}\n`);
        inv.out.print(`Total: ${formatBytes(total)} in ${r.parts.length} part(s), ${r.fallbacks.length} fallback(s), superblock ${formatBytes(r.superblockSize)}\n`);
        for (const [k, s] of [...byStrategy].sort((a, b) => b[1].cost - a[1].cost)) {
          inv.out.print(`  ${k.padEnd(9)} ${String(s.n).padStart(7)} objects  ${formatBytes(s.size).padStart(10)} -> ${formatBytes(s.cost).padStart(10)}\n`);
        }
        inv.out.print(`${"COST".padStart(10)} ${"SIZE".padStart(10)} ${"STRATEGY".padEnd(9)} PATH\n`);
        for (const e of shown) {
          const extra = e.fromPath && e.fromPath !== e.path ? ` (from ${e.fromPath})` : "";
          inv.out.print(`${formatBytes(e.cost).padStart(10)} ${formatBytes(e.size).padStart(10)} ${e.strategy.padEnd(9)} ${e.path || e.checksum}${extra}\n`);
        }
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  },
];

/**
 * The repository as ostree_option_context_parse opens it for a subcommand:
 * --repo, else the current directory if it is a repo, else $OSTREE_REPO,
 * else $OSTREE_SYSROOT/ostree/repo; with ostree's messages when missing.
 */
async function openRepo(explicit: string | undefined, help: () => string): Promise<Repo> {
  let path = explicit;
  if (path === undefined) {
    if (existsSync("objects") && existsSync("config")) path = ".";
    else path = process.env.OSTREE_REPO || join(process.env.OSTREE_SYSROOT || "/", "ostree/repo");
  }
  if (path === "") throw new CliError("opening repo: opendir((null)): Bad address");
  let missing: string | null = null;
  try {
    if (!statSync(path).isDirectory()) throw new CliError(`opening repo: opendir(${path}): Not a directory`);
    if (!existsSync(join(path, "objects"))) missing = "opening repo: opendir(objects): No such file or directory";
  } catch (e) {
    if (e instanceof CliError) throw e;
    missing = `opening repo: opendir(${path}): No such file or directory`;
  }
  if (missing !== null) {
    if (explicit !== undefined) throw new CliError(missing);
    process.stderr.write(help());
    throw new CliError("Command requires a --repo argument");
  }
  const { Repo } = await import("@ostree-ts/objstore");
  return Repo.open(path);
}

/* ---------- subcommand selection (at load time, before main parses argv) ---------- */

function prgname(): string {
  return process.env.OSTREE_TS_PRGNAME || basename(process.argv[1] ?? "ostree-ts").replace(/\.(mjs|js|cjs)$/, "");
}

function usage(): string {
  const visible = SUBS.filter((s) => !s.hidden);
  return `Usage:\n  ostree static-delta [OPTION...] COMMAND\n\nBuiltin "static-delta" Commands:\n${visible.map((s) => `  ${s.name.padEnd(17)}${s.description}\n`).join("")}\n`;
}

/** ostree_builtin_static_delta's scan: the first non-option argument after the command, or a help flag before it. */
function scan(): { name: string | undefined; help: boolean } {
  const argv = process.argv.slice(2);
  const at = argv.findIndex((a) => !a.startsWith("-"));
  const rest = argv.filter((_, i) => i !== at);
  let name: string | undefined;
  let help = false;
  let seenName = false;
  for (const a of rest) {
    if (a === "--") break;
    if (!a.startsWith("-")) {
      if (!seenName) name = a;
      seenName = true;
    } else if (a === "--help" || a === "-h" || a === "--help-all" || a === "-?") {
      help = true;
      if (!seenName) break;
    }
  }
  return { name, help };
}

const picked = scan();
const sub = SUBS.find((s) => s.name === picked.name);

if (picked.help) {
  // Help is printed here because its layout names the subcommand, which main.ts cannot know.
  const text = sub
    ? formatHelp({ prgname: `${prgname()} static-delta ${sub.name}`, parameterString: sub.parameterString, summary: sub.description, options: [REPO_OPTION, ...sub.options, ...GLOBALS] })
    : usage();
  writeSync(1, text);
  process.exit(0);
}

const staticDelta: CommandModule = {
  parameterString: sub?.parameterString ?? "",
  options: sub ? [REPO_OPTION, ...sub.options] : [REPO_OPTION],
  async run(inv) {
    if (!sub) {
      process.stderr.write(usage());
      throw new CliError(picked.name === undefined ? "No command specified" : `Unknown "static-delta" subcommand '${picked.name}'`);
    }
    const repo = await openRepo(inv.opts.repo as string | undefined, () =>
      formatHelp({ prgname: `${prgname()} static-delta ${sub.name}`, parameterString: sub.parameterString, summary: sub.description, options: [REPO_OPTION, ...sub.options, ...GLOBALS] }),
    );
    await sub.run(inv, repo);
  },
};
export default staticDelta;
