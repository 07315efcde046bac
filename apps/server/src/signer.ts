import { readFile } from "node:fs/promises";
import { encodeMetadataDict, type MetadataDict, type Repo } from "@ostree-ts/objstore";
import { Ed25519Engine, GPGSIGS_KEY, signCommit, signCommitWith, signData, withSignatures } from "@ostree-ts/gpg";

/** How the server signs `summary`: GPG keys in a GnuPG home and/or ed25519 keys in ostree's encoding. */
export interface SigningConfig {
  gpg?: { keyIds: string[]; homedir?: string };
  /** Secret keys as `ostree sign` takes them (base64 of 64 bytes), inline or one per line in files. */
  ed25519?: { secretKeys?: string[]; secretKeyFiles?: string[] };
}

export class SigningConfigError extends Error {
  override name = "SigningConfigError";
}

/** Produces the `summary.sig` bytes (a normal-form `a{sv}`) for given summary bytes. */
export class SummarySigner {
  private constructor(
    private readonly gpg: { keyIds: string[]; homedir?: string } | undefined,
    private readonly ed25519: Ed25519Engine[],
  ) {}

  static async create(config: SigningConfig): Promise<SummarySigner> {
    const engines: Ed25519Engine[] = [];
    const secrets = [...(config.ed25519?.secretKeys ?? [])];
    for (const f of config.ed25519?.secretKeyFiles ?? []) {
      let text: string;
      try {
        text = await readFile(f, "utf8");
      } catch (e) {
        throw new SigningConfigError(`cannot read ed25519 key file ${f}: ${(e as Error).message}`);
      }
      secrets.push(...text.split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#")));
    }
    for (const [i, s] of secrets.entries()) {
      const e = new Ed25519Engine();
      try {
        e.setSecretKey(s);
      } catch (err) {
        throw new SigningConfigError(`ed25519 secret key #${i + 1}: ${(err as Error).message}`);
      }
      engines.push(e);
    }
    const gpg = config.gpg?.keyIds.length ? config.gpg : undefined;
    if (!gpg && engines.length === 0) throw new SigningConfigError("signing is configured but names no GPG key id and no ed25519 key");
    return new SummarySigner(gpg, engines);
  }

  /** Signatures over `summary` in the layout `ostree summary -u --gpg-sign … ` / `--sign …` writes. */
  async sign(summary: Uint8Array): Promise<Uint8Array> {
    let dict: MetadataDict | null = null;
    if (this.gpg) {
      const sigs: Uint8Array[] = [];
      for (const keyId of this.gpg.keyIds) sigs.push(await signData(summary, { keyId, homedir: this.gpg.homedir }));
      dict = withSignatures(dict, GPGSIGS_KEY, sigs);
    }
    if (this.ed25519.length) {
      const sigs: Uint8Array[] = [];
      for (const e of this.ed25519) sigs.push(await e.sign(summary));
      dict = withSignatures(dict, this.ed25519[0]!.metadataKey, sigs);
    }
    return encodeMetadataDict(dict!);
  }

  /** Sign a commit with the same keys (the `ostree-metadata` commit, as `summary -u --gpg-sign/--sign` does). */
  async signCommit(repo: Repo, checksum: string): Promise<void> {
    for (const keyId of this.gpg?.keyIds ?? []) await signCommit(repo, checksum, { keyId, homedir: this.gpg!.homedir });
    for (const e of this.ed25519) await signCommitWith(repo, checksum, e);
  }
}
