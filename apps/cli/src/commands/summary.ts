import { parseText, variant, type Variant } from "@ostree-ts/gvariant";
import { commitRepoMetadata, readSummary, updateSummary, viewSummary, type MetadataDict, type Repo } from "@ostree-ts/objstore";
import { CliError, type CommandModule } from "../command.js";

/** `-m KEY=VALUE` with VALUE in GVariant text format, as ostree's g_variant_parse reads it. */
function additionalMetadata(args: string[]): MetadataDict {
  const out: Array<[string, Variant]> = [];
  for (const a of args) {
    const eq = a.indexOf("=");
    if (eq < 0) throw new CliError(`Missing '=' in KEY=VALUE metadata '${a}'`);
    const text = a.slice(eq + 1);
    let v;
    try {
      v = parseText(text);
    } catch (e) {
      // ostree prefixes an error whose text already starts with ": ", hence the doubled colon.
      throw new CliError(`Error parsing variant ‘${text}’: : ${(e as Error).message}`);
    }
    out.push([a.slice(0, eq), variant(v.type, v.value)]);
  }
  return out;
}

const summary: CommandModule = {
  parameterString: "",
  options: [
    { long: "update", short: "u", arg: "none", description: "Update the summary" },
    { long: "view", short: "v", arg: "none", description: "View the local summary file" },
    { long: "raw", arg: "none", description: "View the raw bytes of the summary file" },
    { long: "gpg-sign", arg: "strv", description: "GPG Key ID to sign the summary with", argDescription: "KEY-ID" },
    { long: "gpg-homedir", arg: "filename", description: "GPG Homedir to use when looking for keyrings", argDescription: "HOMEDIR" },
    { long: "sign", arg: "strv", description: "Key ID to sign the summary with", argDescription: "KEY-ID" },
    { long: "sign-type", arg: "string", description: "Signature type to use (defaults to 'ed25519')", argDescription: "NAME" },
    { long: "add-metadata", short: "m", arg: "strv", description: "Additional metadata field to add to the summary", argDescription: "KEY=VALUE" },
  ],
  async run(inv) {
    const repo = inv.repo as Repo;
    if (inv.opts.update) {
      const extra = inv.opts["add-metadata"] ? additionalMetadata(inv.opts["add-metadata"] as string[]) : undefined;
      const gpgKeys = (inv.opts["gpg-sign"] as string[] | undefined) ?? [];
      const signKeys = (inv.opts.sign as string[] | undefined) ?? [];
      const homedir = inv.opts["gpg-homedir"] as string | undefined;
      const gpg = gpgKeys.length || signKeys.length ? await import("@ostree-ts/gpg") : null;
      try {
        // As ot-builtin-summary.c: the sign engine is looked up before anything is written.
        const engine = gpg && signKeys.length ? gpg.signEngineByName((inv.opts["sign-type"] as string | undefined) ?? "ed25519") : null;
        // With a collection ID, the metadata also goes into a signed `ostree-metadata` commit first.
        await commitRepoMetadata(repo, {
          additionalMetadata: extra,
          beforeRef: async (checksum) => {
            for (const keyId of gpgKeys) await gpg!.signCommit(repo, checksum, { keyId, homedir });
            for (const key of signKeys) {
              engine!.setSecretKey(key);
              await gpg!.signCommitWith(repo, checksum, engine!);
            }
          },
        });
        await updateSummary(repo, { additionalMetadata: extra });
        // summary -u removed summary.sig: each signature is appended to a fresh one.
        for (const keyId of gpgKeys) await gpg!.signSummary(repo, { keyId, homedir });
        for (const key of signKeys) {
          engine!.setSecretKey(key);
          await gpg!.signSummaryWith(repo, engine!);
        }
      } catch (e) {
        if (gpg && (e instanceof gpg.SignError || e instanceof gpg.GpgError || e instanceof gpg.GpgKeyError)) throw new CliError(e.message);
        throw e;
      }
    } else if (inv.opts.view || inv.opts.raw) {
      for (const line of viewSummary(await readSummary(repo), { raw: Boolean(inv.opts.raw) })) inv.out.print(`${line}\n`);
    } else {
      throw new CliError("No option specified; use -u to update summary");
    }
  },
};
export default summary;
