import { lstat, readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { KeyFile, Repo } from "@ostree-ts/objstore";
import * as openpgp from "openpgp";
import { GpgError, GpgKeyError } from "./errors.js";

/** A set of public keys used to verify OpenPGP signatures (ostree's temporary GPG home). */
export class Keyring {
  constructor(readonly keys: openpgp.PublicKey[] = []) {}

  /** Add keys; a key already present (same primary fingerprint) is kept once, the first copy wins. */
  add(keys: Iterable<openpgp.PublicKey>): void {
    const have = new Set(this.keys.map((k) => k.getFingerprint()));
    for (const k of keys) {
      const fpr = k.getFingerprint();
      if (have.has(fpr)) continue;
      have.add(fpr);
      this.keys.push(k);
    }
  }

  /**
   * Add keys as gpg's import does: a new key is appended, a key already
   * present takes in the other copy's new signatures and subkeys (an updated
   * expiry, a revocation). Returns how many keys were new.
   */
  async merge(keys: Iterable<openpgp.PublicKey>): Promise<number> {
    let added = 0;
    for (const k of keys) {
      const i = this.keys.findIndex((have) => have.getFingerprint() === k.getFingerprint());
      if (i < 0) {
        this.keys.push(k);
        added++;
      } else {
        this.keys[i] = (await this.keys[i]!.update(k)) as openpgp.PublicKey;
      }
    }
    return added;
  }

  /** Parse binary or armored key data (several blocks allowed) and add every key in it. */
  async addData(data: Uint8Array, source = "key data"): Promise<void> {
    this.add(await parseKeys(data, source));
  }

  async addFile(path: string): Promise<void> {
    await this.addData(new Uint8Array(await readFile(path)), path);
  }

  /**
   * Keys whose primary key or a subkey matches `keyId`: a 16-digit key id, a
   * 40-digit fingerprint, a shorter hex suffix (8 digits), optionally `0x`-prefixed,
   * or, failing that, a substring of a user id (as gpg's key lookup does).
   */
  lookup(keyId: string): openpgp.PublicKey[] {
    return this.keys.filter((k) => keyMatches(k, keyId));
  }

  /** The key holding the (sub)key with this 16-hex-digit key id or fingerprint. */
  findSigningKey(keyIdOrFpr: string): { key: openpgp.PublicKey; subkey: openpgp.PublicKey | openpgp.Subkey } | null {
    const want = keyIdOrFpr.toLowerCase();
    for (const key of this.keys) {
      for (const sub of [key, ...key.subkeys]) {
        const fpr = sub.getFingerprint();
        if (fpr === want || sub.getKeyID().toHex() === want) return { key, subkey: sub };
      }
    }
    return null;
  }

  /** Binary transferable public keys, concatenated (a gpg keyring file gpgme can import). */
  toBinary(): Uint8Array {
    const parts = this.keys.map((k) => k.write());
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
}

function normalizeKeyId(s: string): string {
  return s.replace(/^0x/i, "").replace(/\s+/g, "").toLowerCase();
}

export function keyMatches(key: openpgp.PublicKey, keyId: string): boolean {
  const id = normalizeKeyId(keyId);
  if (/^[0-9a-f]{8,40}$/.test(id)) {
    for (const sub of [key, ...key.subkeys]) if (sub.getFingerprint().endsWith(id)) return true;
    return false;
  }
  const needle = keyId.replace(/^[<=@]/, "").replace(/>$/, "").toLowerCase();
  return key.users.some((u) => u.userID?.userID.toLowerCase().includes(needle));
}

const ARMOR_BEGIN = "-----BEGIN PGP ";

/** Every public key in binary or ASCII-armored data; secret keys contribute their public part. */
export async function parseKeys(data: Uint8Array, source = "key data"): Promise<openpgp.PublicKey[]> {
  const text = Buffer.from(data).toString("latin1");
  try {
    if (text.includes(ARMOR_BEGIN)) {
      const out: openpgp.PublicKey[] = [];
      const re = /-----BEGIN PGP (PUBLIC|PRIVATE) KEY BLOCK-----[\s\S]*?-----END PGP \1 KEY BLOCK-----/g;
      for (const m of text.matchAll(re)) {
        for (const k of await openpgp.readKeys({ armoredKeys: m[0] })) out.push(k.toPublic());
      }
      return out;
    }
    if (data.length === 0) return [];
    return (await openpgp.readKeys({ binaryKeys: data })).map((k) => k.toPublic());
  } catch (e) {
    throw new GpgKeyError(`${source}: cannot read OpenPGP keys: ${(e as Error).message}`);
  }
}

/** `OSTREE_GPG_HOME` or `/usr/share/ostree/trusted.gpg.d/`: ostree's deprecated global keyring directory. */
export function globalKeyringDir(): string {
  return process.env.OSTREE_GPG_HOME ?? "/usr/share/ostree/trusted.gpg.d/";
}

async function isDir(path: string): Promise<boolean> {
  try {
    return (await lstat(path)).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Keyring files of a directory as ostree adds them: regular files ending in
 * `.gpg`, except `trustdb.gpg` and `secring.gpg`.
 */
export async function addKeyringDir(keyring: Keyring, dir: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    throw new GpgKeyError(`Reading keyring directory '${dir}': ${(e as Error).message}`);
  }
  for (const name of names) {
    if (!name.endsWith(".gpg") || name === "trustdb.gpg" || name === "secring.gpg") continue;
    const path = join(dir, name);
    if (!(await lstat(path)).isFile()) continue;
    await keyring.addFile(path);
  }
}

/**
 * A `gpgkeypath` entry: a directory (every regular file in it) or a single key
 * file. ostree hands these to gpg's import, which skips data holding no key
 * (a trustdb.gpg in the directory, say), so such files add nothing here either.
 * A missing path fails as ostree's opendir() of it does.
 */
export async function addKeyfilePath(keyring: Keyring, path: string): Promise<void> {
  const importFile = async (p: string) => {
    try {
      await keyring.addFile(p);
    } catch (e) {
      if (!(e instanceof GpgKeyError)) throw e;
    }
  };
  const missing = () => new GpgError(`opendir(${path}): No such file or directory`);
  if (path === "") throw missing();
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") throw missing();
    throw e;
  }
  if (!st.isDirectory()) return importFile(path);
  for (const name of await readdir(path)) {
    const p = join(path, name);
    if ((await lstat(p)).isFile()) await importFile(p);
  }
}

export interface RemoteKeyringOptions {
  /** Where `remotes.d/*.conf` files and keyrings of a system repo live (`/etc/ostree/remotes.d`). */
  remotesConfigDir?: string;
  /** Use this instead of `$OSTREE_GPG_HOME` / `/usr/share/ostree/trusted.gpg.d/`. */
  globalKeyringDir?: string;
}

/** The file ostree keeps a remote's imported keys in, relative to the repo. */
export function remoteKeyringName(remote: string): string {
  return `${remote}.trustedkeys.gpg`;
}

function remoteGroup(name: string): string {
  return `remote "${name}"`;
}

/** The keyfile (repo config, a remotes.d file, or the parent repo's) defining a remote, or null. */
export async function findRemoteConfig(repo: Repo, remote: string, o: RemoteKeyringOptions = {}): Promise<KeyFile | null> {
  if (repo.config.hasGroup(remoteGroup(remote))) return repo.config;
  if (o.remotesConfigDir) {
    let names: string[] = [];
    try {
      names = (await readdir(o.remotesConfigDir)).filter((n) => n.endsWith(".conf")).sort().reverse();
    } catch {
      // no remotes.d
    }
    for (const n of names) {
      const path = join(o.remotesConfigDir, n);
      const kf = KeyFile.parse(await readFile(path, "utf8"), path);
      if (kf.groupNames().includes(remoteGroup(remote))) return kf;
    }
  }
  const parent = repo.config.getString("core", "parent");
  if (parent) return findRemoteConfig(await Repo.open(parent), remote, {});
  return null;
}

async function readOptional(path: string): Promise<Uint8Array | null> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw e;
  }
}

/** `<repo>/NAME.trustedkeys.gpg`, else the remotes.d directory's, else the parent repo's. */
export async function findRemoteKeyringFile(repo: Repo, remote: string, o: RemoteKeyringOptions = {}): Promise<{ path: string; data: Uint8Array } | null> {
  const name = remoteKeyringName(remote);
  for (const dir of [repo.path, o.remotesConfigDir]) {
    if (!dir) continue;
    const data = await readOptional(join(dir, name));
    if (data) return { path: join(dir, name), data };
  }
  const parent = repo.config.getString("core", "parent");
  if (parent) return findRemoteKeyringFile(await Repo.open(parent), remote, {});
  return null;
}

/**
 * Split `gpgkeypath` as ostree does: `;` or `,` (both at once is an error),
 * pieces as GLib's string lists keep them (an empty piece stays, except after
 * the last separator).
 */
export function splitKeyPaths(value: string | undefined): string[] {
  if (!value) return [];
  if (value.includes(";") && value.includes(",")) throw new GpgError("key value list contains more than one separator");
  const parts = value.split(value.includes(";") ? ";" : ",");
  if (parts[parts.length - 1] === "") parts.pop();
  return parts;
}

/**
 * The keys ostree trusts for a remote (signing.md §3): its keyring file,
 * then its `gpgkeypath` entries; the global directory only when no keyring
 * file exists (never with `noGlobal`, as `remote gpg-list-keys NAME`).
 * Throws when the remote is not configured.
 */
export async function loadRemoteKeyring(repo: Repo, remote: string, o: RemoteKeyringOptions & { noGlobal?: boolean } = {}): Promise<Keyring> {
  const config = await findRemoteConfig(repo, remote, o);
  if (!config) throw new GpgKeyError(`Remote "${remote}" not found`);
  const keyring = new Keyring();
  const file = await findRemoteKeyringFile(repo, remote, o);
  if (file) await keyring.addData(file.data, file.path);
  for (const p of splitKeyPaths(config.getString(remoteGroup(remote), "gpgkeypath"))) await addKeyfilePath(keyring, p);
  if (!file && !o.noGlobal) await addGlobalKeyrings(keyring, o.globalKeyringDir);
  return keyring;
}

/** The global keyring directory alone (`remote gpg-list-keys` without a remote). */
export async function loadGlobalKeyring(o: { globalKeyringDir?: string } = {}): Promise<Keyring> {
  const keyring = new Keyring();
  await addGlobalKeyrings(keyring, o.globalKeyringDir);
  return keyring;
}

async function addGlobalKeyrings(keyring: Keyring, dir = globalKeyringDir()): Promise<void> {
  if (await isDir(dir)) await addKeyringDir(keyring, dir);
}

/**
 * The keys `ostree show` / `verify_commit_ext` use without a remote: every
 * `*.gpg` keyring in the repo directory (all remotes), the global directory,
 * and `keyringDir` (`--gpg-homedir`; only `*.gpg` files, so a GnuPG 2.1+
 * `pubring.kbx` is not read, as in ostree).
 */
export async function loadAllRemotesKeyring(repo: Repo, o: { keyringDir?: string; globalKeyringDir?: string } = {}): Promise<Keyring> {
  const keyring = new Keyring();
  await addKeyringDir(keyring, repo.path);
  await addGlobalKeyrings(keyring, o.globalKeyringDir);
  if (o.keyringDir) await addKeyringDir(keyring, o.keyringDir);
  return keyring;
}
