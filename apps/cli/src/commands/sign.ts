import { readFile, stat } from "node:fs/promises";
import { resolveRev, type Repo } from "@ostree-ts/objstore";
import { CliError, UsageError, type CommandModule } from "../command.js";

/**
 * `ostree sign` with ostree's engines: ed25519 (keys as base64, see
 * @ostree-ts/gpg) and dummy (`OSTREE_DUMMY_SIGN_ENABLED=1`). The ed25519
 * options `--keys-file`/`--keys-dir` are those of a libsodium-enabled ostree.
 */
const sign: CommandModule = {
  parameterString: "COMMIT KEY-ID...",
  options: [
    { long: "delete", short: "d", arg: "none", description: "Delete signatures having any of the KEY-IDs" },
    { long: "verify", arg: "none", description: "Verify signatures" },
    { long: "sign-type", short: "s", arg: "string", description: "Signature type to use (defaults to 'ed25519')", argDescription: "NAME" },
    { long: "keys-file", arg: "string", description: "Read key(s) from file", argDescription: "NAME" },
    { long: "keys-dir", arg: "string", description: "Redefine system-wide directories with public and revoked keys for verification", argDescription: "NAME" },
  ],
  async run(inv) {
    const repo = inv.repo as Repo;
    const verify = Boolean(inv.opts.verify);
    const keysFile = inv.opts["keys-file"] as string | undefined;
    const keysDir = inv.opts["keys-dir"] as string | undefined;
    if (inv.args.length < 1) throw new UsageError("Need a COMMIT to sign or verify");
    if (!verify && !keysFile && inv.args.length < 2) throw new UsageError("Need at least one KEY-ID to sign with");
    const [commit, ...keys] = inv.args as [string, ...string[]];
    const { signEngineByName, signCommitWith, verifyCommitWith, SignError } = await import("@ostree-ts/gpg");
    const checksum = (await resolveRev(repo, commit))!;
    const typeName = (inv.opts["sign-type"] as string | undefined) ?? "ed25519";
    try {
      const engine = signEngineByName(typeName);
      if (verify) {
        for (const key of keys) {
          try {
            engine.setPublicKey(key);
            inv.out.print(`${await verifyCommitWith(repo, checksum, engine)}\n`);
            return;
          } catch (e) {
            if (!(e instanceof SignError)) throw e;
          }
        }
        if (keys.length === 0 || keysFile) {
          if ("loadPublicKeys" in engine) await engine.loadPublicKeys({ filename: keysFile, basedir: keysDir });
          inv.out.print(`${await verifyCommitWith(repo, checksum, engine)}\n`);
          return;
        }
        throw new CliError("No valid signatures found");
      }
      for (const key of keys) {
        engine.setSecretKey(key);
        await signCommitWith(repo, checksum, engine);
      }
      if (keysFile) {
        if (!(await stat(keysFile).catch(() => null))?.isFile()) throw new CliError(`File object '${keysFile}' is not a regular file`);
        for (const line of (await readFile(keysFile, "utf8")).split("\n")) {
          if (line === "") continue;
          engine.setSecretKey(line);
          await signCommitWith(repo, checksum, engine);
        }
      }
    } catch (e) {
      if (e instanceof SignError) throw new CliError(e.message);
      throw e;
    }
  },
};
export default sign;
