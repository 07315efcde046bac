import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import * as ed from "@noble/ed25519";
import { resolveRev, type MetadataDict, type Repo } from "@ostree-ts/objstore";
import { commitBytes, readSummaryFiles, signaturesOf, withSignatures, writeSummarySig } from "./detached.js";
import { SignError } from "./errors.js";

/** One `ostree sign` engine (OstreeSign): a metadata key `ostree.sign.<name>` holding an `aay`. */
export interface SignEngine {
  readonly name: string;
  readonly metadataKey: string;
  /** Detached signature over `data` with the secret key set. */
  sign(data: Uint8Array): Promise<Uint8Array>;
  /** Success message (as ostree prints it) when any signature verifies; throws SignError otherwise. */
  verify(data: Uint8Array, signatures: Uint8Array[]): Promise<string>;
}

function b64decode(s: string): Uint8Array {
  // g_base64_decode skips invalid characters and stops at padding.
  return new Uint8Array(Buffer.from(s.replace(/[^A-Za-z0-9+/=]/g, ""), "base64"));
}

const hexOf = (b: Uint8Array) => Buffer.from(b).toString("hex");

/** Default key directories of the ed25519 engine (`--keys-dir` replaces them). */
export const ED25519_DEFAULT_BASEDIRS = ["/etc/ostree", "/usr/share/ostree"];

/**
 * ed25519 as ostree's libsodium engine: secret key = base64 of 64 bytes
 * (seed ‖ public key), public key = base64 of 32 bytes, signature = 64 bytes
 * of pure Ed25519 over the data.
 */
export class Ed25519Engine implements SignEngine {
  readonly name = "ed25519";
  readonly metadataKey = "ostree.sign.ed25519";
  private secret: Uint8Array | null = null;
  readonly publicKeys: Uint8Array[] = [];
  readonly revokedKeys: Uint8Array[] = [];

  /** Generate a key pair in ostree's encodings. */
  static async generate(): Promise<{ secret: string; public: string }> {
    const seed = ed.utils.randomSecretKey();
    const pub = await ed.getPublicKeyAsync(seed);
    const sk = new Uint8Array(64);
    sk.set(seed);
    sk.set(pub, 32);
    return { secret: Buffer.from(sk).toString("base64"), public: Buffer.from(pub).toString("base64") };
  }

  /** Public key (base64) of a secret key (base64 or 64 raw bytes). */
  static async publicKeyOf(secret: string | Uint8Array): Promise<string> {
    const sk = typeof secret === "string" ? b64decode(secret) : secret;
    if (sk.length !== 64) throw new SignError("Incorrect ed25519 secret key");
    return Buffer.from(await ed.getPublicKeyAsync(sk.subarray(0, 32))).toString("base64");
  }

  setSecretKey(key: string | Uint8Array): void {
    const sk = typeof key === "string" ? b64decode(key) : key;
    if (sk.length !== 64) throw new SignError("Incorrect ed25519 secret key");
    this.secret = sk;
  }

  /** ostree_sign_set_pk: replaces the loaded keys. */
  setPublicKey(key: string | Uint8Array): void {
    this.publicKeys.length = 0;
    this.addPublicKey(key);
  }

  addPublicKey(key: string | Uint8Array): void {
    const pk = typeof key === "string" ? b64decode(key) : key;
    if (pk.length !== 32) throw new SignError("Incorrect ed25519 public key");
    if (!this.publicKeys.some((k) => hexOf(k) === hexOf(pk))) this.publicKeys.push(pk);
  }

  addRevokedKey(key: string | Uint8Array): void {
    const pk = typeof key === "string" ? b64decode(key) : key;
    if (pk.length !== 32) throw new SignError("Incorrect ed25519 revoked key");
    this.revokedKeys.push(pk);
  }

  /** Lines of base64 public keys; true when at least one loaded. */
  private async loadFile(path: string, trusted: boolean): Promise<boolean> {
    const st = await stat(path).catch(() => null);
    if (!st?.isFile()) throw new SignError(`File object '${path}' is not a regular file`);
    let loaded = false;
    for (const line of (await readFile(path, "utf8")).split("\n")) {
      if (line === "") continue;
      try {
        if (trusted) this.addPublicKey(line);
        else this.addRevokedKey(line);
        loaded = true;
      } catch {
        // ostree skips lines that are not keys
      }
    }
    if (!loaded) throw new SignError(`signature: ed25519: no valid keys in file '${path}'`);
    return loaded;
  }

  /**
   * ostree_sign_load_pk: `filename` alone, else `trusted.ed25519` and
   * `trusted.ed25519.d/*` (and the `revoked` ones) of each base dir.
   */
  async loadPublicKeys(o: { filename?: string; basedir?: string } = {}): Promise<void> {
    if (o.filename) {
      await this.loadFile(o.filename, true);
      return;
    }
    const dirs = o.basedir ? [o.basedir] : ED25519_DEFAULT_BASEDIRS;
    for (const trusted of [false, true]) {
      let any = false;
      for (const dir of dirs) {
        const base = join(dir, trusted ? "trusted.ed25519" : "revoked.ed25519");
        const files = [base];
        const entries = await readdir(`${base}.d`).catch(() => [] as string[]);
        for (const e of entries) files.push(join(`${base}.d`, e));
        for (const f of files) {
          try {
            if (await this.loadFile(f, trusted)) any = true;
          } catch {
            // missing or empty key files are skipped, as in ostree
          }
        }
      }
      if (trusted && !any) throw new SignError("signature: ed25519: no keys loaded");
    }
  }

  async sign(data: Uint8Array): Promise<Uint8Array> {
    if (!this.secret) throw new SignError("Not able to sign: secret key is not set");
    return ed.signAsync(data, this.secret.subarray(0, 32));
  }

  async verify(data: Uint8Array, signatures: Uint8Array[]): Promise<string> {
    if (this.publicKeys.length === 0) await this.loadPublicKeys();
    const revoked = new Set(this.revokedKeys.map(hexOf));
    const invalid: string[] = [];
    for (const sig of signatures) {
      if (sig.length !== 64) throw new SignError(`Invalid signature length of ${sig.length} bytes, expected 64`);
      for (const pk of this.publicKeys) {
        if (revoked.has(hexOf(pk))) continue;
        // zip215: false is RFC 8032 strict verification, as libsodium does.
        if (await ed.verifyAsync(sig, data, pk, { zip215: false })) return `ed25519: Signature verified successfully with key '${hexOf(pk)}'`;
        invalid.push(`key '${hexOf(pk)}'`);
      }
    }
    if (invalid.length > 3) throw new SignError(`ed25519: Signature couldn't be verified; tried ${invalid.length} keys`);
    if (invalid.length) throw new SignError(`ed25519: Signature couldn't be verified with: ${invalid.join("; ")}`);
    throw new SignError("ed25519: no signatures found");
  }
}

/**
 * ostree's test engine: the "signature" is the secret string itself and
 * verifying compares it with the public string. Signing and
 * verifying need `OSTREE_DUMMY_SIGN_ENABLED=1`, as in ostree.
 */
export class DummyEngine implements SignEngine {
  readonly name = "dummy";
  readonly metadataKey = "ostree.sign.dummy";
  private secret: string | null = null;
  private pub: string | null = null;

  private static checkEnabled(): void {
    if (process.env.OSTREE_DUMMY_SIGN_ENABLED !== "1") throw new SignError("dummy signature type is only for ostree testing");
  }

  setSecretKey(key: string): void {
    DummyEngine.checkEnabled();
    this.secret = key;
  }

  setPublicKey(key: string): void {
    this.pub = key;
  }

  addPublicKey(key: string): void {
    this.pub = key;
  }

  async sign(_data: Uint8Array): Promise<Uint8Array> {
    DummyEngine.checkEnabled();
    return new TextEncoder().encode(this.secret ?? "");
  }

  async verify(_data: Uint8Array, signatures: Uint8Array[]): Promise<string> {
    DummyEngine.checkEnabled();
    const dec = new TextDecoder();
    for (const s of signatures) if (dec.decode(s) === this.pub) return "dummy: Signature verified";
    if (signatures.length) throw new SignError(`signature: dummy: incorrect signatures found: ${signatures.length}`);
    throw new SignError("signature: dummy: no signatures");
  }
}

/** ostree_sign_get_by_name. */
export function signEngineByName(name: string): Ed25519Engine | DummyEngine {
  if (name === "ed25519") return new Ed25519Engine();
  if (name === "dummy") return new DummyEngine();
  throw new SignError("Requested signature type is not implemented");
}

/** ostree_sign_commit: append this engine's signature over the commit to its commitmeta key. */
export async function signCommitWith(repo: Repo, commit: string, engine: SignEngine): Promise<void> {
  const checksum = (await resolveRev(repo, commit))!;
  const sig = await engine.sign(await commitBytes(repo, checksum));
  const old = await repo.readCommitMeta(checksum);
  await repo.writeCommitMeta(checksum, withSignatures(old, engine.metadataKey, [...(signaturesOf(old, engine.metadataKey) ?? []), sig]));
}

/** ostree_sign_commit_verify: the success message, or SignError. */
export async function verifyCommitWith(repo: Repo, commit: string, engine: SignEngine): Promise<string> {
  const checksum = (await resolveRev(repo, commit))!;
  return verifyDataWith(await commitBytes(repo, checksum), await repo.readCommitMeta(checksum), engine);
}

/** ostree_sign_data_verify over detached metadata (commitmeta, summary.sig, delta superblock metadata). */
export async function verifyDataWith(data: Uint8Array, detached: MetadataDict | null, engine: SignEngine): Promise<string> {
  const sigs = signaturesOf(detached, engine.metadataKey);
  if (!sigs) {
    throw new SignError(engine.name === "dummy" ? "signature: dummy: commit have no signatures of my type" : `${engine.name}: commit have no signatures of my type`);
  }
  return engine.verify(data, sigs);
}

/** `ostree summary -u --sign`: append a signature over `summary` to `summary.sig`. */
export async function signSummaryWith(repo: Repo, engine: SignEngine): Promise<void> {
  const { summary, sig } = await readSummaryFiles(repo);
  const s = await engine.sign(summary);
  await writeSummarySig(repo, withSignatures(sig, engine.metadataKey, [...(signaturesOf(sig, engine.metadataKey) ?? []), s]));
}

export async function verifySummaryWith(repo: Repo, engine: SignEngine): Promise<string> {
  const { summary, sig } = await readSummaryFiles(repo);
  return verifyDataWith(summary, sig, engine);
}
