import { createHash } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { atomicWrite, type Repo } from "@ostree-ts/objstore";
import type * as openpgp from "openpgp";
import { GpgKeyError } from "./errors.js";
import { findRemoteConfig, Keyring, loadGlobalKeyring, loadRemoteKeyring, parseKeys, remoteKeyringName, type RemoteKeyringOptions } from "./keyring.js";
import { formatCTime, splitUserId } from "./verify.js";

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

/** One (sub)key as `ostree remote gpg-list-keys` shows it (gpgme's key listing). */
export interface GpgSubkeyInfo {
  fingerprint: string;
  created: number;
  /** 0: never. */
  expires: number;
  expired: boolean;
  revoked: boolean;
}

export interface GpgUidInfo {
  uid: string;
  revoked: boolean;
  /** Web Key Directory URLs for the UID's address (null without one). */
  advancedUrl: string | null;
  directUrl: string | null;
}

export interface GpgKeyInfo {
  /** The primary key first. */
  subkeys: GpgSubkeyInfo[];
  uids: GpgUidInfo[];
}

const ZBASE32 = "ybndrfg8ejkmcpqxot1uwisza345h769";

function zbase32(bytes: Uint8Array): string {
  let out = "";
  let acc = 0;
  let bits = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += ZBASE32[(acc >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += ZBASE32[(acc << (5 - bits)) & 31];
  return out;
}

/** g_uri_escape_string(s, NULL, FALSE): everything but RFC 3986 unreserved characters is %-escaped. */
function uriEscape(s: string): string {
  return [...Buffer.from(s, "utf8")].map((c) => (/[A-Za-z0-9\-._~]/.test(String.fromCharCode(c)) ? String.fromCharCode(c) : `%${c.toString(16).toUpperCase().padStart(2, "0")}`)).join("");
}

/** OpenPGP Web Key Directory URLs of an address, as ostree's ot_gpg_wkd_urls builds them. */
export function wkdUrls(email: string): { advanced: string; direct: string } | null {
  const parts = email.split("@");
  if (parts.length !== 2) return null;
  const [local, domain] = parts as [string, string];
  const hash = zbase32(new Uint8Array(createHash("sha1").update(local.toLowerCase()).digest()));
  const l = uriEscape(local);
  return {
    advanced: `https://openpgpkey.${domain}/.well-known/openpgpkey/${domain.toLowerCase()}/hu/${hash}?l=${l}`,
    direct: `https://${domain}/.well-known/openpgpkey/hu/${hash}?l=${l}`,
  };
}

const seconds = (d: Date | number | null): number => (d instanceof Date ? Math.floor(d.getTime() / 1000) : 0);

/** A revocation makes gpg mark the key, its subkeys and its UIDs revoked in listings. */
async function describeKey(key: openpgp.PublicKey, now: Date): Promise<GpgKeyInfo> {
  const keyRevoked = await key.isRevoked(undefined, undefined, now).catch(() => false);
  const sub = async (k: openpgp.PublicKey | openpgp.Subkey, revoked: boolean): Promise<GpgSubkeyInfo> => {
    const expires = seconds(await k.getExpirationTime().catch(() => null));
    return {
      fingerprint: k.getFingerprint().toUpperCase(),
      created: seconds(k.getCreationTime()),
      expires,
      expired: expires > 0 && expires * 1000 <= now.getTime(),
      revoked,
    };
  };
  const subkeys = [await sub(key, keyRevoked)];
  for (const s of key.subkeys) subkeys.push(await sub(s, keyRevoked || (await s.isRevoked(undefined as unknown as openpgp.SignaturePacket, key.keyPacket, now).catch(() => false))));
  const uids: GpgUidInfo[] = [];
  for (const u of key.users) {
    if (!u.userID) continue;
    const { userEmail } = splitUserId(u.userID.userID);
    const urls = userEmail ? wkdUrls(userEmail) : null;
    uids.push({ uid: u.userID.userID, revoked: keyRevoked || u.revocationSignatures.length > 0, advancedUrl: urls?.advanced ?? null, directUrl: urls?.direct ?? null });
  }
  return { subkeys, uids };
}

/**
 * `ostree remote gpg-list-keys [NAME]`: with a remote, its keyring file and
 * `gpgkeypath` only (never the global directory); without, the global
 * directory only, as ostree_repo_remote_get_gpg_keys.
 */
export async function listGpgKeys(repo: Repo, remote: string | null, o: RemoteKeyringOptions & { now?: Date } = {}): Promise<GpgKeyInfo[]> {
  const keyring = remote === null ? await loadGlobalKeyring(o) : await loadRemoteKeyring(repo, remote, { ...o, noGlobal: true });
  const now = o.now ?? new Date();
  const out: GpgKeyInfo[] = [];
  for (const k of keyring.keys) out.push(await describeKey(k, now));
  return out;
}

/** ot_dump_gpg_key's text for each key. */
export function formatGpgKeys(keys: GpgKeyInfo[]): string {
  let s = "";
  const flags = (revoked: boolean) => (revoked ? " (revoked)" : "");
  const when = (t: number) => formatCTime(t) ?? String(t);
  const subkey = (k: GpgSubkeyInfo, primary: boolean) => {
    const ind = primary ? "  " : "    ";
    s += `${primary ? "Key" : "  Subkey"}: ${k.fingerprint}${flags(k.revoked)}\n${ind}Created: ${when(k.created)}\n`;
    if (k.expires > 0) s += `${ind}${k.expired ? "Expired" : "Expires"}: ${when(k.expires)}\n`;
  };
  for (const key of keys) {
    subkey(key.subkeys[0]!, true);
    for (const u of key.uids) {
      s += `  UID: ${u.uid}${flags(u.revoked)}\n  Advanced update URL: ${u.advancedUrl ?? ""}\n  Direct update URL: ${u.directUrl ?? ""}\n`;
    }
    for (const k of key.subkeys.slice(1)) subkey(k, false);
  }
  return s;
}
