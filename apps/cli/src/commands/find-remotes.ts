import type { Repo } from "@ostree-ts/objstore";
import type { FinderName, FinderResult } from "@ostree-ts/fetch";
import { UsageError, type CommandModule } from "../command.js";

/** ot-builtin-find-remotes.c's validate_finders_list: each of config, lan, mount at most once. */
function parseFinders(text: string): FinderName[] {
  const names = text.split(",");
  if (text === "") throw new UsageError("List of finders in --finders option must not be empty");
  const seen = new Set<string>();
  for (const n of names) {
    if (!["config", "lan", "mount"].includes(n) || seen.has(n)) throw new UsageError(`Unknown or duplicate finder type given in --finders option: ‘${n}’`);
    seen.add(n);
  }
  // ostree built without Avahi refuses lan the same way; Debian's (with Avahi) hangs when the daemon is not running.
  if (seen.has("lan")) throw new UsageError("LAN repo finder requested but ostree-ts was compiled without Avahi support");
  return names as FinderName[];
}

/** g_date_time_format "%FT%TZ" of a UTC time. */
const iso = (secs: number) => new Date(secs * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");

function formatResult(i: number, r: FinderResult): string {
  const refs = r.refs.map((x) => `    - (${x.collectionId}, ${x.ref}) = ${x.checksum ?? "(not found)"}\n`).join("");
  return (
    `Result ${i}: ${r.url}\n` +
    ` - Finder: ${r.finder}\n` +
    ` - Keyring: ${r.keyring}\n` +
    ` - Priority: ${r.priority}\n` +
    ` - Summary last modified: ${r.summaryLastModified > 0 ? iso(r.summaryLastModified) : "unknown"}\n` +
    ` - Refs:\n${refs}\n`
  );
}

const findRemotes: CommandModule = {
  parameterString: "COLLECTION-ID REF [COLLECTION-ID REF...]",
  options: [
    { long: "cache-dir", arg: "filename", description: "Use custom cache dir" },
    { long: "disable-fsync", arg: "none", description: "Do not invoke fsync()" },
    { long: "finders", arg: "string", description: "Use the specified comma separated list of finders (e.g. config,lan,mount)", argDescription: "FINDERS" },
    { long: "pull", arg: "none", description: "Pull the updates after finding them" },
    { long: "mirror", arg: "none", description: "Do a mirror pull (see ostree pull --mirror)" },
  ],
  async run(inv) {
    const repo = inv.repo as Repo;
    const args = inv.args;
    if (args.length < 2) throw new UsageError("At least one COLLECTION-ID REF pair must be specified");
    if (args.length % 2 !== 0) throw new UsageError("Only complete COLLECTION-ID REF pairs may be specified");
    if (inv.opts.mirror && !inv.opts.pull) throw new UsageError("When --mirror is specified, --pull must also be");
    const fetch = await import("@ostree-ts/fetch");
    const { validateCollectionId, validateRef } = await import("@ostree-ts/objstore");
    const refs: Array<{ collectionId: string; ref: string }> = [];
    for (let i = 0; i < args.length; i += 2) refs.push({ collectionId: validateCollectionId(args[i]!), ref: validateRef(args[i + 1]!) });
    const finders = inv.opts.finders !== undefined ? parseFinders(inv.opts.finders as string) : undefined;
    const cacheDir = inv.opts["cache-dir"] as string | undefined;
    const results = await fetch.findRemotes(repo, refs, { finders, cacheDir });

    for (const [i, r] of results.entries()) inv.out.print(formatResult(i, r));
    if (results.length === 0) {
      inv.out.print("No results.\n");
      return;
    }
    const key = (r: { collectionId: string; ref: string }) => `${r.collectionId}\0${r.ref}`;
    const found = new Set(results.flatMap((r) => r.refs.filter((x) => x.checksum !== null).map(key)));
    inv.out.print(`${found.size}/${refs.length} refs were found.\n`);
    if (found.size !== refs.length) {
      inv.out.print("Refs not found in any remote:\n");
      for (const r of refs) if (!found.has(key(r))) inv.out.print(` - (${r.collectionId}, ${r.ref})\n`);
    }
    if (!inv.opts.pull) return;
    await fetch.pullFromRemotes(repo, results, { mirror: Boolean(inv.opts.mirror) });
    inv.out.print(`Pulled ${refs.length}/${refs.length} refs successfully.\n`);
  },
};
export default findRemotes;
