import { parseText, variant, type Variant } from "@ostree-ts/gvariant";
import { readSummary, updateSummary, viewSummary, type MetadataDict, type Repo } from "@ostree-ts/objstore";
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
      if (repo.config.getString("core", "collection-id")) {
        // ostree also commits an `ostree-metadata` ref here; that needs the commit writer.
        throw new CliError("summary -u for repositories with a collection ID is not supported by ostree-ts yet");
      }
      await updateSummary(repo, { additionalMetadata: extra });
      const gpgKeys = (inv.opts["gpg-sign"] as string[] | undefined) ?? [];
      const signKeys = (inv.opts.sign as string[] | undefined) ?? [];
      if (gpgKeys.length || signKeys.length) {
        const gpg = await import("@ostree-ts/gpg");
        // summary -u removed summary.sig: each signature is appended to a fresh one.
        const homedir = inv.opts["gpg-homedir"] as string | undefined;
        for (const keyId of gpgKeys) await gpg.signSummary(repo, { keyId, homedir });
        if (signKeys.length) {
          let engine: ReturnType<typeof gpg.signEngineByName>;
          try {
            engine = gpg.signEngineByName((inv.opts["sign-type"] as string | undefined) ?? "ed25519");
            for (const key of signKeys) {
              engine.setSecretKey(key);
              await gpg.signSummaryWith(repo, engine);
            }
          } catch (e) {
            if (e instanceof gpg.SignError) throw new CliError(e.message);
            throw e;
          }
        }
      }
    } else if (inv.opts.view || inv.opts.raw) {
      for (const line of viewSummary(await readSummary(repo), { raw: Boolean(inv.opts.raw) })) inv.out.print(`${line}\n`);
    } else {
      throw new CliError("No option specified; use -u to update summary");
    }
  },
};
export default summary;
