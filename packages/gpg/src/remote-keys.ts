import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { atomicWrite, type Repo } from "@ostree-ts/objstore";
import type * as openpgp from "openpgp";
import { GpgKeyError } from "./errors.js";
import { findRemoteConfig, Keyring, loadRemoteKeyring, parseKeys, remoteKeyringName, type RemoteKeyringOptions } from "./keyring.js";

/**
 * `ostree remote gpg-import NAME [KEY-ID…]`: add keys from `data` (binary or
 * armored, possibly several keyrings concatenated) to `<repo>/NAME.trustedkeys.gpg`,
 * all of them or only those the key ids name. Returns how many keys were new
 * (ostree prints "Imported N GPG key(s)"); keys already present take in the
 * imported copy's updates (new expiry, revocation), as gpg's import merges them.
 */
export async function importRemoteKeys(repo: Repo, remote: string, data: Uint8Array, keyIds: string[] = [], o: RemoteKeyringOptions = {}): Promise<number> {
  if (!(await findRemoteConfig(repo, remote, o))) throw new GpgKeyError(`GPG: Remote "${remote}" not found`);
  const source = new Keyring();
  source.add(await parseKeys(data, "GPG: key data"));
  let chosen: openpgp.PublicKey[] = source.keys;
  if (keyIds.length) {
    chosen = [];
    for (const id of keyIds) {
      const found = source.lookup(id);
      if (!found.length) throw new GpgKeyError(`GPG: Unable to find key "${id}": GPGME: End of file`);
      chosen.push(...found);
    }
  }
  const path = join(repo.path, remoteKeyringName(remote));
  const target = new Keyring();
  try {
    await target.addFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  const added = await target.merge(chosen);
  await mkdir(repo.path, { recursive: true });
  await atomicWrite(repo.tmpDir, path, target.toBinary(), true);
  return added;
}

/** Keys in a remote's keyring file (`ostree remote gpg-list-keys`). */
export async function listRemoteKeys(repo: Repo, remote: string, o: RemoteKeyringOptions = {}): Promise<openpgp.PublicKey[]> {
  return (await loadRemoteKeyring(repo, remote, o)).keys;
}
