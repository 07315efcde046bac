import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { decode, variant, type Value, type Variant } from "@ostree-ts/gvariant";
import { atomicWrite, COMMITMETA_TYPE, decodeMetadataDict, encodeMetadataDict, GStrHashMap, ObjectType, RepoError, type MetadataDict, type Repo } from "@ostree-ts/objstore";

/** Detached-metadata key holding GPG signatures. */
export const GPGSIGS_KEY = "ostree.gpgsigs";

/** The `aay` under `key`, or null when absent or of another type. */
export function signaturesOf(dict: MetadataDict | null, key: string): Uint8Array[] | null {
  const v = dict?.find(([k]) => k === key)?.[1];
  if (!v || v.type !== "aay") return null;
  return (v.value as Value[]).map((b) => b as Uint8Array);
}

/**
 * GVariantDict round trip: `dict` re-inserted through GLib's hash order with
 * `key` set to `sigs` (removed when null), as ostree rebuilds detached metadata.
 */
export function withSignatures(dict: MetadataDict | null, key: string, sigs: Uint8Array[] | null): MetadataDict {
  const m = new GStrHashMap<Variant>();
  for (const [k, v] of dict ?? []) if (!(k === key && sigs === null)) m.set(k, v);
  if (sigs !== null) m.set(key, variant("aay", sigs));
  return m.entries();
}

export async function commitBytes(repo: Repo, checksum: string): Promise<Uint8Array> {
  return repo.loadMetadataBytes(ObjectType.Commit, checksum);
}

export async function readSummaryFiles(repo: Repo): Promise<{ summary: Uint8Array; sig: MetadataDict | null }> {
  let summary: Uint8Array;
  try {
    summary = new Uint8Array(await readFile(join(repo.path, "summary")));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") throw new RepoError(`No summary file in repository ${repo.path}`);
    throw e;
  }
  let sig: MetadataDict | null = null;
  try {
    sig = decodeMetadataDict(new Uint8Array(await readFile(join(repo.path, "summary.sig"))), "summary.sig", "summary.sig");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  return { summary, sig };
}

export async function writeSummarySig(repo: Repo, dict: MetadataDict | null): Promise<void> {
  const path = join(repo.path, "summary.sig");
  if (dict === null || dict.length === 0) {
    await rm(path, { force: true });
    return;
  }
  await atomicWrite(repo.tmpDir, path, encodeMetadataDict(dict), false);
}

/**
 * Decode a `summary.sig` file's bytes (an `a{sv}`). ostree reads it as an
 * untrusted GVariant, where GLib turns broken framing into empty or default
 * values instead of failing: a garbage file then holds no signatures, and the
 * pull fails with "no signatures found" rather than a parse error.
 */
export function decodeSummarySig(bytes: Uint8Array): MetadataDict {
  try {
    return decodeMetadataDict(bytes, "summary.sig", "summary.sig");
  } catch {
    try {
      return (decode(COMMITMETA_TYPE, bytes, { strict: false }) as Value[][]).map((e) => [e[0] as string, e[1] as Variant] as const);
    } catch {
      return [];
    }
  }
}
