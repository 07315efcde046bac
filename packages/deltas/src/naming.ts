/**
 * Static delta names and repository paths (deltas.md §1). Checksums are
 * written in ostree's "modified base64": standard base64 of the 32 bytes
 * without the trailing `=`, with `/` replaced by `_`.
 */
import { DeltaFormatError } from "./errors.js";

const HEX64 = /^[0-9a-f]{64}$/;
const B64_43 = /^[A-Za-z0-9+_]{43}$/;

function assertHex(checksum: string, what: string): void {
  if (!HEX64.test(checksum)) throw new DeltaFormatError(`invalid ${what} checksum '${checksum}'`);
}

/** Modified base64 (43 chars) of a hex checksum. */
export function checksumToB64(checksum: string): string {
  assertHex(checksum, "commit");
  return Buffer.from(checksum, "hex").toString("base64").replace(/=+$/, "").replace(/\//g, "_");
}

/** Hex checksum of a modified-base64 name. */
export function checksumFromB64(b64: string): string {
  if (!B64_43.test(b64)) throw new DeltaFormatError(`invalid modified-base64 checksum '${b64}'`);
  const hex = Buffer.from(`${b64.replace(/_/g, "/")}=`, "base64").toString("hex");
  if (hex.length !== 64) throw new DeltaFormatError(`invalid modified-base64 checksum '${b64}'`);
  return hex;
}

/** `FROM-TO`, or `TO` for a scratch delta (from = null). */
export function deltaName(from: string | null, to: string): string {
  assertHex(to, "TO");
  if (from === null) return to;
  assertHex(from, "FROM");
  return `${from}-${to}`;
}

/** Parses a delta name as ostree's _ostree_parse_delta_name does (message included). */
export function parseDeltaName(name: string): { from: string | null; to: string } {
  const dash = name.indexOf("-");
  const from = dash < 0 ? null : name.slice(0, dash);
  const to = dash < 0 ? name : name.slice(dash + 1);
  if (!HEX64.test(to) || (from !== null && !HEX64.test(from))) throw new DeltaFormatError(`Invalid rev ${name}`);
  return { from, to };
}

/** `deltas/XX/REST` (repo-relative, no trailing slash). */
export function deltaDirPath(from: string | null, to: string): string {
  const b64 = from === null ? checksumToB64(to) : `${checksumToB64(from)}-${checksumToB64(to)}`;
  return `deltas/${b64.slice(0, 2)}/${b64.slice(2)}`;
}

export function superblockPath(from: string | null, to: string): string {
  return `${deltaDirPath(from, to)}/superblock`;
}

/** Part `i`: also the superblock metadata key of an inline part. */
export function partPath(from: string | null, to: string, i: number): string {
  return `${deltaDirPath(from, to)}/${i}`;
}

/** Superblock metadata key holding the TO commit's detached metadata. */
export function commitmetaKey(from: string | null, to: string): string {
  return `${deltaDirPath(from, to)}/commitmeta`;
}

/** `delta-indexes/XX/REST.index` for a TO commit. */
export function deltaIndexPath(to: string): string {
  const b64 = checksumToB64(to);
  return `delta-indexes/${b64.slice(0, 2)}/${b64.slice(2)}.index`;
}

/**
 * Decodes `deltas/<a>/<b>` directory names into a delta name, or null when
 * they are not a delta directory (as ostree's listing skips them).
 */
export function deltaNameFromDirs(a: string, b: string): string | null {
  const joined = a + b;
  const dash = joined.indexOf("-");
  try {
    if (dash < 0) return checksumFromB64(joined);
    return `${checksumFromB64(joined.slice(0, dash))}-${checksumFromB64(joined.slice(dash + 1))}`;
  } catch {
    return null;
  }
}
