import { spawn } from "node:child_process";
import { resolveRev, type MetadataDict, type Repo } from "@ostree-ts/objstore";
import * as openpgp from "openpgp";
import { commitBytes, GPGSIGS_KEY, readSummaryFiles, signaturesOf, withSignatures, writeSummarySig } from "./detached.js";
import { GpgError, GpgKeyError } from "./errors.js";
import { Keyring, loadAllRemotesKeyring, loadRemoteKeyring, type RemoteKeyringOptions } from "./keyring.js";
import { verifyDetached, type GpgVerifyResult } from "./verify.js";

/**
 * Where a signature comes from: an OpenPGP secret key held in memory
 * (openpgp.js signs), or a key id in a GnuPG home (the `gpg` binary signs,
 * as ostree's gpgme does, so agent, passphrases and smartcards keep working).
 */
export type GpgSigningKey =
  | { privateKey: openpgp.PrivateKey | string | Uint8Array; passphrase?: string }
  | { keyId: string; homedir?: string; gpgBinary?: string };

async function loadPrivateKey(k: openpgp.PrivateKey | string | Uint8Array, passphrase?: string): Promise<openpgp.PrivateKey> {
  let key: openpgp.PrivateKey;
  if (typeof k === "string") key = await openpgp.readPrivateKey({ armoredKey: k });
  else if (k instanceof Uint8Array) key = await openpgp.readPrivateKey({ binaryKey: k });
  else key = k;
  if (!key.isDecrypted()) {
    if (passphrase === undefined) throw new GpgKeyError(`secret key ${key.getKeyID().toHex().toUpperCase()} is protected and no passphrase was given`);
    key = await openpgp.decryptKey({ privateKey: key, passphrase });
  }
  return key;
}

function runGpg(bin: string, args: string[], input: Uint8Array | null): Promise<{ status: number; stdout: Uint8Array; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (c: Buffer) => out.push(c));
    child.stderr.on("data", (c: Buffer) => err.push(c));
    child.on("error", (e) => reject(new GpgKeyError(`cannot run ${bin}: ${e.message} (install gnupg to sign with a GnuPG home)`)));
    child.on("close", (code) => resolve({ status: code ?? -1, stdout: new Uint8Array(Buffer.concat(out)), stderr: Buffer.concat(err).toString("utf8") }));
    child.stdin.on("error", () => {});
    child.stdin.end(input ?? undefined);
  });
}

function homedirArgs(homedir: string | undefined): string[] {
  return homedir ? ["--homedir", homedir] : [];
}

/** A binary detached signature (one OpenPGP signature packet, class 0x00) over `data`. */
export async function signData(data: Uint8Array, key: GpgSigningKey): Promise<Uint8Array> {
  if ("privateKey" in key) {
    const signingKeys = await loadPrivateKey(key.privateKey, key.passphrase);
    const message = await openpgp.createMessage({ binary: data });
    return (await openpgp.sign({ message, signingKeys, detached: true, format: "binary" })) as Uint8Array;
  }
  const bin = key.gpgBinary ?? "gpg";
  const where = ` (homedir: ${key.homedir ?? "<default>"})`;
  const r = await runGpg(bin, [...homedirArgs(key.homedir), "--batch", "--no-tty", "--local-user", key.keyId, "--detach-sign", "--output", "-", "-"], data);
  if (r.status !== 0 || r.stdout.length === 0) {
    if (/No secret key|secret key not available|not found|unusable/i.test(r.stderr)) throw new GpgKeyError(`No gpg key found with ID ${key.keyId}${where}`);
    throw new GpgError(`Failure signing commit file: ${r.stderr.trim()}`);
  }
  return r.stdout;
}

/**
 * The public key of a GnuPG home's key (`gpg --export`), for callers that
 * need it (e.g. `remote gpg-import` of a local key, tests).
 */
export async function exportGnupgPublicKeys(keyIds: string[], homedir?: string, gpgBinary = "gpg"): Promise<Uint8Array> {
  const r = await runGpg(gpgBinary, [...homedirArgs(homedir), "--batch", "--no-tty", "--export", ...keyIds], null);
  if (r.status !== 0) throw new GpgKeyError(`gpg --export ${keyIds.join(" ")} failed: ${r.stderr.trim()}`);
  return r.stdout;
}

/** The issuer (sub)key id of a binary signature, upper-case hex. */
async function issuerOf(sig: Uint8Array): Promise<string[]> {
  const s = await openpgp.readSignature({ binarySignature: sig });
  return s.packets.map((p) => (p.issuerFingerprint ? Buffer.from(p.issuerFingerprint).toString("hex") : p.issuerKeyID.toHex()).toUpperCase());
}

async function alreadySignedBy(existing: Uint8Array[], newSig: Uint8Array): Promise<boolean> {
  const mine = (await issuerOf(newSig)).map((f) => f.slice(-16));
  for (const s of existing) {
    try {
      if ((await issuerOf(s)).some((f) => mine.includes(f.slice(-16)))) return true;
    } catch {
      // an unparseable old signature cannot be ours
    }
  }
  return false;
}

function keyLabel(key: GpgSigningKey): string {
  return "keyId" in key ? key.keyId : "(in-memory key)";
}

/**
 * `ostree gpg-sign COMMIT KEY`: append a detached signature over the commit
 * object's bytes to `ostree.gpgsigs` in its commitmeta. Refuses a second
 * signature by the same key, as ostree does.
 */
export async function signCommit(repo: Repo, commit: string, key: GpgSigningKey): Promise<Uint8Array> {
  const checksum = await resolveCommit(repo, commit);
  const data = await commitBytes(repo, checksum);
  const old = await repo.readCommitMeta(checksum);
  const existing = signaturesOf(old, GPGSIGS_KEY) ?? [];
  const sig = await signData(data, key);
  if (await alreadySignedBy(existing, sig)) throw new GpgError(`Commit is already signed with GPG key ${keyLabel(key)}`);
  await repo.writeCommitMeta(checksum, withSignatures(old, GPGSIGS_KEY, [...existing, sig]));
  return sig;
}

async function resolveCommit(repo: Repo, rev: string): Promise<string> {
  return (await resolveRev(repo, rev))!;
}

export interface VerifyOptions {
  /** Verification time (default: now). */
  now?: Date;
}

/** Verify a commit's `ostree.gpgsigs` against an explicit keyring. */
export async function verifyCommit(repo: Repo, commit: string, keyring: Keyring, o: VerifyOptions = {}): Promise<GpgVerifyResult> {
  const checksum = await resolveCommit(repo, commit);
  const sigs = signaturesOf(await repo.readCommitMeta(checksum), GPGSIGS_KEY);
  if (!sigs) throw new GpgError("GPG verification enabled, but no signatures found (use gpg-verify=false in remote config to disable)", "no-signature");
  return verifyDetached(await commitBytes(repo, checksum), sigs, keyring, o.now);
}

export interface ShowVerifyOptions extends VerifyOptions {
  /** `--gpg-verify-remote`: that remote's keyring config. */
  remote?: string;
  /** `--gpg-homedir`: extra `*.gpg` keyrings from this directory. */
  keyringDir?: string;
  remoteOptions?: RemoteKeyringOptions;
}

/**
 * What `ostree show` checks: null when the commit carries no GPG signatures
 * (show prints nothing then), else the per-signature result.
 */
export async function verifyCommitForShow(repo: Repo, checksum: string, o: ShowVerifyOptions = {}): Promise<GpgVerifyResult | null> {
  const sigs = signaturesOf(await repo.readCommitMeta(checksum), GPGSIGS_KEY);
  if (!sigs) return null;
  const keyring = o.remote
    ? await loadRemoteKeyring(repo, o.remote, o.remoteOptions)
    : await loadAllRemotesKeyring(repo, { keyringDir: o.keyringDir, globalKeyringDir: o.remoteOptions?.globalKeyringDir });
  return verifyDetached(await commitBytes(repo, checksum), sigs, keyring, o.now);
}

/** The block `ostree show` prints after a signed commit: "Found N signature(s):" and each description. */
export function formatShowSignatures(result: GpgVerifyResult): string {
  const n = result.countAll;
  return `Found ${n} signature${n === 1 ? "" : "s"}:\n${signatureBlocks(result)}`;
}

/** ostree_print_gpg_verify_result (`remote summary`): the same blocks under a "GPG: Verification enabled" header. */
export function formatVerifyResult(result: GpgVerifyResult): string {
  const n = result.countAll;
  return `GPG: Verification enabled, found ${n} signature${n === 1 ? "" : "s"}:\n${signatureBlocks(result)}`;
}

function signatureBlocks(result: GpgVerifyResult): string {
  let out = "";
  for (let i = 0; i < result.countAll; i++) out += `\n${result.describe(i, "  ")}`;
  return out;
}

/**
 * Hook for pull (`gpg-verify=true`): the commit's signatures (from `detached`
 * bytes' dict when given, else the repo's commitmeta) checked with the
 * remote's keyrings; throws GpgError unless one is valid. `commitData` may be
 * passed when the commit object is not stored yet.
 */
export async function verifyCommitSignatures(
  repo: Repo,
  remoteName: string,
  commitChecksum: string,
  o: RemoteKeyringOptions & VerifyOptions & { commitData?: Uint8Array; detached?: MetadataDict | null } = {},
): Promise<GpgVerifyResult> {
  const detached = o.detached !== undefined ? o.detached : await repo.readCommitMeta(commitChecksum);
  const sigs = signaturesOf(detached, GPGSIGS_KEY);
  if (!sigs) throw new GpgError("GPG verification enabled, but no signatures found (use gpg-verify=false in remote config to disable)", "no-signature");
  const keyring = await loadRemoteKeyring(repo, remoteName, o);
  const result = await verifyDetached(o.commitData ?? (await commitBytes(repo, commitChecksum)), sigs, keyring, o.now);
  result.requireValidSignature();
  return result;
}

/**
 * `ostree gpg-sign --delete COMMIT KEY…`: remove the signatures made by these
 * keys. As in ostree, a key is matched through the keyrings `show` uses (all
 * remotes' and the global ones); returns how many were deleted.
 */
export async function deleteCommitSignatures(repo: Repo, commit: string, keyIds: string[], o: { keyring?: Keyring } = {}): Promise<number> {
  const checksum = await resolveCommit(repo, commit);
  const old = await repo.readCommitMeta(checksum);
  const sigs = signaturesOf(old, GPGSIGS_KEY);
  if (!sigs) return 0;
  const keyring = o.keyring ?? (await loadAllRemotesKeyring(repo));
  const result = await verifyDetached(await commitBytes(repo, checksum), sigs, keyring);
  if (result.countAll !== sigs.length) throw new GpgError(`Commit ${checksum}: a signature element holds more than one signature packet; cannot delete selectively`);
  const trash = new Set<number>();
  for (const id of keyIds) {
    const i = result.lookup(id);
    if (i >= 0) trash.add(i);
  }
  const kept = sigs.filter((_, i) => !trash.has(i));
  await repo.writeCommitMeta(checksum, withSignatures(old, GPGSIGS_KEY, kept.length ? kept : null));
  return trash.size;
}

/** `ostree summary --gpg-sign=KEY`: append a signature over `summary` to `summary.sig`. */
export async function signSummary(repo: Repo, key: GpgSigningKey): Promise<Uint8Array> {
  const { summary, sig } = await readSummaryFiles(repo);
  const existing = signaturesOf(sig, GPGSIGS_KEY) ?? [];
  const s = await signData(summary, key);
  await writeSummarySig(repo, withSignatures(sig, GPGSIGS_KEY, [...existing, s]));
  return s;
}

/** Verify `summary.sig`'s GPG signatures over summary bytes (ostree_repo_verify_summary). */
export async function verifySummaryData(summary: Uint8Array, summarySig: MetadataDict, keyring: Keyring, o: VerifyOptions = {}): Promise<GpgVerifyResult> {
  const sigs = signaturesOf(summarySig, GPGSIGS_KEY);
  // ostree's text here is the commit one (gpg-verify=false), as its shared data-verify helper words it.
  if (!sigs) throw new GpgError("GPG verification enabled, but no signatures found (use gpg-verify=false in remote config to disable)", "no-signature");
  return verifyDetached(summary, sigs, keyring, o.now);
}

/** The repo's own `summary` and `summary.sig` checked with a remote's keyrings; throws unless one signature is valid. */
export async function verifySummaryForRemote(
  repo: Repo,
  remoteName: string,
  summary: Uint8Array,
  summarySig: MetadataDict,
  o: RemoteKeyringOptions & VerifyOptions = {},
): Promise<GpgVerifyResult> {
  const result = await verifySummaryData(summary, summarySig, await loadRemoteKeyring(repo, remoteName, o), o);
  result.requireValidSignature();
  return result;
}

/** Verify the local repo's `summary`/`summary.sig` with a keyring. */
export async function verifySummary(repo: Repo, keyring: Keyring, o: VerifyOptions = {}): Promise<GpgVerifyResult> {
  const { summary, sig } = await readSummaryFiles(repo);
  if (!sig) throw new GpgError("GPG verification enabled, but no summary.sig found (use gpg-verify-summary=false in remote config to disable)", "no-signature");
  return verifySummaryData(summary, sig, keyring, o);
}
