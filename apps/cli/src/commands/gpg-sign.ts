import { resolveRev, type Repo } from "@ostree-ts/objstore";
import { CliError, UsageError, type CommandModule } from "../command.js";

/**
 * `ostree gpg-sign COMMIT KEY-ID…`. Signing runs the `gpg` binary on the
 * GnuPG home (`--gpg-homedir`, else gpg's default), as ostree's gpgme does:
 * openpgp.js cannot read GnuPG 2.1+'s private-keys-v1.d, and going through
 * gpg keeps agent-held and passphrase-protected keys working.
 */
const gpgSign: CommandModule = {
  parameterString: "COMMIT KEY-ID...",
  options: [
    { long: "delete", short: "d", arg: "none", description: "Delete signatures having any of the GPG KEY-IDs" },
    { long: "gpg-homedir", arg: "filename", description: "GPG Homedir to use when looking for keyrings", argDescription: "HOMEDIR" },
  ],
  async run(inv) {
    const repo = inv.repo as Repo;
    if (inv.args.length < 1) throw new UsageError("Need a COMMIT to sign");
    if (inv.args.length < 2) throw new UsageError("Need at least one GPG KEY-ID to sign with");
    const [commit, ...keyIds] = inv.args as [string, ...string[]];
    const gpg = await import("@ostree-ts/gpg");
    const checksum = (await resolveRev(repo, commit))!;
    try {
      if (inv.opts.delete) {
        const n = await gpg.deleteCommitSignatures(repo, checksum, keyIds);
        inv.out.print(`Signatures deleted: ${n}\n`);
        return;
      }
      const homedir = inv.opts["gpg-homedir"] as string | undefined;
      for (const keyId of keyIds) await gpg.signCommit(repo, checksum, { keyId, homedir });
    } catch (e) {
      if (e instanceof gpg.GpgError || e instanceof gpg.GpgKeyError) throw new CliError(e.message);
      throw e;
    }
  },
};
export default gpgSign;
