import { readFile, readdir, realpath, stat } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { bswap64 } from "@ostree-ts/gvariant";
import { decodeCommit, GStrHashMap, gStrHash, listRefs, ObjectType, Repo, validateCollectionId, validateRef } from "@ostree-ts/objstore";
import { PullError } from "./errors.js";
import { fetchSummary, openRemoteSource, pull, type PullOptions } from "./pull.js";
import { Remotes } from "./remotes.js";
import { summaryString, type ParsedSummary } from "./summary.js";

/** ostree's OstreeCollectionRef: a ref name qualified by the collection it belongs to. */
export interface CollectionRef {
  collectionId: string;
  ref: string;
}

export type FinderName = "config" | "mount" | "lan";

export class FinderError extends PullError {
  override name = "FinderError";
}

/** One place the refs can be pulled from (ostree's OstreeRepoFinderResult). */
export interface FinderResult {
  /** The configured remote (config finder) or a dynamic one named after its URI and keyring (mount finder). */
  remoteName: string;
  /** The configured remote whose keyring verifies, and under whose name refs are written (`refs/remotes/NAME/…`). */
  keyringRemote: string;
  url: string;
  /** Whether `url` is not the keyring remote's own (mount finder): pulls override the URL. */
  dynamic: boolean;
  /** GObject type name of the finder, as `find-remotes` prints it. */
  finder: "OstreeRepoFinderConfig" | "OstreeRepoFinderMount";
  keyring: string;
  priority: number;
  /** `ostree.summary.last-modified` (seconds); 0 = unknown. */
  summaryLastModified: number;
  /** Every requested ref, with a checksum where this result has the newest commit for it (else null), in ostree's hash-table order. */
  refs: Array<CollectionRef & { checksum: string | null }>;
}

export interface FindRemotesOptions {
  /** Default: the repo's `core.default-repo-finders`, else config and mount (as ostree 2022.7). */
  finders?: FinderName[];
  /** Mount points the mount finder scans instead of the removable ones in /proc/self/mountinfo. */
  mountRoots?: string[];
  remotesConfigDir?: string;
  cacheDir?: string;
}

const keyOf = (r: CollectionRef) => `${r.collectionId}\0${r.ref}`;

/** ostree_collection_ref_hash over a `keyOf` key. */
const collectionRefHash = (key: string) => {
  const nul = key.indexOf("\0");
  return (gStrHash(key.slice(0, nul)) ^ gStrHash(key.slice(nul + 1))) >>> 0;
};

/** The requested refs as ostree iterates its ref → checksum table (what find-remotes prints and pulls in). */
function hashOrder(refs: CollectionRef[]): CollectionRef[] {
  const m = new GStrHashMap<CollectionRef>(collectionRefHash);
  for (const r of refs) m.set(keyOf(r), r);
  return m.entries().map(([, r]) => r);
}

/** g_uri_escape_string(s, NULL, FALSE): everything but unreserved characters as %XX (UTF-8 bytes). */
function uriEscape(s: string): string {
  let out = "";
  for (const b of Buffer.from(s, "utf8")) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9\-._~]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** ostree_repo_finder_result_compare: priority, then summary age (both known), then fewer refs, then remote name. */
function compareResults(a: Candidate, b: Candidate): number {
  if (a.priority !== b.priority) return a.priority - b.priority;
  if (a.summaryLastModified !== 0 && b.summaryLastModified !== 0 && a.summaryLastModified !== b.summaryLastModified) return a.summaryLastModified - b.summaryLastModified;
  const n = (c: Candidate) => [...c.checksums.values()].filter((v) => v !== null).length;
  if (n(a) !== n(b)) return n(a) - n(b);
  return a.remoteName < b.remoteName ? -1 : a.remoteName > b.remoteName ? 1 : 0;
}

type Candidate = Omit<FinderResult, "refs"> & { checksums: Map<string, string | null>; gpgVerifySummary: boolean };

/** Fetches each remote's summary at most once per search. */
class SummaryCache {
  private readonly cache = new Map<string, Promise<ParsedSummary | null>>();
  constructor(
    private readonly repo: Repo,
    private readonly o: FindRemotesOptions,
  ) {}

  get(c: Pick<Candidate, "remoteName" | "keyringRemote" | "url" | "dynamic" | "gpgVerifySummary">): Promise<ParsedSummary | null> {
    let p = this.cache.get(c.remoteName);
    if (!p) {
      p = (async () => {
        const { source } = await openRemoteSource(this.repo, c.keyringRemote, { url: c.dynamic ? c.url : undefined, remotesConfigDir: this.o.remotesConfigDir });
        try {
          // A dynamic remote has no cache of its own (and no signed-summary requirement: ostree's unsigned summary support).
          const s = await fetchSummary(this.repo, source, c.dynamic ? null : c.remoteName, {
            gpgVerifySummary: c.gpgVerifySummary,
            remotesConfigDir: this.o.remotesConfigDir,
            cacheDir: this.o.cacheDir,
          });
          return s?.parsed ?? null;
        } finally {
          await source.close();
        }
      })();
      this.cache.set(c.remoteName, p);
    }
    return p;
  }
}

/** (collection, ref) → checksum of every ref a summary lists: main refs under its collection ID (if any), then the collection map. */
function summaryCollectionRefs(s: ParsedSummary): Map<string, { checksum: string; commitSize: number; timestamp?: number }> {
  const out = new Map<string, { checksum: string; commitSize: number; timestamp?: number }>();
  const main = summaryString(s, "ostree.summary.collection-id");
  if (main) for (const [ref, r] of s.refs) out.set(keyOf({ collectionId: main, ref }), r);
  for (const [cid, refs] of s.collections) for (const [ref, r] of refs) out.set(keyOf({ collectionId: cid, ref }), r);
  return out;
}

/** ostree-repo-finder-config.c: configured remotes with a collection ID whose summary lists some of the refs. */
async function configFinder(repo: Repo, refs: CollectionRef[], remotes: Remotes, summaries: SummaryCache): Promise<Candidate[]> {
  const out: Candidate[] = [];
  for (const name of await remotes.list()) {
    const remote = await remotes.get(name);
    const cid = remote.collectionId;
    if (!cid) continue;
    try {
      validateCollectionId(cid);
    } catch {
      continue;
    }
    const c: Candidate = {
      remoteName: name,
      keyringRemote: name,
      url: remote.option("url") ?? "",
      dynamic: false,
      finder: "OstreeRepoFinderConfig",
      keyring: `${name}.trustedkeys.gpg`,
      priority: 100,
      summaryLastModified: 0,
      checksums: new Map(),
      gpgVerifySummary: remote.gpgVerifySummary,
    };
    let listed;
    try {
      const s = await summaries.get(c);
      if (!s) continue;
      listed = summaryCollectionRefs(s);
    } catch {
      // ostree ignores a remote whose refs cannot be loaded.
      continue;
    }
    for (const r of refs) {
      const hit = r.collectionId === cid ? listed.get(keyOf(r)) : undefined;
      if (hit) c.checksums.set(keyOf(r), hit.checksum);
    }
    if (c.checksums.size) out.push(c);
  }
  return out.sort(compareResults);
}

/** GLib's g_unix_is_system_fs_type list (the types a removable repo never lives on). */
const SYSTEM_FS = new Set([
  "adfs", "afs", "auto", "autofs", "autofs4", "cgroup", "cgroup2", "configfs", "cxfs", "debugfs", "devfs", "devpts", "devtmpfs", "ecryptfs", "fdescfs",
  "fusectl", "gfs", "gfs2", "gpfs", "hugetlbfs", "kernfs", "linprocfs", "linsysfs", "lustre", "lustre_lite", "mfs", "mqueue", "ncpfs", "nfsd", "nullfs",
  "ocfs2", "overlay", "proc", "procfs", "pstore", "ptyfs", "rootfs", "rpc_pipefs", "securityfs", "selinuxfs", "sysfs", "tmpfs", "usbfs", "bpf", "tracefs",
  "binfmt_misc", "efivarfs", "fuse.portal", "nsfs", "ramfs", "squashfs",
]);

/** `\040`-style escapes in /proc/self/mountinfo fields. */
const unescapeMount = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/**
 * The mounts GIO's volume monitor shows a user (removable media and the like),
 * from /proc/self/mountinfo text: mount points under /media, /run/media or the
 * home directory (not inside a dot directory), not of a system filesystem
 * type; a later mount at the same point hides the earlier one.
 */
export function userMountPoints(mountinfo: string, home: string): string[] {
  const byPoint = new Set<string>();
  for (const line of mountinfo.split("\n")) {
    const sep = line.indexOf(" - ");
    if (sep < 0) continue;
    const point = unescapeMount(line.slice(0, sep).split(" ")[4] ?? "");
    const [fstype] = line.slice(sep + 3).split(" ");
    byPoint.delete(point);
    if (!fstype || SYSTEM_FS.has(fstype)) continue;
    const underHome = home !== "/" && point.startsWith(`${home}/`) && !point.slice(home.length).includes("/.");
    if (point.startsWith("/media/") || point.startsWith("/run/media/") || underHome) byPoint.add(point);
  }
  return [...byPoint];
}

async function userMounts(): Promise<string[]> {
  const text = await readFile("/proc/self/mountinfo", "utf8").catch(() => "");
  return userMountPoints(text, homedir());
}

/**
 * ostree-repo-finder-mount.c: on each mount, the repos in `.ostree/repos.d/`
 * (sorted), then `.ostree/repo`, `ostree/repo`, `var/lib/flatpak/repo`; per
 * ref the first repo that has it, if it is on the mount's filesystem, is not
 * this repo, and a configured remote provides a keyring for its collection.
 */
async function mountFinder(repo: Repo, refs: CollectionRef[], remotes: Remotes, mountRoots: string[]): Promise<Candidate[]> {
  const out: Candidate[] = [];
  const self = await stat(repo.path);
  const keyrings = new Map<string, string | null>();
  const keyringFor = async (cid: string): Promise<string | null> => {
    if (!keyrings.has(cid)) {
      let found: string | null = null;
      for (const name of await remotes.list()) {
        if ((await remotes.get(name)).collectionId === cid) {
          found = name;
          break;
        }
      }
      keyrings.set(cid, found);
    }
    return keyrings.get(cid)!;
  };
  for (const root of mountRoots) {
    let rootSt;
    try {
      rootSt = await stat(root);
    } catch {
      continue;
    }
    const candidates: string[] = [];
    const reposD = join(root, ".ostree", "repos.d");
    const entries = await readdir(reposD).catch(() => [] as string[]);
    for (const e of entries.sort()) candidates.push(join(reposD, e));
    for (const wk of [".ostree/repo", "ostree/repo", "var/lib/flatpak/repo"]) candidates.push(join(root, wk));
    const scanned: Array<{ path: string; refs: Map<string, string> }> = [];
    for (const path of candidates) {
      try {
        const st = await stat(path);
        if (st.dev !== rootSt.dev) continue;
        if (st.dev === self.dev && st.ino === self.ino) continue;
        const r = await Repo.open(path);
        const own = r.config.getString("core", "collection-id") || null;
        const listed = new Map<string, string>();
        for (const e of await listRefs(r, { heads: true, remotes: false, mirrors: true })) {
          const cid = e.ns.kind === "mirror" ? e.ns.collectionId : own;
          if (cid) listed.set(keyOf({ collectionId: cid, ref: e.ref }), e.checksum);
        }
        scanned.push({ path, refs: listed });
      } catch {
        continue;
      }
    }
    const byRepo = new Map<string, Candidate>();
    for (const ref of refs) {
      for (const s of scanned) {
        const checksum = s.refs.get(keyOf(ref));
        if (!checksum) continue;
        const keyringRemote = await keyringFor(ref.collectionId);
        if (!keyringRemote) continue;
        const url = `file://${await realpath(s.path)}`;
        const keyring = `${keyringRemote}.trustedkeys.gpg`;
        const name = `${uriEscape(url)}_${uriEscape(keyring)}`.replace(/%/g, "_");
        let c = byRepo.get(name);
        if (!c) {
          c = { remoteName: name, keyringRemote, url, dynamic: true, finder: "OstreeRepoFinderMount", keyring, priority: 50, summaryLastModified: 0, checksums: new Map(), gpgVerifySummary: false };
          byRepo.set(name, c);
        }
        c.checksums.set(keyOf(ref), checksum);
        break;
      }
    }
    out.push(...byRepo.values());
  }
  return out.sort(compareResults);
}

/**
 * ostree_repo_find_remotes_async: run the finders, read each result's summary,
 * drop results whose summary disagrees with another's about a commit (size or
 * timestamp), and keep for each ref only the results that have its newest
 * commit (by timestamp). Results come back in ostree's priority order.
 */
export async function findRemotes(repo: Repo, refs: CollectionRef[], o: FindRemotesOptions = {}): Promise<FinderResult[]> {
  for (const r of refs) {
    validateCollectionId(r.collectionId);
    validateRef(r.ref);
  }
  const finders = o.finders ?? defaultFinders(repo);
  if (finders.includes("lan")) throw new FinderError("LAN repo finder requested but ostree-ts has no Avahi support");
  const remotes = new Remotes(repo, { remotesConfigDir: o.remotesConfigDir });
  const summaries = new SummaryCache(repo, o);
  const found: Candidate[] = [];
  for (const f of finders) {
    if (f === "config") found.push(...(await configFinder(repo, refs, remotes, summaries)));
    else found.push(...(await mountFinder(repo, refs, remotes, o.mountRoots ?? (await userMounts()))));
  }

  // Per result: what its summary says about each requested ref; commit metadata shared across results.
  const table: Array<Map<string, string> | null> = [];
  const commits = new Map<string, { size: number; timestamp: number; from: number }>();
  for (const [i, c] of found.entries()) {
    let s: ParsedSummary | null;
    try {
      s = await summaries.get(c);
    } catch {
      s = null;
    }
    if (!s) {
      table.push(null);
      continue;
    }
    const listed = summaryCollectionRefs(s);
    const row = new Map<string, string>();
    let valid = true;
    for (const r of refs) {
      const hit = listed.get(keyOf(r));
      if (!hit) continue;
      let meta = commits.get(hit.checksum);
      if (!meta) {
        const local = await repo.readCommit(hit.checksum).catch(() => null);
        meta = { size: hit.commitSize, timestamp: local?.timestamp ?? 0, from: i };
        commits.set(hit.checksum, meta);
      }
      const ts = hit.timestamp ?? 0;
      if (meta.timestamp === 0) meta.timestamp = ts;
      else if (ts !== 0 && ts !== meta.timestamp) valid = false;
      if (hit.commitSize !== meta.size) valid = false;
      row.set(keyOf(r), hit.checksum);
    }
    table.push(valid ? row : null);
    const lm = s.metadata.get("ostree.summary.last-modified");
    c.summaryLastModified = lm && lm.type === "t" ? Number(bswap64(lm.value as bigint)) : 0;
  }
  // Commits no summary dated: their timestamp from the commit object on a remote listing them.
  for (const [checksum, meta] of commits) {
    if (meta.timestamp !== 0) continue;
    const c = found[meta.from]!;
    const { source } = await openRemoteSource(repo, c.keyringRemote, { url: c.dynamic ? c.url : undefined, remotesConfigDir: o.remotesConfigDir });
    try {
      const bytes = await source.getMetadata(ObjectType.Commit, checksum);
      if (!bytes) throw new FinderError(`Metadata not found for commit ‘${checksum}’`);
      meta.timestamp = decodeCommit(bytes, checksum).timestamp;
    } finally {
      await source.close();
    }
  }
  const latest = new Map<string, string>();
  for (const r of refs) {
    let best: { checksum: string; ts: number } | null = null;
    for (const row of table) {
      const checksum = row?.get(keyOf(r));
      if (!checksum) continue;
      const ts = commits.get(checksum)!.timestamp;
      if (!best || ts > best.ts) best = { checksum, ts };
    }
    if (best) latest.set(keyOf(r), best.checksum);
  }
  const results: Candidate[] = [];
  for (const [i, c] of found.entries()) {
    const row = table[i];
    if (!row) continue;
    c.checksums = new Map(refs.map((r) => [keyOf(r), row.get(keyOf(r)) === latest.get(keyOf(r)) ? (row.get(keyOf(r)) ?? null) : null]));
    if ([...c.checksums.values()].every((v) => v === null)) continue;
    results.push(c);
  }
  const ordered = hashOrder(refs);
  return results.sort(compareResults).map((c) => ({
    remoteName: c.remoteName,
    keyringRemote: c.keyringRemote,
    url: c.url,
    dynamic: c.dynamic,
    finder: c.finder,
    keyring: c.keyring,
    priority: c.priority,
    summaryLastModified: c.summaryLastModified,
    refs: ordered.map((r) => ({ ...r, checksum: c.checksums.get(keyOf(r)) ?? null })),
  }));
}

/** `core.default-repo-finders`, else config and mount. */
function defaultFinders(repo: Repo): FinderName[] {
  const list = repo.config.getList("core", "default-repo-finders");
  if (list === undefined) return ["config", "mount"];
  if (list.length === 0) throw new FinderError("Invalid empty default-repo-finders configuration");
  for (const f of list) if (f !== "config" && f !== "lan" && f !== "mount") throw new FinderError(`Invalid configured repo-finder '${f}'`);
  return list as FinderName[];
}

export type PullFromRemotesOptions = Pick<PullOptions, "mirror" | "depth" | "disableStaticDeltas" | "httpHeaders" | "subpaths" | "onProgress" | "updateFrequency" | "retries" | "remotesConfigDir" | "fsync">;

/**
 * ostree_repo_pull_from_remotes_async: each result in order pulls the refs it
 * has the newest commit for and that no earlier result pulled, as untrusted,
 * GPG-verified collection refs through its keyring remote. Fails naming the
 * refs no result could pull.
 */
export async function pullFromRemotes(repo: Repo, results: FinderResult[], o: PullFromRemotesOptions = {}): Promise<void> {
  // A GHashTable in ostree too: the failure message lists refs in its order.
  const pulled = new GStrHashMap<{ ref: CollectionRef; ok: boolean }>(collectionRefHash);
  for (const result of results) {
    const todo = result.refs.filter((r) => r.checksum !== null && !pulled.get(keyOf(r))?.ok);
    if (!todo.length) continue;
    let ok = true;
    try {
      await pull(repo, result.keyringRemote, {
        ...o,
        url: result.dynamic ? result.url : undefined,
        collectionRefs: todo.map((r) => ({ collectionId: r.collectionId, ref: r.ref, checksum: r.checksum! })),
        untrusted: true,
        gpgVerify: true,
        gpgVerifySummary: false,
      });
    } catch {
      ok = false;
    }
    for (const r of todo) pulled.set(keyOf(r), { ref: r, ok });
  }
  const failed = pulled
    .entries()
    .map(([, p]) => p)
    .filter((p) => !p.ok).map((p) => `(${p.ref.collectionId}, ${p.ref.ref})`);
  if (failed.length) throw new FinderError(`Failed to pull some refs from the remotes: ${failed.join(", ")}`);
}
