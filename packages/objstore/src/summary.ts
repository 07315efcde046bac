import { createHash } from "node:crypto";
import { mkdir, readFile, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import * as gvariant from "@ostree-ts/gvariant";
import { bswap64, decode, encode, variant, type Value, type Variant } from "@ostree-ts/gvariant";
import { fromHex, toHex } from "./checksum.js";
import { OstreeError } from "./errors.js";
import { GStrHashMap } from "./ghash.js";
import { withRepoLock } from "./lock.js";
import { compareNames, SUMMARY_TYPE, encodeCommit, encodeDirMeta, encodeDirTree, type MetadataDict } from "./metadata.js";
import { ObjectType } from "./object-types.js";
import { listStaticDeltaNames, staticDeltaDir } from "./prune.js";
import { listRefs, setRef, validateCollectionId } from "./refs.js";
import { resolveRev } from "./rev.js";
import { atomicWrite, parseRepoMode, type Repo } from "./repo.js";

const REFS_TYPE = "a(s(taya{sv}))";

export class SummaryError extends OstreeError {
  override name = "SummaryError";
}

export interface SummaryOptions {
  /** Extra `a{sv}` entries (`--add-metadata`), inserted first as ostree's GVariantDict does. */
  additionalMetadata?: MetadataDict;
  /** `ostree.summary.last-modified` in seconds (default: now); fixed values make output reproducible. */
  lastModified?: number;
}

/** A GVariantDict: inserts go through GLib's hash order, which is the serialized order. */
function dictEnd(entries: Iterable<readonly [string, Variant]>): Value[] {
  const m = new GStrHashMap<Variant>();
  for (const [k, v] of entries) m.set(k, v);
  return m.entries().map(([k, v]) => [k, v]);
}

function strcmpSort<T>(items: T[], key: (t: T) => string): T[] {
  return items.sort((a, b) => compareNames(key(a), key(b)));
}

async function refEntry(repo: Repo, ref: string, checksum: string): Promise<Value> {
  const bytes = await repo.loadMetadataBytes(ObjectType.Commit, checksum);
  const commit = await repo.readCommit(checksum);
  const meta: Array<[string, Variant]> = [];
  // g_date_time_new_from_unix_utc accepts years 1..9999 only.
  if (commit.timestamp >= -62135596800 && commit.timestamp <= 253402300799) {
    meta.push(["ostree.commit.timestamp", variant("t", bswap64(BigInt(commit.timestamp)))]);
  }
  const version = commit.metadata.find(([k]) => k === "version")?.[1];
  if (version && version.type === "s") meta.push(["ostree.commit.version", variant("s", version.value)]);
  return [ref, [BigInt(bytes.length), fromHex(checksum), dictEnd(meta)]];
}

/** sha256 of a delta's superblock file, as the `ay` ostree puts in summaries and indexes. */
async function superblockDigest(repo: Repo, name: string): Promise<Variant> {
  const data = await readFile(join(repo.path, staticDeltaDir(name), "superblock"));
  return variant("ay", new Uint8Array(createHash("sha256").update(data).digest()));
}

function deltaIndexPath(to: string): string {
  const b64 = Buffer.from(to, "hex").toString("base64").replace(/=+$/, "").replace(/\//g, "_");
  return join("delta-indexes", b64.slice(0, 2), `${b64.slice(2)}.index`);
}

/** Existing delta-indexes/ entries (their TO checksums). */
async function listDeltaIndexes(repo: Repo): Promise<string[]> {
  const { readdir } = await import("node:fs/promises");
  const root = join(repo.path, "delta-indexes");
  const out: string[] = [];
  let dirs: string[];
  try {
    dirs = await readdir(root);
  } catch {
    return out;
  }
  for (const d of dirs) {
    if (d.length !== 2) continue;
    for (const f of await readdir(join(root, d)).catch(() => [] as string[])) {
      if (f.length !== 41 + 6 || !f.endsWith(".index")) continue;
      const hex = Buffer.from((d + f.slice(0, 41)).replace(/_/g, "/") + "=", "base64").toString("hex");
      if (hex.length === 64) out.push(hex);
    }
  }
  return out;
}

/**
 * `ostree static-delta reindex` (as `summary -u` runs it): one index per
 * target commit listing its deltas; stale indexes are removed; sets
 * `core.indexed-deltas=true`.
 */
export async function reindexStaticDeltas(repo: Repo): Promise<void> {
  if (!repo.config.getBoolean("core", "indexed-deltas", false)) {
    repo.config.setString("core", "indexed-deltas", "true");
    await repo.saveConfig();
  }
  const byTo = new Map<string, Array<string | null>>();
  for (const old of await listDeltaIndexes(repo)) byTo.set(old, []);
  for (const name of await listStaticDeltaNames(repo)) {
    const dash = name.indexOf("-");
    const to = dash < 0 ? name : name.slice(dash + 1);
    const from = dash < 0 ? null : name.slice(0, dash);
    const list = byTo.get(to) ?? [];
    list.push(from);
    byTo.set(to, list);
  }
  for (const [to, froms] of byTo) {
    const path = join(repo.path, deltaIndexPath(to));
    if (froms.length === 0) {
      await rm(path, { force: true });
      continue;
    }
    // g_strcmp0 order: the scratch delta (no FROM) sorts first.
    froms.sort((a, b) => (a === b ? 0 : a === null ? -1 : b === null ? 1 : compareNames(a, b)));
    const deltas: Array<[string, Variant]> = [];
    for (const from of froms) {
      const name = from === null ? to : `${from}-${to}`;
      deltas.push([name, await superblockDigest(repo, name)]);
    }
    const bytes = encode("a{sv}", dictEnd([["ostree.static-deltas", variant("a{sv}", dictEnd(deltas))]]));
    const existing = await readFile(path).catch(() => null);
    if (existing && Buffer.compare(existing, Buffer.from(bytes)) === 0) continue;
    await mkdir(dirname(path), { recursive: true });
    await atomicWrite(repo.tmpDir, path, bytes, false);
  }
}

export interface SummaryRefs {
  /** The summary's main refs (refs/heads, or the repo's own collection), strcmp order. */
  main: Array<{ ref: string; checksum: string }>;
  /** `ostree.summary.collection-map`: every other collection ID, both levels in strcmp order. */
  collections: Map<string, Array<{ ref: string; checksum: string }>>;
}

/**
 * The refs `summary -u` lists, as ostree_repo_regenerate_summary picks them
 * through ostree_repo_list_collection_refs: heads (under the repo's own
 * collection ID, if any), refs/mirrors/CID, and refs/remotes/R of remotes
 * configured with a valid collection-id; a later one wins a (CID, ref) clash.
 * Without a collection ID the main refs are refs/heads; with one, that
 * collection's entry, which ostree keeps out of the map for backwards compatibility.
 */
export async function summaryRefs(repo: Repo): Promise<SummaryRefs> {
  const mainCollection = repo.config.getString("core", "collection-id") ?? null;
  const refs = await listRefs(repo, { heads: true, remotes: true, mirrors: true });
  const byCollection = new Map<string, Map<string, string>>();
  const add = (cid: string, ref: string, checksum: string) => {
    const m = byCollection.get(cid) ?? new Map<string, string>();
    m.set(ref, checksum);
    byCollection.set(cid, m);
  };
  const remoteCollection = (remote: string): string | null => {
    const cid = repo.config.getString(`remote "${remote}"`, "collection-id");
    if (!cid) return null;
    try {
      return validateCollectionId(cid);
    } catch {
      return null;
    }
  };
  if (mainCollection !== null) for (const r of refs) if (r.ns.kind === "heads") add(mainCollection, r.ref, r.checksum);
  for (const r of refs) if (r.ns.kind === "mirror") add(r.ns.collectionId, r.ref, r.checksum);
  for (const r of refs) {
    const cid = r.ns.kind === "remote" ? remoteCollection(r.ns.remote) : null;
    if (cid) add(cid, r.ref, r.checksum);
  }
  const sorted = (m: Map<string, string> | undefined) =>
    strcmpSort(
      [...(m ?? new Map<string, string>())].map(([ref, checksum]) => ({ ref, checksum })),
      (x) => x.ref,
    );
  const main =
    mainCollection === null
      ? strcmpSort(
          refs.filter((r) => r.ns.kind === "heads").map((r) => ({ ref: r.ref, checksum: r.checksum })),
          (x) => x.ref,
        )
      : sorted(byCollection.get(mainCollection));
  const collections = new Map<string, Array<{ ref: string; checksum: string }>>();
  for (const cid of strcmpSort([...byCollection.keys()], (c) => c)) if (cid !== mainCollection) collections.set(cid, sorted(byCollection.get(cid)));
  return { main, collections };
}

/** The summary bytes ostree 2022.7 would write for this repo (no side effects). */
export async function buildSummary(repo: Repo, options: SummaryOptions = {}): Promise<Uint8Array> {
  const extra: Array<readonly [string, Variant]> = [...(options.additionalMetadata ?? [])];
  const mainCollection = repo.config.getString("core", "collection-id") ?? null;
  const listed = await summaryRefs(repo);
  const mainRefs: Value[] = [];
  for (const r of listed.main) mainRefs.push(await refEntry(repo, r.ref, r.checksum));

  if (!repo.config.getBoolean("core", "no-deltas-in-summary", false)) {
    const names = await listStaticDeltaNames(repo);
    if (names.length) {
      const deltas: Array<[string, Variant]> = [];
      for (const n of names) deltas.push([n, await superblockDigest(repo, n)]);
      extra.push(["ostree.static-deltas", variant("a{sv}", dictEnd(deltas))]);
    }
  }
  const now = options.lastModified ?? Math.floor(Date.now() / 1000);
  extra.push(["ostree.summary.last-modified", variant("t", bswap64(BigInt(now)))]);
  extra.push(["ostree.summary.mode", variant("s", repo.config.getString("core", "mode") ?? "bare")]);
  extra.push(["ostree.summary.tombstone-commits", variant("b", repo.config.getBoolean("core", "tombstone-commits", false))]);
  extra.push(["ostree.summary.indexed-deltas", variant("b", true)]);

  const map: Value[] = [];
  for (const [cid, list] of listed.collections) {
    const entries: Value[] = [];
    for (const r of list) entries.push(await refEntry(repo, r.ref, r.checksum));
    map.push([cid, entries]);
  }
  if (mainCollection !== null) extra.push(["ostree.summary.collection-id", variant("s", mainCollection)]);
  if (map.length) extra.push(["ostree.summary.collection-map", variant("a{sa(s(taya{sv}))}", map)]);

  return encode(SUMMARY_TYPE, [mainRefs, dictEnd(extra)]);
}

/**
 * `ostree summary -u`: reindex deltas, write `summary` atomically, delete
 * `summary.sig` (it no longer matches). Holds the shared repo lock.
 */
export async function updateSummary(repo: Repo, options: SummaryOptions = {}): Promise<Uint8Array> {
  return withRepoLock(repo, "shared", async () => {
    const bytes = await buildSummary(repo, options);
    await reindexStaticDeltas(repo);
    await atomicWrite(repo.tmpDir, join(repo.path, "summary"), bytes, repo.config.getBoolean("core", "fsync", true));
    await rm(join(repo.path, "summary.sig"), { force: true });
    return bytes;
  });
}

/** The ref `summary -u` commits the repo metadata to when the repo has a collection ID. */
export const REPO_METADATA_REF = "ostree-metadata";

export interface RepoMetadataCommitOptions {
  /** `--add-metadata` entries; they become the commit's metadata next to the bindings. */
  additionalMetadata?: MetadataDict;
  /** Commit time in seconds (default: SOURCE_DATE_EPOCH, else now, as ostree_repo_write_commit). */
  timestamp?: number;
  /** Runs on the new commit before the ref moves (signing), as ostree signs inside its transaction. */
  beforeRef?: (checksum: string) => Promise<void>;
}

/** ostree_repo_write_commit's SOURCE_DATE_EPOCH handling (g_ascii_strtoll: leading digits count). */
function commitTime(): number {
  const env = process.env.SOURCE_DATE_EPOCH;
  if (env === undefined) return Math.floor(Date.now() / 1000);
  const m = /^\s*[+-]?\d+/.exec(env);
  if (!m) throw new SummaryError("Failed to convert SOURCE_DATE_EPOCH");
  return Number(m[0]);
}

/**
 * What `ostree summary -u` does first in a repo with `core.collection-id`
 * (ot-builtin-summary.c): commit an empty tree (root dirmeta 0/0/0755) whose
 * metadata is the additional summary metadata plus the collection and ref
 * bindings, parented on the previous `ostree-metadata` commit, and point
 * `(collection-id, ostree-metadata)` (a refs/heads ref) at it. Returns the
 * commit checksum; null when the repo has no collection ID.
 */
export async function commitRepoMetadata(repo: Repo, options: RepoMetadataCommitOptions = {}): Promise<string | null> {
  const collectionId = repo.config.getString("core", "collection-id");
  if (!collectionId) return null;
  return withRepoLock(repo, "shared", async () => {
    const parent = await resolveRev(repo, REPO_METADATA_REF, true);
    // A GVariantDict seeded with the extra metadata: GLib hash order, bindings included.
    const metadata = dictEnd([
      ...(options.additionalMetadata ?? []),
      ["ostree.collection-binding", variant("s", collectionId)],
      ["ostree.ref-binding", variant("as", [REPO_METADATA_REF])],
    ]) as Array<[string, Variant]>;
    const rootMeta = await repo.writeMetadata(ObjectType.DirMeta, encodeDirMeta({ uid: 0, gid: 0, mode: 0o40755, xattrs: [] }));
    const rootTree = await repo.writeMetadata(ObjectType.DirTree, encodeDirTree({ files: [], dirs: [] }));
    const bytes = encodeCommit({
      metadata,
      parent,
      related: [],
      subject: "",
      body: "",
      timestamp: options.timestamp ?? commitTime(),
      rootTree,
      rootMeta,
    });
    const checksum = await repo.writeMetadata(ObjectType.Commit, bytes);
    if (options.beforeRef) await options.beforeRef(checksum);
    await setRef(repo, { kind: "heads" }, REPO_METADATA_REF, checksum);
    return checksum;
  });
}

/** The hook commit code calls after moving refs: regenerate when `core.auto-update-summary` (or its old name) is set. */
export async function maybeRegenerateSummary(repo: Repo): Promise<boolean> {
  const on = repo.config.getBoolean("core", "auto-update-summary", false) || repo.config.getBoolean("core", "commit-update-summary", false);
  if (on) await updateSummary(repo);
  return on;
}

type PrintFn = (type: string, value: Value, annotate?: boolean) => string;

/** g_variant_print, from the gvariant package's text printer. */
function gPrint(): PrintFn {
  const p = (gvariant as unknown as { print?: PrintFn }).print;
  if (!p) throw new SummaryError("GVariant text printing is not available in this build of @ostree-ts/gvariant");
  return p;
}

/** g_format_size (SI units, one decimal, non-breaking space before the unit). */
function formatSize(n: number): string {
  if (n < 1000) return n === 1 ? "1 byte" : `${n} bytes`;
  const units = ["kB", "MB", "GB", "TB", "PB", "EB"];
  let f = 1000;
  let i = 0;
  while (i < units.length - 1 && n >= f * 1000) {
    f *= 1000;
    i++;
  }
  return `${(n / f).toFixed(1)}\u00a0${units[i]}`;
}

/** `%FT%T%:::z` in local time, as ostree's uint64_secs_to_iso8601 prints. */
export function isoLocal(secs: number): string {
  const d = new Date(secs * 1000);
  if (Number.isNaN(d.getTime())) return "invalid";
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  const off = -d.getTimezoneOffset();
  const sign = off < 0 ? "-" : "+";
  const oh = Math.floor(Math.abs(off) / 60);
  const om = Math.abs(off) % 60;
  return `${p(d.getFullYear(), 4)}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}${sign}${p(oh)}${om ? `:${p(om)}` : ""}`;
}

function viewRefs(collectionId: string | null, refs: Value[], print: PrintFn, out: string[]): void {
  for (const r of refs as Value[][]) {
    const [name, [size, csum, meta]] = r as [string, [bigint, Uint8Array, Value[][]]];
    out.push(collectionId === null ? `* ${name}` : `* (${collectionId}, ${name})`);
    out.push(`    Latest Commit (${formatSize(Number(size))}):`);
    out.push(csum.length === 32 ? `      ${toHex(csum)}` : `      Invalid checksum of length ${csum.length} expected 32`);
    for (const [k, v] of meta as Array<[string, Variant]>) {
      if (k === "ostree.commit.timestamp") out.push(`    Timestamp (${k}): ${isoLocal(Number(bswap64(v.value as bigint)))}`);
      else if (k === "ostree.commit.version") out.push(`    Version (${k}): ${v.value as string}`);
      else out.push(`    ${k}: ${print(v.type, v.value, false)}`);
    }
    out.push("");
  }
}

/** `ostree summary --view` (or `--raw`) of summary bytes, as lines. */
export function viewSummary(bytes: Uint8Array, options: { raw?: boolean } = {}): string[] {
  const print = gPrint();
  if (options.raw) {
    // ostree byteswaps before printing on little-endian hosts, so BE fields read naturally.
    return [print(SUMMARY_TYPE, decode(SUMMARY_TYPE, bytes, { byteOrder: "be", strict: false }), true)];
  }
  const [refs, exts] = decode(SUMMARY_TYPE, bytes, { strict: false }) as [Value[], Value[][]];
  const out: string[] = [];
  const cid = (exts as Array<[string, Variant]>).find(([k]) => k === "ostree.summary.collection-id")?.[1];
  viewRefs(cid && cid.type === "s" ? (cid.value as string) : null, refs, print, out);
  const map = (exts as Array<[string, Variant]>).find(([k]) => k === "ostree.summary.collection-map")?.[1];
  if (map && map.type === "a{sa(s(taya{sv}))}") for (const [c, r] of map.value as Array<[string, Value[]]>) viewRefs(c, r, print, out);
  for (const [k, v] of exts as Array<[string, Variant]>) {
    let pretty: string | null = null;
    let text: string;
    switch (k) {
      case "ostree.static-deltas":
        pretty = "Static Deltas";
        text = print(v.type, v.value, false);
        break;
      case "ostree.summary.last-modified":
        pretty = "Last-Modified";
        text = isoLocal(Number(bswap64(v.value as bigint)));
        break;
      case "ostree.summary.expires":
        pretty = "Expires";
        text = isoLocal(Number(bswap64(v.value as bigint)));
        break;
      case "ostree.summary.collection-id":
        pretty = "Collection ID";
        text = v.value as string;
        break;
      case "ostree.summary.collection-map":
        pretty = "Collection Map";
        text = "(printed above)";
        break;
      case "ostree.summary.mode": {
        pretty = "Repository Mode";
        const s = v.value as string;
        try {
          parseRepoMode(s);
          text = s;
        } catch {
          text = `Invalid (‘${s}’)`;
        }
        break;
      }
      case "ostree.summary.tombstone-commits":
        pretty = "Has Tombstone Commits";
        text = v.value ? "Yes" : "No";
        break;
      default:
        text = print(v.type, v.value, false);
    }
    out.push(pretty ? `${pretty} (${k}): ${text}` : `${k}: ${text}`);
  }
  return out;
}

/** Read `summary` from the repo; a missing file is an error naming it. */
export async function readSummary(repo: Repo): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(join(repo.path, "summary")));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") throw new SummaryError(`opening summary: ${join(repo.path, "summary")}: No such file or directory`);
    throw e;
  }
}
