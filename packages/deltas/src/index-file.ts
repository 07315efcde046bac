/**
 * `delta-indexes/XX/REST.index` (deltas.md §3): an `a{sv}` with one key,
 * `ostree.static-deltas` → `a{sv}` mapping delta names to `<ay>` superblock
 * sha256. Both dicts are written through GVariantDict, so their physical
 * order is GLib's hash order (replayed by objstore's GStrHashMap).
 */
import { createHash } from "node:crypto";
import { mkdir, readFile, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { decode, encode, lookup, variant, type Value, type Variant } from "@ostree-ts/gvariant";
import { atomicWrite, compareNames, GStrHashMap, withRepoLock, type Repo } from "@ostree-ts/objstore";
import { DeltaFormatError } from "./errors.js";
import { checksumFromB64, deltaIndexPath, parseDeltaName, superblockPath } from "./naming.js";
import { listDeltas, readdirRaw } from "./repo-deltas.js";

export const STATIC_DELTAS_KEY = "ostree.static-deltas";

function dict(entries: Iterable<readonly [string, Variant]>): Value[] {
  const m = new GStrHashMap<Variant>();
  for (const [k, v] of entries) m.set(k, v);
  return m.entries().map(([k, v]) => [k, v]);
}

/** Serializes an index: delta name → superblock sha256 (hex). FROMs are inserted in strcmp order. */
export function encodeDeltaIndex(deltas: ReadonlyMap<string, string> | Array<readonly [string, string]>): Uint8Array {
  const entries = [...deltas].sort(([a], [b]) => compareNames(a.length === 64 ? "" : a, b.length === 64 ? "" : b));
  const inner = dict(entries.map(([name, digest]) => [name, variant("ay", new Uint8Array(Buffer.from(digest, "hex")))] as const));
  return encode("a{sv}", dict([[STATIC_DELTAS_KEY, variant("a{sv}", inner)]]));
}

/** Delta name → superblock sha256 (hex), in file order. */
export function decodeDeltaIndex(bytes: Uint8Array): Map<string, string> {
  let top: Value[];
  try {
    top = decode("a{sv}", bytes, { strict: false }) as Value[];
  } catch (e) {
    throw new DeltaFormatError(`invalid delta index: ${(e as Error).message}`);
  }
  const out = new Map<string, string>();
  const v = lookup(top, STATIC_DELTAS_KEY);
  if (!v) return out;
  if (v.type !== "a{sv}") throw new DeltaFormatError(`delta index: ${STATIC_DELTAS_KEY} has type ${v.type}, expected a{sv}`);
  for (const [name, d] of v.value as Array<[string, Variant]>) {
    if (d.type !== "ay" || (d.value as Uint8Array).length !== 32) throw new DeltaFormatError(`delta index: entry ${name} is not a 32-byte ay`);
    out.set(name, Buffer.from(d.value as Uint8Array).toString("hex"));
  }
  return out;
}

/** TO checksums that have an index, in readdir order (as `ostree static-delta indexes`). */
export async function listDeltaIndexes(repo: Repo): Promise<string[]> {
  const root = join(repo.path, "delta-indexes");
  const out: string[] = [];
  let dirs: string[];
  try {
    dirs = (await readdirRaw(root)).map((d) => d.name);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return out;
    throw e;
  }
  for (const d of dirs) {
    if (d.length !== 2) continue;
    let files: string[];
    try {
      files = (await readdirRaw(join(root, d))).map((x) => x.name);
    } catch {
      continue;
    }
    for (const f of files) {
      if (f.length !== 41 + 6 || !f.endsWith(".index")) continue;
      try {
        out.push(checksumFromB64(d + f.slice(0, 41)));
      } catch {
        // not an index name: ostree skips it too
      }
    }
  }
  return out;
}

async function superblockDigest(repo: Repo, from: string | null, to: string): Promise<string> {
  const data = await readFile(join(repo.path, superblockPath(from, to)));
  return createHash("sha256").update(data).digest("hex");
}

/**
 * `ostree static-delta reindex [--to=REV]`: rewrites the index of every TO
 * (or just `to`), removes stale ones, sets `core.indexed-deltas=true`.
 */
export async function reindexDeltas(repo: Repo, to?: string): Promise<void> {
  await withRepoLock(repo, "shared", async () => {
    if (!repo.config.getBoolean("core", "indexed-deltas", false)) {
      repo.config.setString("core", "indexed-deltas", "true");
      await repo.saveConfig();
    }
    const byTo = new Map<string, Array<string | null>>();
    if (to === undefined) for (const t of await listDeltaIndexes(repo)) byTo.set(t, []);
    else byTo.set(to, []);
    for (const name of await listDeltas(repo)) {
      const p = parseDeltaName(name);
      if (to !== undefined && p.to !== to) continue;
      const list = byTo.get(p.to) ?? [];
      list.push(p.from);
      byTo.set(p.to, list);
    }
    for (const [t, froms] of byTo) {
      const path = join(repo.path, deltaIndexPath(t));
      if (froms.length === 0) {
        await rm(path, { force: true });
        continue;
      }
      const entries: Array<[string, string]> = [];
      for (const f of froms) entries.push([f === null ? t : `${f}-${t}`, await superblockDigest(repo, f, t)]);
      await mkdir(dirname(path), { recursive: true });
      await atomicWrite(repo.tmpDir, path, encodeDeltaIndex(entries), false);
    }
  });
}
