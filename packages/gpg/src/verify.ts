import * as openpgp from "openpgp";
import { GpgError, type GpgErrorCode } from "./errors.js";
import type { Keyring } from "./keyring.js";

/** One signature's attributes, as ostree's OstreeGpgSignatureAttr tuple `(bbbbbsxxsssssxx)`. */
export interface GpgSignatureInfo {
  valid: boolean;
  sigExpired: boolean;
  keyExpired: boolean;
  keyRevoked: boolean;
  keyMissing: boolean;
  /** Fingerprint of the (sub)key that made the signature, upper-case hex (the issuer key id when the key is missing). */
  fingerprint: string;
  /** Seconds since the epoch. */
  timestamp: number;
  /** Signature expiry (0: none). */
  expTimestamp: number;
  /** gpgme_pubkey_algo_name of the signature's algorithm ("RSA", "DSA", "EdDSA", …). */
  pubkeyAlgoName: string;
  hashAlgoName: string;
  userName: string;
  userEmail: string;
  /** Primary key fingerprint ("" when the key is missing). */
  fingerprintPrimary: string;
  /** Expiry of the signing (sub)key and of the primary key (0: never). */
  keyExpTimestamp: number;
  keyExpTimestampPrimary: number;
}

// gpgme maps OpenPGP algorithm numbers to its own ids, then names them.
const PUBKEY_NAMES: Record<number, string> = { 1: "RSA", 2: "RSA-E", 3: "RSA-S", 16: "ELG-E", 17: "DSA", 18: "ECDH", 19: "ECDSA", 20: "ELG", 22: "EdDSA" };
const HASH_NAMES: Record<number, string> = { 1: "MD5", 2: "SHA1", 3: "RIPEMD160", 8: "SHA256", 9: "SHA384", 10: "SHA512", 11: "SHA224" };

/** Result of checking a set of detached signatures (ostree's OstreeGpgVerifyResult). */
export class GpgVerifyResult {
  constructor(
    readonly signatures: GpgSignatureInfo[],
    private readonly keyring: Keyring,
  ) {}

  get countAll(): number {
    return this.signatures.length;
  }

  get countValid(): number {
    return this.signatures.filter((s) => s.valid).length;
  }

  /**
   * Index of the first signature made by the key `keyId` names (any of its
   * subkeys), like ostree_gpg_verify_result_lookup; the key must be in the
   * keyring used for verification. -1 when none.
   */
  lookup(keyId: string): number {
    const keys = this.keyring.lookup(keyId);
    const fprs = new Set(keys.flatMap((k) => [k, ...k.subkeys].map((s) => s.getFingerprint().toUpperCase())));
    return this.signatures.findIndex((s) => fprs.has(s.fingerprint));
  }

  /** ostree_gpg_verify_result_describe: the lines `ostree show` prints per signature. */
  describe(index: number, linePrefix = ""): string {
    return describeSignature(this.signatures[index]!, linePrefix);
  }

  /** ostree_gpg_verify_result_require_valid_signature: throws GpgError unless one signature is valid. */
  requireValidSignature(): void {
    if (this.countValid > 0) return;
    if (this.signatures.length === 0) throw new GpgError("No GPG signatures found", "no-signature");
    let text = "";
    let code: GpgErrorCode = "invalid-signature";
    for (let i = this.signatures.length - 1; i >= 0; i--) {
      const s = this.signatures[i]!;
      text += describeSignature(s, "");
      if (i === this.signatures.length - 1) {
        code = s.keyMissing ? "missing-key" : s.keyRevoked ? "revoked-key" : s.keyExpired ? "expired-key" : s.sigExpired ? "expired-signature" : "invalid-signature";
      }
    }
    throw new GpgError(text.replace(/\s+$/, ""), code);
  }
}

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** g_date_time_format(local, "%c") in the C locale: `Fri Nov 27 06:14:00 2026`; GLib pads %e with U+2007 FIGURE SPACE. */
export function formatCTime(seconds: number): string | null {
  if (!(seconds >= -62135596800 && seconds <= 253402300799)) return null;
  const d = new Date(seconds * 1000);
  const p2 = (n: number) => String(n).padStart(2, "0");
  return `${DAYS[d.getDay()]} ${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2, "\u2007")} ${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())} ${d.getFullYear()}`;
}

function expireLine(prefix: string, what: string, ts: number, expired: boolean): string {
  const when = formatCTime(ts);
  if (when === null) return `${prefix}${what} expiry timestamp (${ts}) is invalid\n`;
  return `${prefix}${what} ${expired ? "expired" : "expires"} ${when}\n`;
}

/** ostree_gpg_verify_result_describe_variant with the default format. */
export function describeSignature(s: GpgSignatureInfo, prefix = ""): string {
  const keyId = s.fingerprint.length > 16 ? s.fingerprint.slice(-16) : s.fingerprint;
  const made = formatCTime(s.timestamp);
  if (made === null) return `Can't check signature: timestamp ${s.timestamp} is invalid\n`;
  let out = `${prefix}Signature made ${made} using ${s.pubkeyAlgoName} key ID ${keyId}\n${prefix}`;
  const who = `"${s.userName} <${s.userEmail}>"`;
  if (s.keyMissing) out += "Can't check signature: public key not found\n";
  else if (s.valid) out += `Good signature from ${who}\n`;
  else if (s.keyRevoked) out += "Key revoked\n";
  else if (s.sigExpired) out += `Expired signature from ${who}\n`;
  else out += `BAD signature from ${who}\n`;
  const subkeySigned = s.fingerprint !== s.fingerprintPrimary;
  if (!s.keyMissing && subkeySigned) {
    const fp = s.fingerprintPrimary;
    out += `${prefix}Primary key ID ${fp.length > 16 ? fp.slice(-16) : fp}\n`;
  }
  if (s.expTimestamp > 0) out += expireLine(prefix, "Signature", s.expTimestamp, s.sigExpired);
  if (s.keyExpTimestamp > 0) out += expireLine(prefix, "Key", s.keyExpTimestamp, s.keyExpired);
  if (s.keyExpTimestampPrimary > 0 && subkeySigned) out += expireLine(prefix, "Primary key", s.keyExpTimestampPrimary, s.keyExpired);
  return out;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex").toUpperCase();

function expirySeconds(t: Date | number | null): number {
  return t instanceof Date ? Math.floor(t.getTime() / 1000) : 0;
}

/** Every signature packet in the concatenated blobs (ostree verifies them all at once). */
async function readSignaturePackets(blobs: Uint8Array[]): Promise<openpgp.SignaturePacket[]> {
  const out: openpgp.SignaturePacket[] = [];
  for (const [i, blob] of blobs.entries()) {
    let sig: openpgp.Signature;
    try {
      sig = await openpgp.readSignature({ binarySignature: blob });
    } catch (e) {
      throw new GpgError(`GPG signature ${i}: cannot be parsed: ${(e as Error).message}`, "invalid-signature");
    }
    for (const p of sig.packets) out.push(p as openpgp.SignaturePacket);
  }
  return out;
}

/**
 * Check detached signatures over `data` against `keyring` at time `now`.
 * Validity follows gpgme as ostree reads it: the math must check out and the
 * signing key must be neither revoked nor expired now, nor the signature expired.
 */
export async function verifyDetached(data: Uint8Array, blobs: Uint8Array[], keyring: Keyring, now = new Date()): Promise<GpgVerifyResult> {
  const packets = await readSignaturePackets(blobs);
  const infos: GpgSignatureInfo[] = [];
  for (const packet of packets) {
    const issuerKeyId = packet.issuerKeyID.toHex().toUpperCase();
    const issuerFpr = packet.issuerFingerprint ? hex(packet.issuerFingerprint) : issuerKeyId;
    const timestamp = packet.created ? Math.floor(packet.created.getTime() / 1000) : 0;
    const expTimestamp = packet.signatureNeverExpires || !packet.created ? 0 : timestamp + (packet.signatureExpirationTime ?? 0);
    const info: GpgSignatureInfo = {
      valid: false,
      sigExpired: expTimestamp > 0 && expTimestamp * 1000 <= now.getTime(),
      keyExpired: false,
      keyRevoked: false,
      keyMissing: true,
      fingerprint: issuerFpr,
      timestamp,
      expTimestamp,
      pubkeyAlgoName: PUBKEY_NAMES[packet.publicKeyAlgorithm ?? -1] ?? "[unknown name]",
      hashAlgoName: HASH_NAMES[packet.hashAlgorithm ?? -1] ?? "[unknown name]",
      userName: "[unknown name]",
      userEmail: "[unknown email]",
      fingerprintPrimary: "",
      keyExpTimestamp: 0,
      keyExpTimestampPrimary: 0,
    };
    const found = keyring.findSigningKey(issuerFpr.length === 40 || issuerFpr.length === 64 ? issuerFpr : issuerKeyId);
    if (found) {
      const { key, subkey } = found;
      info.keyMissing = false;
      info.fingerprint = subkey.getFingerprint().toUpperCase();
      info.fingerprintPrimary = key.getFingerprint().toUpperCase();
      const uid = key.users.find((u) => u.userID)?.userID;
      if (uid) Object.assign(info, splitUserId(uid.userID));
      const primaryExp = await key.getExpirationTime().catch(() => null);
      info.keyExpTimestampPrimary = expirySeconds(primaryExp);
      info.keyExpTimestamp = subkey === key ? info.keyExpTimestampPrimary : expirySeconds(await (subkey as openpgp.Subkey).getExpirationTime().catch(() => null));
      const expiredAt = (s: number) => s > 0 && s * 1000 <= now.getTime();
      info.keyExpired = expiredAt(info.keyExpTimestamp) || expiredAt(info.keyExpTimestampPrimary);
      info.keyRevoked = (await key.isRevoked(undefined as unknown as openpgp.SignaturePacket, undefined, now).catch(() => false)) || (subkey !== key && (await (subkey as openpgp.Subkey).isRevoked(undefined as unknown as openpgp.SignaturePacket, key.keyPacket, now).catch(() => false)));
      if (await signatureChecks(data, packet, subkey.keyPacket)) {
        info.valid = !info.keyRevoked && !info.keyExpired && !info.sigExpired;
      } else {
        // gpg's BADSIG status carries only the long key id: gpgme then reports no
        // time, no algorithm and no subkey match (hence a "Primary key ID" line).
        Object.assign(info, { fingerprint: issuerKeyId, timestamp: 0, expTimestamp: 0, pubkeyAlgoName: "[unknown name]", hashAlgoName: "[unknown name]" });
        Object.assign(info, { sigExpired: false, keyExpired: false, keyRevoked: false, keyExpTimestamp: 0 });
      }
    }
    infos.push(info);
  }
  return new GpgVerifyResult(infos, keyring);
}

/**
 * gpgme's split of a user ID `Name (Comment) <email>`: openpgp.js leaves the
 * name empty when the ID is not a valid RFC 5322 address (e.g. "Test Key 1"),
 * where gpgme keeps the text before any `(` or `<` as the name.
 */
export function splitUserId(userId: string): { userName: string; userEmail: string } {
  const lt = userId.indexOf("<");
  const gt = lt < 0 ? -1 : userId.indexOf(">", lt);
  const userEmail = lt >= 0 && gt > lt ? userId.slice(lt + 1, gt) : "";
  let end = userId.length;
  for (const c of ["(", "<"]) {
    const i = userId.indexOf(c);
    if (i >= 0 && i < end) end = i;
  }
  return { userName: userId.slice(0, end).trim(), userEmail };
}

/**
 * The signature's math against the issuing (sub)key packet alone. Going
 * through openpgp.verify would also demand a self-signature valid at signing
 * time, which fails once the key's expiry was changed later (a newer
 * self-signature); gpg still reports such a signature with its time and
 * algorithm, and judges expiry separately, as done here.
 */
async function signatureChecks(data: Uint8Array, packet: openpgp.SignaturePacket, keyPacket: openpgp.Key["keyPacket"] | openpgp.Subkey["keyPacket"]): Promise<boolean> {
  const message = await openpgp.createMessage({ binary: data });
  const literal = message.packets.findPacket(openpgp.enums.packet.literalData);
  try {
    await packet.verify(keyPacket as openpgp.PublicKeyPacket, openpgp.enums.signature.binary, literal!, packet.created ?? undefined);
    return true;
  } catch {
    return false;
  }
}
