import { readFileSync } from "node:fs";
import { chmod, link, mkdir, readFile, rename, rm, utimes } from "node:fs/promises";
import { join } from "node:path";
import {
  atomicWrite,
  CorruptObjectError,
  decodeCommit,
  decodeDirMeta,
  decodeDirTree,
  isChecksum,
  isRegular,
  KeyFile,
  ObjectNotFoundError,
  isSymlink,
  ObjectType,
  objectTypeName,
  readRef,
  Repo,
  resolveRev,
  setRef,
  sha256Hex,
  testErrorFlags,
  validateRef,
  verifyBindings,
  withRepoLock,
  type Commit,
  type DirTree,
  type FileMeta,
  type MetadataDict,
  type RefNamespace,
} from "@ostree-ts/objstore";
import { encode, normalForm, readUntrusted, type Value, type Variant } from "@ostree-ts/gvariant";
import {
  commitmetaKey,
  decodeDeltaIndex,
  deltaIndexPath,
  deltaName,
  partPath,
  readSuperblockBytes,
  superblockPath,
  verifySuperblockCommit,
  DeltaError,
  executePrepared,
  fetchPart as decodePart,
  inlinePart,
  runPartsAhead,
  type PartHeader,
  type Superblock,
} from "@ostree-ts/deltas";
import { bestDeltaStart } from "./delta-select.js";
import { signVerifiersFromConfig, SignVerifyError, verifyWithEngines, type SignVerifiers } from "./sign-verify.js";
import { PullError } from "./errors.js";
import { CookieJar } from "./cookies.js";
import { HttpClient, type HttpOptions } from "./http.js";
import { emptyProgress, type ProgressListener, type PullProgress } from "./progress.js";
import { Remotes, type Remote } from "./remotes.js";
import { MIRRORLIST_PREFIX, openMirrored } from "./mirrorlist.js";
import { checkBareUserOnly, tmpSuffix, writeFetched, type FetchedContent } from "./filez.js";
import { HttpSource, LocalSource, type PullSource } from "./source.js";
import type { StorePool } from "./store-pool.js";
import { parseSummary, summaryBoolean, summaryString, withSummaryPair, type ParsedSummary, type SummaryPairFetch } from "./summary.js";

/**
 * @ostree-ts/gpg (and openpgp, ~50 ms of start-up CPU and 16 MiB) only for
 * pulls that verify signatures: most pulls from a `gpg-verify=false` remote
 * never need it.
 */
const loadGpg = () => import("@ostree-ts/gpg");

/** Detached metadata read the GLib way: it is not checksummed, so bad bytes read as defaults (and then hold no signatures). */
function untrustedMetadataDict(bytes: Uint8Array): MetadataDict {
  return (readUntrusted("a{sv}", bytes) as Value[][]).map((e) => [e[0] as string, e[1] as Variant] as const);
}

export interface PullOptions {
  /** Refs (`ref`, `ref@CHECKSUM`) or bare commit checksums; empty = the remote's `branches` (or all refs with `mirror`). */
  refs?: string[];
  mirror?: boolean;
  /** Parents to fetch too (-1 = all). */
  depth?: number;
  commitMetadataOnly?: boolean;
  /** Only these paths of the tree (`--subpath`); the commit stays partial. */
  subpaths?: string[];
  dryRun?: boolean;
  disableStaticDeltas?: boolean;
  requireStaticDeltas?: boolean;
  /** Repos consulted for objects before the network (`--localcache-repo`). */
  localcacheRepos?: string[];
  /** Verify checksums of local sources too (HTTP is always verified). */
  untrusted?: boolean;
  /** `--http-trusted`: skip content verification of HTTP pulls into archive repos. */
  httpTrusted?: boolean;
  /** Reject regular files with mode bits outside 0775. */
  bareuseronlyFiles?: boolean;
  /** Refuse a commit older than the ref's current one. */
  timestampCheck?: boolean;
  /** Refuse a commit older than this local rev (`--timestamp-check-from-rev`). */
  timestampCheckFromRev?: string;
  disableVerifyBindings?: boolean;
  /**
   * ostree's `collection-refs` option (find-remotes --pull): pull these
   * (collection ID, ref) at these commits, besides `refs`. With `mirror`
   * each is written as that collection's ref.
   */
  collectionRefs?: Array<{ collectionId: string; ref: string; checksum: string }>;
  /** Overrides the remote's URL (`--url`). */
  url?: string;
  /** Overrides `gpg-verify` / `gpg-verify-summary` (pull-local `--gpg-verify`). */
  gpgVerify?: boolean;
  gpgVerifySummary?: boolean;
  /** Per-request timeout in ms and retries per request. */
  timeoutMs?: number;
  retries?: number;
  httpHeaders?: Array<[string, string]>;
  /** A fixed number of HTTP requests in flight; unset = adaptive (8 at first, at most `maxConcurrency`). */
  concurrency?: number;
  maxConcurrency?: number;
  fsync?: boolean;
  /**
   * Decode and store content objects received over HTTP on a worker thread
   * (non-archive repos, pulls of more than a few dozen objects; only where this
   * code runs as JavaScript, as in the CLI bundle). Default true.
   */
  storeThread?: boolean;
  onProgress?: ProgressListener;
  /** Least time between two progress events in ms (`--update-frequency`; 0 or unset = 1000, as ostree). Phase changes are always reported. */
  updateFrequency?: number;
  /** Test hook: sees every HTTP response. */
  onResponse?: HttpOptions["onResponse"];
  /** Where remotes are defined besides the repo config (system repos). */
  remotesConfigDir?: string;
  /** `--cache-dir`: keep the summary cache in DIR/summaries instead of the repo's tmp/cache. */
  cacheDir?: string;
}

export interface PulledRef {
  /** Ref name as written (without namespace). */
  ref: string;
  checksum: string;
  previous: string | null;
}

export interface PullResult {
  refs: PulledRef[];
  /** Every commit fetched or scanned. */
  commits: string[];
  progress: PullProgress;
  deltaParts: number;
  /** Parts/bytes the chosen deltas needed (what `--dry-run` reports). */
  deltaTotals: { parts: number; fetchedParts: number; size: number; fetchedSize: number; usize: number };
  requests: number;
  /** HTTP requests allowed in flight when the pull ended (the adaptive limit; 0 for local sources). */
  inFlightLimit: number;
  /** Objects stored by the store thread (see PullOptions.storeThread). */
  storedOnThread: number;
  dryRun: boolean;
}

interface Target {
  /** Ref name, or null for a bare commit pull. */
  ref: string | null;
  /** Pinned commit (`ref@C` or a checksum); null = resolve. */
  pinned: string | null;
}

/** ostree's progress interval when `update-frequency` is 0 (ms). */
export const DEFAULT_UPDATE_FREQUENCY = 1000;

/** Content objects a pull asks for before it starts the store thread. */
const STORE_POOL_AFTER = 64;
/** Store threads: a second one cost more CPU than it saved (object pull of the Debian tree on 2 CPUs: +2 s CPU, slower). */
const STORE_THREADS = 1;

/**
 * One pull: ostree-repo-pull.c's flow, object by object. Refs are written
 * only after every object of every commit is stored.
 */
class Puller {
  readonly progress = emptyProgress();
  readonly started = Date.now();
  private readonly seen = new Set<string>();
  private readonly commitsDone = new Map<string, Promise<void>>();
  private readonly localcache: Repo[] = [];
  private lastEmit = 0;
  deltaParts = 0;
  /** Known static deltas: name → sha256 of the superblock (summary + delta indexes). */
  readonly deltaTable = new Map<string, string>();
  /** Deltas are off (archive target, local source, --disable-static-deltas, …). */
  deltasDisabled = true;
  indexedDeltas = false;
  summaryHasDeltas = false;
  /** What a `--dry-run` would fetch (ostree's "Delta update" line). */
  readonly deltaTotals = { parts: 0, fetchedParts: 0, size: 0, fetchedSize: 0, usize: 0 };
  /** Commits verified from a delta superblock: their tree scan does not verify again. */
  private readonly verifiedCommits = new Set<string>();
  private readonly targetsDone = new Map<string, Promise<void>>();
  /**
   * Objects below complete commits this repo holds (a commit without a
   * `.commitpartial` has every object it reaches, as ostree assumes): the scan
   * after a static delta skips these dirtrees whole and these files unchecked.
   */
  private readonly completeTrees = new Set<string>();
  private readonly completeFiles = new Set<string>();
  private readonly completeMetas = new Set<string>();
  /** Detached metadata requested while a delta's parts download (see pullDelta). */
  private readonly commitMetaAhead = new Map<string, Promise<Uint8Array | null>>();
  /** undefined: not decided yet (see storePool). */
  private pool: StorePool | null | undefined;
  private poolLoading: Promise<void> | undefined;
  private closed = false;
  storedOnThread = 0;

  constructor(
    readonly repo: Repo,
    readonly source: PullSource,
    readonly o: PullOptions,
    readonly remoteName: string | null,
    readonly gpgVerify: boolean,
    readonly collectionId: string | null,
    readonly signVerifiers: SignVerifiers | null = null,
    readonly gpgVerifySummary = false,
  ) {}

  async openLocalcache(): Promise<void> {
    for (const p of this.o.localcacheRepos ?? []) this.localcache.push(await Repo.open(p));
  }

  /** Every body byte received (summary, refs, objects), as ostree's "transferred" counts. */
  syncBytes(): void {
    if (this.source instanceof HttpSource) this.progress.bytesTransferred = this.source.http.bytes;
  }

  emit(force = false): void {
    this.syncBytes();
    if (!this.o.onProgress) return;
    const now = Date.now();
    if (!force && now - this.lastEmit < (this.o.updateFrequency || DEFAULT_UPDATE_FREQUENCY)) return;
    this.lastEmit = now;
    this.progress.elapsedMs = now - this.started;
    this.o.onProgress({ ...this.progress });
  }

  /** HTTP content is always verified, except `--http-trusted` into an archive (mirror) repo. */
  private get verifyLocal(): boolean {
    if (this.source.kind === "http") return !(this.o.httpTrusted && this.repo.isArchive);
    return Boolean(this.o.untrusted);
  }

  /** Detached metadata as ostree stores it; null when the remote has none. */
  private async fetchCommitMeta(checksum: string): Promise<Uint8Array | null> {
    this.progress.requestedMetadata++;
    const bytes = await this.source.getMetadata(ObjectType.CommitMeta, checksum);
    // ostree counts the (optional) detached-metadata request as a fetched metadata object.
    if (this.source.kind === "http") this.progress.fetchedMetadata++;
    if (bytes === null) return null;
    // ostree reads fetched detached metadata as untrusted GVariant data, which
    // never fails, and writes its normal form (garbage becomes default
    // entries); from a local repo it reads the file as trusted and copies it.
    return this.source.kind === "http" ? normalForm("a{sv}", bytes) : bytes;
  }

  private async verifySignatures(checksum: string, detached: Uint8Array | null, commitData?: Uint8Array): Promise<void> {
    if (this.signVerifiers) {
      if (!detached) throw new SignVerifyError(`Commit ${checksum}: Can't verify commit without detached metadata`);
      const data = commitData ?? (await this.repo.loadMetadataBytes(ObjectType.Commit, checksum));
      try {
        await verifyWithEngines(this.signVerifiers, data, untrustedMetadataDict(detached), "commit");
      } catch (e) {
        if (e instanceof SignVerifyError) throw new SignVerifyError(`Commit ${checksum}: ${e.message}`);
        throw e;
      }
    }
    if (!this.gpgVerify) return;
    const { GpgError, verifyCommitSignatures } = await loadGpg();
    const remote = this.remoteName ?? (this.o as PullLocalOptions).remote;
    if (!remote) throw new PullError("Must specify remote name to enable gpg verification");
    try {
      await verifyCommitSignatures(this.repo, remote, checksum, {
        commitData,
        detached: detached ? untrustedMetadataDict(detached) : null,
        remotesConfigDir: this.o.remotesConfigDir,
      });
    } catch (e) {
      if (e instanceof GpgError) throw new PullError(`Commit ${checksum}: ${e.message}`);
      throw e;
    }
  }

  /** ostree's verify_bindings: the commit's ref and collection bindings must cover the ref it was requested as. */
  private checkBindings(checksum: string, ref: string | null, commit: Commit): void {
    if (this.o.disableVerifyBindings) return;
    try {
      verifyBindings(this.collectionId, ref, commit);
    } catch (e) {
      throw new PullError(`Commit ${checksum}: ${(e as Error).message}`);
    }
  }

  private async fetchMetadataObject(type: ObjectType, checksum: string): Promise<Uint8Array> {
    this.progress.requestedMetadata++;
    for (const lc of this.localcache) {
      if (await lc.hasObject(checksum, type)) {
        const bytes = await lc.loadMetadataBytes(type, checksum);
        if (sha256Hex(bytes) === checksum) {
          this.progress.localcacheMetadata++;
          return bytes;
        }
      }
    }
    const bytes = await this.source.getMetadata(type, checksum);
    if (bytes === null) throw new ObjectNotFoundError(checksum, objectTypeName(type), this.source.kind === "http" ? "Server returned HTTP 404" : "");
    const actual = sha256Hex(bytes);
    if (actual !== checksum) {
      throw new CorruptObjectError(checksum, objectTypeName(type), `Corrupted ${objectTypeName(type)} object; checksum expected='${checksum}' actual='${actual}'`);
    }
    this.progress.fetchedMetadata++;
    this.emit();
    return bytes;
  }

  /** Pull one commit (and, with depth, its parents). `ref` is the name it was requested under. */
  pullCommit(checksum: string, ref: string | null, depth: number, isParent = false): Promise<void> {
    let p = this.commitsDone.get(checksum);
    if (!p) {
      p = this.doPullCommit(checksum, ref, depth, isParent);
      this.commitsDone.set(checksum, p);
    }
    return p;
  }

  private async doPullCommit(checksum: string, ref: string | null, depth: number, isParent: boolean): Promise<void> {
    const repo = this.repo;
    const ahead = this.commitMetaAhead.get(checksum);
    this.commitMetaAhead.delete(checksum);
    const detached = await (ahead ?? this.fetchCommitMeta(checksum));
    const have = await repo.hasObject(checksum, ObjectType.Commit);
    const partial = have ? await repo.commitPartialState(checksum) : null;
    let commit: Commit;
    if (have) {
      commit = await repo.readCommit(checksum);
      if (!this.verifiedCommits.has(checksum)) await this.verifySignatures(checksum, detached);
      // As ostree's scan of a commit it already has: pulling a ref to a commit
      // bound to other refs fails even when the commit came under its own ref.
      this.checkBindings(checksum, ref, commit);
    } else {
      let bytes: Uint8Array;
      try {
        bytes = await this.fetchMetadataObject(ObjectType.Commit, checksum);
      } catch (e) {
        // A parent the remote no longer has is not an error (pruned or shallow remotes).
        if (e instanceof ObjectNotFoundError && isParent) return;
        throw e;
      }
      commit = decodeCommit(bytes, checksum);
      await this.verifySignatures(checksum, detached, bytes);
      this.checkBindings(checksum, ref, commit);
      if (this.o.dryRun) return;
      await repo.markCommitPartial(checksum);
      await this.storeMetadata(ObjectType.Commit, bytes, checksum);
    }
    if (detached && !this.o.dryRun) await atomicWriteObject(repo, repo.objectPath(checksum, ObjectType.CommitMeta), detached);

    const complete = have && partial === null;
    if (!complete && !this.o.commitMetadataOnly && !this.o.dryRun) {
      if (!have) await repo.markCommitPartial(checksum);
      const subpaths = this.o.subpaths?.length ? this.o.subpaths : null;
      await this.scanDirMeta(commit.rootMeta);
      await this.scanDirTree(commit.rootTree, "/", subpaths);
      if (!subpaths) await repo.clearCommitPartial(checksum);
    }
    if (depth !== 0 && commit.parent) {
      await this.pullCommit(commit.parent, null, depth > 0 ? depth - 1 : depth, true);
    }
  }

  /**
   * ostree's `initiate_request`: a static delta when one applies, else the
   * commit object by object. `from` is the local value of the ref.
   */
  pullTarget(to: string, ref: string | null, from: string | null, depth: number): Promise<void> {
    const p = this.targetsDone.get(to);
    if (!p) {
      const first = this.doPullTarget(to, ref, from, depth);
      this.targetsDone.set(to, first);
      return first;
    }
    // ostree checks the bindings once per ref a commit is requested under, so
    // a second ref to the same commit in one pull is checked too.
    if (ref === null || this.o.dryRun || this.o.disableVerifyBindings) return p;
    return p.then(async () => this.checkBindings(to, ref, await this.repo.readCommit(to)));
  }

  private async doPullTarget(to: string, ref: string | null, from: string | null, depth: number): Promise<void> {
    if (this.deltasDisabled) return this.pullCommit(to, ref, depth);
    if (this.indexedDeltas) {
      const bytes = await this.source.getFile("content", deltaIndexPath(to));
      if (bytes) {
        let index: Map<string, string>;
        try {
          index = decodeDeltaIndex(bytes);
        } catch (e) {
          throw new PullError(`Delta index for ${to}: ${(e as Error).message}`);
        }
        for (const [name, digest] of index) this.deltaTable.set(name, digest);
      }
      return this.initiateDeltaRequest(to, ref, from, depth);
    }
    if (this.summaryHasDeltas) return this.initiateDeltaRequest(to, ref, from, depth);
    if (ref !== null) {
      // Without a delta list, the ref's current (complete) commit is tried as FROM.
      let f = from;
      if (f !== null && (!(await this.repo.hasObject(f, ObjectType.Commit)) || (await this.repo.commitPartialState(f)) !== null)) f = null;
      if (f === to) return this.pullCommit(to, ref, depth);
      return this.pullDelta(f, to, ref, depth);
    }
    return this.pullDelta(null, to, null, depth);
  }

  private async initiateDeltaRequest(to: string, ref: string | null, from: string | null, depth: number): Promise<void> {
    const found = await bestDeltaStart(this.repo, this.deltaTable, to);
    switch (found.result) {
      case "no-match":
        if (this.o.requireStaticDeltas) throw new PullError(`Static deltas required, but none found for ${ref ?? ""} to ${to}`);
        return this.pullCommit(to, ref, depth);
      case "from":
        return this.pullDelta(found.from, to, ref, depth);
      case "scratch":
        // A ref that exists locally is likely a few commits behind: objects beat a full scratch delta.
        if (from !== null) return this.pullCommit(to, ref, depth);
        return this.pullDelta(null, to, ref, depth);
      case "unchanged":
        // With --require-static-deltas ostree skips even the detached-metadata refresh.
        if (this.o.requireStaticDeltas) return;
        return this.pullCommit(to, ref, depth);
    }
  }

  /**
   * One static delta: superblock (checked against the digest the summary or
   * index gave), the TO commit verified from the superblock, fallbacks as
   * ordinary objects, parts fetched two ahead and applied one at a time
   * (each object verified as it is stored). The commit object is written
   * after every part, then its tree is scanned locally, so nothing the delta
   * carried is ever fetched again.
   */
  private async pullDelta(from: string | null, to: string, ref: string | null, depth: number): Promise<void> {
    const name = deltaName(from, to);
    const sbBytes = await this.source.getFile("content", superblockPath(from, to));
    if (sbBytes === null) {
      if (this.o.requireStaticDeltas) throw new PullError(`Static deltas required, but none found for ${from ?? "empty"} to ${to}`);
      return this.pullCommit(to, ref, depth);
    }
    const expected = this.deltaTable.get(name);
    if (this.gpgVerifySummary && expected === undefined) {
      throw new PullError("GPG verification enabled, but no summary signatures found (use gpg-verify-summary=false in remote config to disable)");
    }
    if (expected !== undefined && sha256Hex(sbBytes) !== expected) throw new PullError(`Invalid checksum for static delta ${name}`);
    let sb: Superblock;
    try {
      sb = readSuperblockBytes(sbBytes).superblock;
      verifySuperblockCommit(sb);
    } catch (e) {
      throw new PullError(`Static delta ${name}: ${(e as Error).message}`);
    }
    if (sb.to !== to || sb.from !== from) throw new PullError(`Static delta ${name}: superblock is for ${deltaName(sb.from, sb.to)}`);

    const needed: number[] = [];
    for (let i = 0; i < sb.parts.length; i++) {
      const h = sb.parts[i]!;
      if (h.objects.length === 0 || (await this.haveAll(h))) continue;
      needed.push(i);
      this.deltaTotals.parts++;
      this.deltaTotals.size += h.size;
      this.deltaTotals.usize += h.usize;
    }
    this.progress.deltaPartsTotal = this.deltaTotals.parts;
    this.progress.deltaBytesTotal = this.deltaTotals.size;
    this.emit(true);
    if (this.o.dryRun) return;

    const haveTo = await this.repo.hasObject(to, ObjectType.Commit);
    const metaEntry = sb.metadata.find(([k]) => k === commitmetaKey(from, to));
    let detached: Uint8Array | null = null;
    if (metaEntry) {
      if (metaEntry[1].type !== "a{sv}") throw new PullError(`Static delta ${name}: ${metaEntry[0]} is not a{sv}`);
      detached = encode("a{sv}", metaEntry[1].value);
    }
    if (!haveTo) {
      const commit = decodeCommit(sb.commit, to);
      await this.verifySignatures(to, detached, sb.commit);
      this.checkBindings(to, ref, commit);
      await this.repo.markCommitPartial(to);
    }
    this.verifiedCommits.add(to);
    // Loads while the first parts download.
    if (needed.length >= 2) this.startPool();

    const tasks: Array<Promise<void>> = [];
    for (const fb of sb.fallbacks) {
      if (fb.type === ObjectType.File) tasks.push(this.fetchContent(fb.checksum));
      else tasks.push(this.fetchFallbackMetadata(fb.type as ObjectType, fb.checksum));
    }
    tasks.push(this.applyParts(sb, sbBytes, needed, name));
    // The scan of TO (below) refreshes the detached metadata, as ostree does for a
    // stored commit: asked for now, it costs no round trip after the parts.
    if (!this.commitMetaAhead.has(to) && !this.commitsDone.has(to)) {
      const meta = this.fetchCommitMeta(to);
      meta.catch(() => undefined);
      this.commitMetaAhead.set(to, meta);
    }
    // Read while the parts download and decode, so the scan of TO descends only into what changed.
    if (from !== null) tasks.push(this.learnComplete(from));
    await settleAll(tasks);
    if (detached) await atomicWriteObject(this.repo, this.repo.objectPath(to, ObjectType.CommitMeta), detached);
    if (!haveTo) await this.repo.writeMetadata(ObjectType.Commit, sb.commit, to, { fsync: this.o.fsync });
    await this.pullCommit(to, ref, depth);
  }

  /**
   * The parts, through runPartsAhead as applyOffline runs them: two are fetched and decompressed ahead
   * (ostree fetches at most 2 parts at once) while the current one executes, so
   * execution never waits for a download that could have started earlier. A part
   * decoded ahead waits in an unlinked temp file (with the system `xz`), so only
   * the executing part's payload is in memory. Executed one at a time, in order,
   * unless the store thread is up (see applyPartsTwoThreads).
   */
  private async applyParts(sb: Superblock, sbBytes: Uint8Array, needed: number[], name: string): Promise<void> {
    // The store thread's module (started in pullDelta) is a small chunk: wait for it, not for the thread.
    if (needed.length >= 2) await this.poolLoading?.catch(() => undefined);
    const pool = this.pool;
    if (pool && needed.length >= 2) return this.applyPartsTwoThreads(pool, sb, sbBytes, needed, name);
    const decode = (i: number) =>
      this.fetchPart(sb, i).then((bytes) => decodePart(sb, i, bytes.data, { skipChecksum: bytes.inline, tmpDir: this.repo.tmpDir }));
    try {
      await runPartsAhead(needed, decode, async (prepared) => {
        try {
          // This thread alone executes parts here: their objects' temp files are created ahead.
          await executePrepared(this.repo, prepared, { tempsAhead: true });
        } catch (e) {
          throw new PullError(`Static delta ${name}: ${(e as Error).message}`);
        }
        this.partDone();
      });
    } catch (e) {
      throw e instanceof DeltaError ? new PullError(`Static delta ${name}: ${e.message}`) : e;
    }
  }

  /**
   * Parts executed by this thread and the store thread at once, each taking
   * the next part in order, with downloads two parts ahead of the last one
   * taken. Parts are independent (each object is in one part; copies and
   * patches read objects of the FROM commit), and ostree executes them on
   * worker threads too. Costs one more decompressed payload in memory.
   */
  private async applyPartsTwoThreads(pool: StorePool, sb: Superblock, sbBytes: Uint8Array, needed: number[], name: string): Promise<void> {
    const downloads = new Map<number, Promise<{ data: Uint8Array; inline: boolean }>>();
    let next = 0;
    let failed = false;
    const take = (): { i: number; bytes: Promise<{ data: Uint8Array; inline: boolean }> } | null => {
      if (failed || next >= needed.length) return null;
      const k = next++;
      for (let j = k; j < Math.min(needed.length, k + 3); j++) {
        if (!downloads.has(j)) {
          const d = this.fetchPart(sb, needed[j]!);
          d.catch(() => undefined);
          downloads.set(j, d);
        }
      }
      const bytes = downloads.get(k)!;
      downloads.delete(k);
      return { i: needed[k]!, bytes };
    };
    const wrap = (e: unknown) => (e instanceof PullError ? e : new PullError(`Static delta ${name}: ${(e as Error).message}`));
    /** Takes parts in turn and executes each with `apply` until none is left or either side failed. */
    const executor = async (apply: (i: number, got: { data: Uint8Array; inline: boolean }) => Promise<unknown>) => {
      for (let t = take(); t; t = take()) {
        const got = await t.bytes;
        try {
          await apply(t.i, got);
        } catch (e) {
          throw wrap(e);
        }
        this.partDone();
      }
    };
    const here = executor(async (i, got) => {
      const fetched = await decodePart(sb, i, got.data, { skipChecksum: got.inline, tmpDir: this.repo.tmpDir });
      await executePrepared(this.repo, fetched.prepare());
    });
    // Not waiting for the thread to be up: its first part waits in its queue while it loads.
    const there = executor((i, got) => pool.applyPart(sbBytes, i, got.data, got.inline));
    const stop = (e: unknown) => {
      failed = true;
      throw e;
    };
    await settleAll([here.catch(stop), there.catch(stop)]);
  }

  /**
   * Records the dirtrees, dirmetas and files below `commit` if it is complete.
   * Dirtrees only are read (no per-file checks), a few at a time between turns
   * of the event loop, as this runs beside the part downloads. A dirtree that
   * cannot be read here (say, held by a `core.parent` repo) is still complete;
   * only what lies below it stays unknown, and is checked as usual.
   */
  private async learnComplete(commit: string): Promise<void> {
    const repo = this.repo;
    if (!(await repo.hasObject(commit, ObjectType.Commit)) || (await repo.commitPartialState(commit)) !== null) return;
    const c = await repo.readCommit(commit);
    this.completeMetas.add(c.rootMeta);
    if (this.completeTrees.has(c.rootTree)) return;
    this.completeTrees.add(c.rootTree);
    const todo = [c.rootTree];
    for (let n = 1; todo.length > 0; n++) {
      const checksum = todo.pop()!;
      let tree: DirTree;
      try {
        tree = decodeDirTree(readFileSync(repo.objectPath(checksum, ObjectType.DirTree)), checksum);
      } catch {
        continue;
      }
      for (const f of tree.files) this.completeFiles.add(f.checksum);
      for (const d of tree.dirs) {
        this.completeMetas.add(d.meta);
        if (this.completeTrees.has(d.tree)) continue;
        this.completeTrees.add(d.tree);
        todo.push(d.tree);
      }
      if (n % 64 === 0) await new Promise((r) => setImmediate(r));
    }
  }

  private partDone(): void {
    this.deltaParts++;
    this.deltaTotals.fetchedParts++;
    this.progress.deltaPartsFetched = this.deltaTotals.fetchedParts;
    this.emit();
  }

  private async haveAll(h: PartHeader): Promise<boolean> {
    for (const o of h.objects) if (!(await this.repo.hasObject(o.checksum, o.type as ObjectType))) return false;
    return true;
  }

  /** Part file bytes: inline in the superblock, or downloaded (resumable) into memory. */
  private async fetchPart(sb: Superblock, i: number): Promise<{ data: Uint8Array; inline: boolean }> {
    const rel = partPath(sb.from, sb.to, i);
    const inline = inlinePart(sb, rel);
    if (inline) return { data: inline, inline: true };
    const header = sb.parts[i]!;
    if (this.source instanceof HttpSource) {
      const dest = join(this.repo.tmpDir, `deltapart-${header.checksum.slice(0, 16)}-${tmpSuffix()}`);
      // Kept in memory (it is decompressed from memory anyway); `dest` is never created.
      const got = await this.source.fetchBody("content", rel, dest, { maxSize: header.size, memoryLimit: header.size });
      if (got === null) throw new PullError(`Static delta part ${rel} not found on the remote`);
      this.deltaTotals.fetchedSize += got.bytes;
      return { data: new Uint8Array(got.data!.buffer, got.data!.byteOffset, got.data!.length), inline: false };
    }
    const data = await this.source.getFile("content", rel, header.size);
    if (data === null) throw new PullError(`Static delta part ${rel} not found`);
    return { data, inline: false };
  }

  private async fetchFallbackMetadata(type: ObjectType, checksum: string): Promise<void> {
    if (await this.repo.hasObject(checksum, type)) return;
    const bytes = await this.fetchMetadataObject(type, checksum);
    await this.repo.writeMetadata(type, bytes, checksum, { fsync: this.o.fsync });
  }

  /**
   * Store a verified metadata object. From a local repo it is hardlinked
   * (metadata objects are stored the same way in every mode), as ostree's
   * import does; otherwise written.
   */
  private async storeMetadata(type: ObjectType, bytes: Uint8Array, checksum: string): Promise<void> {
    if (this.source instanceof LocalSource && (await this.repo.linkObjectFrom(this.source.repo, checksum, type))) return;
    if (this.pool?.ready && type !== ObjectType.Commit) return this.pool.storeMetadata(type, checksum, bytes);
    await this.repo.writeMetadata(type, bytes, checksum, { fsync: this.o.fsync });
  }

  private async scanDirMeta(checksum: string): Promise<void> {
    const key = `${checksum}.dirmeta`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    if (await this.repo.hasObject(checksum, ObjectType.DirMeta)) {
      this.progress.skipped++;
      return;
    }
    const bytes = await this.fetchMetadataObject(ObjectType.DirMeta, checksum);
    decodeDirMeta(bytes, checksum);
    await this.storeMetadata(ObjectType.DirMeta, bytes, checksum);
  }

  /**
   * An object stored in this repo itself, checked synchronously (the tree scan
   * makes one check per file: a promise each cost more than the lstat).
   * False for objects only a `core.parent` repo holds: the async path finds those.
   */
  private storedHere(key: string, checksum: string, type: ObjectType): boolean {
    if (this.seen.has(key)) return true;
    if (this.repo.storedObjectPath(checksum, type) === null) return false;
    this.seen.add(key);
    this.progress.skipped++;
    return true;
  }

  /** A dirtree stored in this repo itself, read synchronously; null when it is not. */
  private localDirTree(checksum: string): Uint8Array | null {
    const path = this.repo.storedObjectPath(checksum, ObjectType.DirTree);
    return path === null ? null : readFileSync(path);
  }

  /**
   * Fetch a dirtree (if missing) and walk it: local dirtrees are still walked
   * so an interrupted pull finds what it missed. `subpaths` limits the walk.
   */
  private async scanDirTree(checksum: string, path: string, subpaths: string[] | null): Promise<void> {
    const key = `${checksum}.dirtree:${subpaths ? path : ""}`;
    if (this.seen.has(key) || this.completeTrees.has(checksum)) return;
    this.seen.add(key);
    let bytes = this.localDirTree(checksum);
    let tree: DirTree;
    let stored: Promise<void> | null = null;
    if (bytes === null && (await this.repo.hasObject(checksum, ObjectType.DirTree))) bytes = await this.repo.loadMetadataBytes(ObjectType.DirTree, checksum);
    if (bytes !== null) {
      tree = decodeDirTree(bytes, checksum);
    } else {
      bytes = await this.fetchMetadataObject(ObjectType.DirTree, checksum);
      try {
        tree = decodeDirTree(bytes, checksum);
      } catch (e) {
        // ostree names the object first: "<checksum>.dirtree: Invalid / in filename ../afile".
        throw new PullError(`${checksum}.dirtree: ${(e as Error).message}`);
      }
      // Stored while the walk goes on: on the store thread, the walk need not wait behind its queue.
      stored = this.storeMetadata(ObjectType.DirTree, bytes, checksum);
    }
    const tasks: Array<Promise<void>> = stored ? [stored] : [];
    try {
      this.walkDirTree(tree, path, subpaths, tasks);
    } finally {
      await settleAll(tasks);
    }
  }

  /**
   * One dirtree's entries: what this repo already holds is skipped and local
   * subtrees are walked synchronously (after a delta the whole tree is local,
   * ~10k checks that only need lstat); only missing objects become tasks.
   */
  private walkDirTree(tree: DirTree, path: string, subpaths: string[] | null, tasks: Array<Promise<void>>): void {
    const inScope = (childPath: string, isDir: boolean): { take: boolean; below: string[] | null } => {
      if (!subpaths) return { take: true, below: null };
      for (const s of subpaths) {
        const sp = s.replace(/\/+$/, "") || "/";
        if (sp === "/" || childPath === sp || childPath.startsWith(`${sp}/`)) return { take: true, below: null };
      }
      if (isDir && subpaths.some((s) => s.startsWith(`${childPath}/`))) return { take: true, below: subpaths };
      return { take: false, below: null };
    };
    for (const f of tree.files) {
      if (subpaths && !inScope(path === "/" ? `/${f.name}` : `${path}/${f.name}`, false).take) continue;
      if (this.completeFiles.has(f.checksum) || this.storedHere(`${f.checksum}.file`, f.checksum, ObjectType.File)) continue;
      tasks.push(this.fetchContent(f.checksum, true));
    }
    for (const d of tree.dirs) {
      const cp = path === "/" ? `/${d.name}` : `${path}/${d.name}`;
      const s = inScope(cp, true);
      if (!s.take) continue;
      if (!this.completeMetas.has(d.meta) && !this.storedHere(`${d.meta}.dirmeta`, d.meta, ObjectType.DirMeta)) tasks.push(this.scanDirMeta(d.meta));
      const key = `${d.tree}.dirtree:${s.below ? cp : ""}`;
      if (this.seen.has(key) || this.completeTrees.has(d.tree)) continue;
      const local = this.localDirTree(d.tree);
      if (local === null) {
        tasks.push(this.scanDirTree(d.tree, cp, s.below));
        continue;
      }
      this.seen.add(key);
      this.walkDirTree(decodeDirTree(local, d.tree), cp, s.below, tasks);
    }
  }

  /** `absentHere`: the caller found it missing from this repo itself (only a `core.parent` repo is left to check). */
  private async fetchContent(checksum: string, absentHere = false): Promise<void> {
    const key = `${checksum}.file`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    const repo = this.repo;
    const parent = absentHere ? await repo.parentRepo() : null;
    if (absentHere ? parent !== null && (await parent.hasObject(checksum, ObjectType.File)) : await repo.hasObject(checksum, ObjectType.File)) {
      this.progress.skipped++;
      return;
    }
    this.progress.requestedContent++;
    for (const lc of this.localcache) {
      if (await lc.hasObject(checksum, ObjectType.File)) {
        const fetched = await new LocalSource(lc).getContent(checksum, repo.tmpDir, true);
        await this.storeContent(checksum, fetched);
        this.progress.localcacheContent++;
        return;
      }
    }
    // Local source with the same mode, or bare-user into bare-user-only (regular files only: bare-user
    // stores symlinks as files): hardlink, as ostree's import does; --untrusted
    // and --bareuseronly-files read the object first (checksum, modes) and link it only if it passes.
    const local = this.source instanceof LocalSource ? this.source : null;
    const conversion = local?.repo.mode === "bare-user" && repo.mode === "bare-user-only";
    if (local && (local.repo.mode === repo.mode || (conversion && !isSymlink((await local.repo.openContent(checksum)).meta)))) {
      let checked: FetchedContent | null = null;
      if (this.o.untrusted || this.o.bareuseronlyFiles) {
        checked = await local.getContent(checksum, repo.tmpDir, Boolean(this.o.untrusted));
        if (this.o.bareuseronlyFiles || repo.mode === "bare-user-only") checkBareUserOnly(checksum, checked.meta);
      }
      if (await repo.linkObjectFrom(local.repo, checksum, ObjectType.File)) {
        if (checked?.payloadPath) await rm(checked.payloadPath, { force: true });
        this.progress.fetchedContent++;
        return;
      }
      if (checked) {
        await this.storeContent(checksum, checked);
        this.progress.fetchedContent++;
        return;
      }
    }
    const pool = this.storePool();
    const room = pool ? await pool.reserve() : null;
    try {
      let fetched: FetchedContent;
      try {
        if (pool && this.source instanceof HttpSource) {
          const { got, filezPath } = await this.source.fetchFilez(checksum, repo.tmpDir);
          if (got.data) room!.hold(got.data.length);
          if (got.data && pool.ready) {
            this.progress.contentBytesWritten += await pool.store(checksum, got.data);
            this.progress.fetchedContent++;
            this.emit();
            return;
          }
          fetched = await this.source.decodeFilez(got, filezPath, checksum, repo.tmpDir, false);
        } else {
          // Stored through writeContent, which hashes what it writes and refuses a mismatch: hashing
          // here too would double the work. Only a `.filez` kept as is (archive targets) is checked here.
          fetched = await this.source.getContent(checksum, repo.tmpDir, this.verifyLocal && repo.isArchive);
        }
      } catch (e) {
        if (e instanceof ObjectNotFoundError) throw new PullError(`Content object ${checksum} not found on the remote`);
        throw e;
      }
      await this.storeContent(checksum, fetched);
    } finally {
      room?.release();
    }
    this.progress.fetchedContent++;
    this.emit();
  }

  /**
   * The store thread (store-pool.ts) for HTTP pulls into non-archive repos,
   * started once the pull has asked for STORE_POOL_AFTER content objects: a
   * worker costs ~15 MiB and some start-up CPU, which a pull of a few objects
   * does not win back. Null until it is loaded, and for other pulls.
   */
  private storePool(): StorePool | null {
    if (this.pool === undefined && this.progress.requestedContent >= STORE_POOL_AFTER) this.startPool();
    return this.pool ?? null;
  }

  /** Loads the store thread (once), for HTTP pulls into non-archive repos unless `storeThread` is false. */
  private startPool(): void {
    if (this.pool !== undefined) return;
    this.pool = null;
    if (this.o.storeThread === false || !(this.source instanceof HttpSource) || this.repo.isArchive) return;
    const bareUserOnly = Boolean(this.o.bareuseronlyFiles) || this.repo.mode === "bare-user-only";
    this.poolLoading = import("./store-pool.js").then((m) => {
      if (!this.closed) this.pool = m.StorePool.start(this.repo, { fsync: this.o.fsync, bareUserOnly, threads: STORE_THREADS });
    });
  }

  /** Stops the store thread (every object handed to it has been stored or has failed by now). */
  async close(): Promise<void> {
    this.closed = true;
    await this.poolLoading?.catch(() => {});
    this.storedOnThread = this.pool?.stored ?? 0;
    await this.pool?.close();
  }

  private async storeContent(checksum: string, f: FetchedContent): Promise<void> {
    const repo = this.repo;
    try {
      if (this.o.bareuseronlyFiles || repo.mode === "bare-user-only") checkBareUserOnly(checksum, f.meta);
      if (repo.isArchive && f.filez) {
        // Verified above: keep the received .filez as is (no recompression).
        await atomicWriteObject(repo, repo.objectPath(checksum, ObjectType.File), f.filez);
      } else if (repo.isArchive && f.filezPath) {
        const dest = repo.objectPath(checksum, ObjectType.File);
        await mkdir(join(dest, ".."), { recursive: true });
        await chmod(f.filezPath, 0o644);
        await rename(f.filezPath, dest);
        f.filezPath = undefined;
      } else {
        // A trusted local import is not verified (ostree's TRUSTED import flag): the object is
        // stored under the name the source gives it, and fsck is what finds a bad one.
        const trusted = this.source.kind === "local" && !this.o.untrusted;
        if (!trusted) await writeFetched(repo, checksum, f, this.o.fsync);
        else {
          const payload = f.data ? { data: f.data } : { path: f.payloadPath!, size: f.size };
          try {
            await repo.writeContent(f.meta, payload, checksum, { fsync: this.o.fsync });
          } catch (e) {
            if (!(e instanceof CorruptObjectError)) throw e;
            const actual = await repo.writeContent(f.meta, payload, undefined, { fsync: this.o.fsync });
            const dest = repo.objectPath(checksum, ObjectType.File);
            await mkdir(join(dest, ".."), { recursive: true });
            await link(repo.objectPath(actual, ObjectType.File), dest).catch((err: NodeJS.ErrnoException) => {
              if (err.code !== "EEXIST") throw err;
            });
          }
        }
      }
      this.progress.contentBytesWritten += f.size;
    } finally {
      f.release?.();
      if (f.filezPath) await rm(f.filezPath, { force: true });
      if (f.payloadPath) await rm(f.payloadPath, { force: true });
    }
  }
}

/** Wait for every task; rethrow the first failure only after all have settled (no half-written stragglers). */
async function settleAll(tasks: Array<Promise<void>>): Promise<void> {
  const results = await Promise.allSettled(tasks);
  const failed = results.find((r) => r.status === "rejected");
  if (failed) throw (failed as PromiseRejectedResult).reason;
}

async function atomicWriteObject(repo: Repo, dest: string, bytes: Uint8Array): Promise<void> {
  await mkdir(join(dest, ".."), { recursive: true });
  await atomicWrite(repo.tmpDir, dest, bytes, false);
}

function parseTargets(refs: string[]): Target[] {
  return refs.map((r) => {
    if (isChecksum(r)) return { ref: null, pinned: r };
    const at = r.indexOf("@");
    if (at >= 0) {
      const c = r.slice(at + 1);
      if (!isChecksum(c)) throw new PullError(`Invalid checksum ${c} in ${r}`);
      return { ref: validateRef(r.slice(0, at)), pinned: c };
    }
    return { ref: validateRef(r), pinned: null };
  });
}

interface SummaryFetch {
  bytes: Uint8Array;
  sig: Uint8Array | null;
  parsed: ParsedSummary;
}

/** `tmp/cache/summaries/<remote>` (+ `.sig`), or under `--cache-dir`, as ostree caches them. */
function cachePaths(repo: Repo, remote: string, cacheDir?: string): { summary: string; sig: string } {
  const dir = join(cacheDir ?? join(repo.path, "tmp", "cache"), "summaries");
  return { summary: join(dir, remote), sig: join(dir, `${remote}.sig`) };
}

async function readOptional(path: string): Promise<Buffer | null> {
  try {
    return await readFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw e;
  }
}

type SummaryFetchOptions = { gpgVerifySummary?: boolean; signVerifiers?: SignVerifiers | null; remotesConfigDir?: string; cacheDir?: string };

/**
 * `summary.sig` then `summary`; when the sig matches the cached one the cached
 * summary is reused without downloading it. Cached only when a sig exists.
 * The two are fetched as one pair (see withSummaryPair).
 */
export async function fetchSummary(repo: Repo, source: PullSource, remote: string | null, opts: SummaryFetchOptions = {}): Promise<SummaryFetch | null> {
  return withSummaryPair(source, (pair) => fetchSummaryPair(repo, source, pair, remote, opts));
}

async function fetchSummaryPair(repo: Repo, source: PullSource, pair: SummaryPairFetch, remote: string | null, opts: SummaryFetchOptions): Promise<SummaryFetch | null> {
  const sig = await pair.sig();
  let bytes: Uint8Array | null = null;
  const cache = remote && source.kind === "http" ? cachePaths(repo, remote, opts.cacheDir) : null;
  if (cache && sig) {
    const cachedSig = await readOptional(cache.sig);
    const cached = await readOptional(cache.summary);
    if (cachedSig && cached && Buffer.compare(cachedSig, Buffer.from(sig)) === 0) bytes = new Uint8Array(cached);
  }
  const cameFromCache = bytes !== null;
  if (bytes === null) bytes = await pair.summary();
  const cachedBytes = bytes;
  if (opts.gpgVerifySummary) {
    if (!bytes) throw new PullError("GPG verification enabled, but no summary found (use gpg-verify-summary=false in remote config to disable)");
    if (!sig) throw new PullError("GPG verification enabled, but no summary.sig found (use gpg-verify-summary=false in remote config to disable)");
    if (!remote) throw new PullError("Must specify remote name to enable gpg verification");
    const { decodeSummarySig, GpgError, verifySummaryForRemote } = await loadGpg();
    const verify = (b: Uint8Array) => verifySummaryForRemote(repo, remote, b, decodeSummarySig(sig), { remotesConfigDir: opts.remotesConfigDir });
    try {
      await verify(bytes);
    } catch (e) {
      if (!(e instanceof GpgError)) throw e;
      // A cached summary that fails is fetched again and re-verified, as ostree does.
      if (cameFromCache) checkInvalidCacheTestError(remote);
      const fresh = cameFromCache ? await pair.summary() : null;
      if (!fresh) throw new PullError(e.message);
      try {
        await verify(fresh);
      } catch (e2) {
        if (e2 instanceof GpgError) throw new PullError(e2.message);
        throw e2;
      }
      bytes = fresh;
    }
  }
  if (opts.signVerifiers) {
    if (!bytes) throw new SignVerifyError("Signatures verification enabled, but no summary found (use sign-verify-summary=false in remote config to disable)");
    if (!sig) throw new SignVerifyError("Signature verification enabled, but no summary signatures found (use sign-verify-summary=false in remote config to disable)");
    const engines = opts.signVerifiers;
    const { decodeSummarySig } = await loadGpg();
    const verify = (b: Uint8Array) => verifyWithEngines(engines, b, decodeSummarySig(sig), "summary");
    try {
      await verify(bytes);
    } catch (e) {
      if (!(e instanceof SignVerifyError) || !cameFromCache) throw e;
      checkInvalidCacheTestError(remote);
      const fresh = await pair.summary();
      if (!fresh) throw e;
      await verify(fresh);
      bytes = fresh;
    }
  }
  if (bytes === null) return null;
  const parsed = parseSummary(bytes);
  // A cache hit that verified is left alone (ostree keeps the files, and their inodes).
  const cacheHitKept = cameFromCache && bytes === cachedBytes;
  if (cache && sig && !cacheHitKept) {
    await mkdir(join(cache.summary, ".."), { recursive: true });
    await atomicWrite(repo.tmpDir, cache.summary, bytes, false);
    await atomicWrite(repo.tmpDir, cache.sig, sig, false);
    const lm = summaryLastModified(parsed);
    if (lm !== undefined) await utimes(cache.summary, lm, lm).catch(() => {});
  } else if (cache && !sig) {
    await rm(cache.summary, { force: true });
    await rm(cache.sig, { force: true });
  }
  return { bytes, sig, parsed };
}

/** ostree's OSTREE_REPO_TEST_ERROR=invalid-cache: fail where a bad cached summary would be refetched. */
function checkInvalidCacheTestError(remote: string | null): void {
  if (testErrorFlags().has("invalid-cache")) throw new PullError(`Remote ${remote} cached summary invalid and OSTREE_REPO_TEST_ERROR_INVALID_CACHE specified`);
}

function summaryLastModified(s: ParsedSummary): number | undefined {
  const v = s.metadata.get("ostree.summary.last-modified");
  if (!v || v.type !== "t") return undefined;
  const b = new DataView(new ArrayBuffer(8));
  b.setBigUint64(0, v.value as bigint, true);
  return Number(b.getBigUint64(0, false));
}

export interface OpenedRemote {
  source: PullSource;
  remote: Remote | null;
}

/** Build the source for a remote: HTTP(S) through a pooled client, `file://` as a local repo. */
export async function openRemoteSource(repo: Repo, remoteName: string, o: PullOptions = {}): Promise<OpenedRemote> {
  const remote = await new Remotes(repo, { remotesConfigDir: o.remotesConfigDir }).get(remoteName);
  const unconfigured = remote.option("unconfigured-state");
  if (unconfigured) throw new PullError(unconfigured);
  const backend = remote.option("custom-backend");
  if (backend) throw new PullError(`Cannot fetch via libostree: remote '${remoteName}' uses custom backend '${backend}'`);
  // A `metalink` key (what `remote add NAME metalink=URL` writes) wins unless --url overrides it, as in ostree.
  const metalink = o.url === undefined ? remote.option("metalink") : undefined;
  const url = metalink ?? o.url ?? remote.url;
  const contentUrl = metalink ?? o.url ?? remote.contentUrl;
  const mirrored = metalink !== undefined || url.startsWith(MIRRORLIST_PREFIX) || contentUrl.startsWith(MIRRORLIST_PREFIX);
  if (!mirrored && url.startsWith("file://")) {
    return { source: new LocalSource(await Repo.open(decodeURIComponent(new URL(url).pathname))), remote };
  }
  if (!mirrored && !/^https?:\/\//.test(url)) {
    throw new PullError(/^[A-Za-z][A-Za-z0-9+.-]*:/.test(url) ? `Invalid URI scheme in ${url}` : `Invalid URL '${url}' for remote "${remoteName}"`);
  }
  const httpOptions: HttpOptions = {
    concurrency: o.concurrency,
    maxConcurrency: o.maxConcurrency,
    retries: o.retries,
    timeoutMs: o.timeoutMs,
    headers: o.httpHeaders,
    proxy: remote.option("proxy"),
    tlsPermissive: remote.boolean("tls-permissive", false),
    tlsCaPath: remote.option("tls-ca-path"),
    tlsClientCertPath: remote.option("tls-client-cert-path"),
    tlsClientKeyPath: remote.option("tls-client-key-path"),
    http2: remote.boolean("http2", true) && url.replace(MIRRORLIST_PREFIX, "").startsWith("https:"),
    cookies: await CookieJar.load(repo, remoteName),
    onResponse: o.onResponse,
  };
  if (mirrored) {
    const m = await openMirrored(httpOptions, { url, contentUrl, metalink });
    return { source: new HttpSource(m.http, m.url, m.contentUrl), remote };
  }
  return { source: new HttpSource(new HttpClient(httpOptions), url, contentUrl), remote };
}

/** `ostree pull REMOTE [REFS…]`. */
export async function pull(repo: Repo, remoteName: string, o: PullOptions = {}): Promise<PullResult> {
  const { source, remote } = await openRemoteSource(repo, remoteName, o);
  try {
    const gpgVerify = o.gpgVerify ?? remote!.gpgVerify;
    const gpgVerifySummary = o.gpgVerifySummary ?? remote!.gpgVerifySummary;
    const signVerifiers = await signVerifiersFromConfig(remote!, "sign-verify");
    const signVerifiersSummary = await signVerifiersFromConfig(remote!, "sign-verify-summary");
    let refs = o.refs ?? [];
    if (!refs.length && !o.mirror && !o.collectionRefs?.length) {
      refs = remote!.branches;
      if (!refs.length) throw new PullError(`No configured branches for remote ${remoteName}`);
    }
    return await runPull(repo, source, { ...o, refs }, {
      remoteName,
      gpgVerify,
      gpgVerifySummary,
      signVerifiers,
      signVerifiersSummary,
      collectionId: sourceCollectionId(source, remote!.collectionId),
      refNamespace: (ref) => (o.mirror ? { kind: "heads" } : { kind: "remote", remote: remoteName }),
    });
  } finally {
    await source.close();
  }
}

/** ostree's get_remote_repo_collection_id: bindings are checked against a local source repo's own collection ID, else the remote's; empty means none. */
function sourceCollectionId(source: PullSource, configured: string | null | undefined): string | null {
  if (source instanceof LocalSource) return source.repo.config.getString("core", "collection-id") || null;
  return configured || null;
}

export interface PullLocalOptions extends PullOptions {
  /** Write refs as `refs/remotes/<remote>/…` (`--remote`). */
  remote?: string;
}

/** `ostree pull-local SRC_REPO [REFS…]`: all refs of the source when none are given. */
export async function pullLocal(repo: Repo, srcPath: string, o: PullLocalOptions = {}): Promise<PullResult> {
  const src = await Repo.open(srcPath);
  const source = new LocalSource(src);
  let refs = o.refs ?? [];
  if (!refs.length) {
    const { listRefs } = await import("@ostree-ts/objstore");
    // Every ref, remote ones as `remote:ref` (which then fail validation, as in ostree).
    refs = (await listRefs(src, { heads: true, remotes: true })).map((r) => r.refspec);
  }
  if ((o.gpgVerify || o.gpgVerifySummary) && !o.remote) throw new PullError("Must specify --remote with --gpg-verify or --gpg-verify-summary");
  return runPull(repo, source, { ...o, refs }, {
    remoteName: null,
    gpgVerify: o.gpgVerify ?? false,
    gpgVerifySummary: o.gpgVerifySummary ?? false,
    collectionId: sourceCollectionId(source, null),
    refNamespace: () => (o.remote ? { kind: "remote", remote: o.remote } : { kind: "heads" }),
    localRefs: true,
  });
}

interface RunContext {
  remoteName: string | null;
  gpgVerify: boolean;
  gpgVerifySummary: boolean;
  signVerifiers?: SignVerifiers | null;
  signVerifiersSummary?: SignVerifiers | null;
  collectionId: string | null;
  refNamespace: (ref: string) => RefNamespace;
  /** Resolve refs from the source's refs/heads directly (pull-local). */
  localRefs?: boolean;
}

async function runPull(repo: Repo, source: PullSource, o: PullOptions, ctx: RunContext): Promise<PullResult> {
  if (o.dryRun && !o.requireStaticDeltas) throw new PullError("--dry-run requires --require-static-deltas");
  if (o.requireStaticDeltas && o.disableStaticDeltas) throw new PullError("Can't specify both --require-static-deltas and --disable-static-deltas");
  if (o.requireStaticDeltas && repo.isArchive) throw new PullError("Can't use static deltas in an archive repo");
  const targets = parseTargets(o.refs ?? []);
  for (const c of o.collectionRefs ?? []) targets.push({ ref: c.ref, pinned: c.checksum });
  const puller = new Puller(repo, source, o, ctx.remoteName, ctx.gpgVerify, ctx.collectionId, ctx.signVerifiers ?? null, ctx.gpgVerifySummary);
  await puller.openLocalcache();
  // pull.md §3 step 5: never into archive repos, not from local repos unless required, not for metadata-only pulls.
  puller.deltasDisabled =
    Boolean(o.disableStaticDeltas) || repo.isArchive || Boolean(o.commitMetadataOnly) || (source.kind === "local" && !o.requireStaticDeltas);

  // Step 2–3: the summary, when refs need resolving (or deltas need listing).
  // pull-local reads refs directly, but --gpg-verify-summary still checks the source's summary.
  let needSummary =
    (!ctx.localRefs && ((o.mirror && targets.length === 0) || targets.some((t) => t.pinned === null))) || ctx.gpgVerifySummary || Boolean(ctx.signVerifiersSummary);
  let configIndexed: boolean | undefined;
  if (!needSummary && !puller.deltasDisabled) {
    // Pinned commits only: the remote config says whether delta indexes exist; without them the summary lists deltas.
    configIndexed = (await readRemoteConfig(source))?.getBoolean("core", "indexed-deltas", false) ?? false;
    if (!configIndexed) needSummary = true;
  }
  let summary: SummaryFetch | null = null;
  if (needSummary) {
    summary = await fetchSummary(repo, source, ctx.remoteName ?? (o as PullLocalOptions).remote ?? null, {
      gpgVerifySummary: ctx.gpgVerifySummary,
      signVerifiers: ctx.signVerifiersSummary,
      remotesConfigDir: o.remotesConfigDir,
      cacheDir: o.cacheDir,
    });
    let configChecked: Promise<void> | null = null;
    if (summary && source.kind === "http") {
      // 2022.7 fetches `config` when the summary records the remote's mode.
      if (summaryString(summary.parsed, "ostree.summary.mode") !== undefined && summaryBoolean(summary.parsed, "ostree.summary.tombstone-commits") !== undefined) {
        configChecked = checkRemoteConfig(source);
        configChecked.catch(() => undefined);
      }
    }
    // Nothing below needs `config`'s answer: the delta indexes go out beside it (waiting for it
    // cost a round trip plus this thread's work in between); its error still comes first.
    if (summary && source instanceof HttpSource && !puller.deltasDisabled) prefetchDeltaIndexes(source, summary.parsed, targets);
    await configChecked;
  }
  if (o.mirror && targets.length === 0) {
    if (!summary) throw new PullError("Fetching all refs was requested in mirror mode, but remote repository does not have a summary");
    for (const ref of summary.parsed.refs.keys()) targets.push({ ref, pinned: null });
  }

  // A mirror pull writes (collection, ref): refs/mirrors/COLLECTION/ref unless it is this repo's own collection
  // (ostree_repo_transaction_set_collection_ref); refs resolved from the summary take its collection ID.
  const refNamespace = o.mirror ? mirrorNamespaces(repo, o.collectionRefs ?? [], summary ? summaryString(summary.parsed, "ostree.summary.collection-id") : undefined, ctx.refNamespace) : ctx.refNamespace;
  if (summary) {
    for (const [name, digest] of summary.parsed.deltas) puller.deltaTable.set(name, digest);
    puller.summaryHasDeltas = summary.parsed.deltas.size > 0;
  }
  puller.indexedDeltas = (summary ? summaryBoolean(summary.parsed, "ostree.summary.indexed-deltas") : undefined) ?? configIndexed ?? false;
  if (o.requireStaticDeltas && !puller.indexedDeltas && !puller.summaryHasDeltas) {
    throw new PullError("Fetch configured to require static deltas, but no summary deltas or delta index found");
  }

  // Step 4: resolve every target to a commit.
  puller.progress.phase = "resolving";
  const resolved: Array<{ ref: string | null; checksum: string }> = [];
  for (const t of targets) {
    if (t.pinned) {
      resolved.push({ ref: t.ref, checksum: t.pinned });
      continue;
    }
    const ref = t.ref!;
    let checksum: string | undefined;
    if (summary) {
      checksum = summary.parsed.refs.get(ref)?.checksum;
      if (!checksum) throw new PullError(`No such branch '${ref}' in repository summary`);
    } else {
      const body = await source.getFile("meta", `refs/heads/${ref}`);
      if (body === null) {
        throw new PullError(source.kind === "http" ? "Server returned HTTP 404" : `Refspec '${ref}' not found`);
      }
      checksum = Buffer.from(body).toString("utf8").trimEnd();
      if (!isChecksum(checksum)) {
        // ostree's text: the collection (none here), the ref, then the first 80 bytes with control characters blanked.
        const shown = checksum.slice(0, 80).replace(/[\x00-\x1f\x7f]/g, " ");
        throw new PullError(`Fetching checksum for ref ((empty), ${ref}): Invalid rev ${shown}`);
      }
    }
    resolved.push({ ref, checksum });
  }

  // Timestamp check before anything is written.
  const previous = new Map<string, string | null>();
  for (const r of resolved) {
    if (r.ref === null) continue;
    previous.set(r.ref, await readRef(repo, refNamespace(r.ref), r.ref));
  }

  puller.progress.phase = "fetching";
  puller.emit(true);
  const depth = o.depth ?? 0;
  await withRepoLock(repo, "shared", async () => {
    try {
      await settleAll(
        resolved.map(async (r) => {
          // The delta FROM is the ref's local value (`remote:ref` for remotes), as ostree resolves it.
          const ns: RefNamespace | null = r.ref === null ? null : ctx.remoteName ? { kind: "remote", remote: ctx.remoteName } : refNamespace(r.ref);
          const from = ns ? await readRef(repo, ns, r.ref!) : null;
          await puller.pullTarget(r.checksum, r.ref, from, depth);
        }),
      );
    } finally {
      await puller.close();
    }
  });

  if ((o.timestampCheck || o.timestampCheckFromRev) && !o.dryRun) {
    // --timestamp-check-from-rev compares against that local commit instead of the ref's current one.
    const fromRev = o.timestampCheckFromRev ? await resolveRev(repo, o.timestampCheckFromRev) : null;
    for (const r of resolved) {
      const prev = fromRev ?? (r.ref === null ? null : previous.get(r.ref));
      if (!prev || prev === r.checksum) continue;
      const [a, b] = [await repo.readCommit(prev).catch(() => null), await repo.readCommit(r.checksum)];
      if (a && b.timestamp < a.timestamp) {
        throw new PullError(
          `Upgrade target revision '${r.checksum}' with timestamp '${isoUtc(b.timestamp)}' is chronologically older than current revision '${prev}' with timestamp '${isoUtc(a.timestamp)}'; use --allow-downgrade to permit`,
        );
      }
    }
  }

  // Step 9: refs last, each one atomically.
  puller.progress.phase = "refs";
  const pulled: PulledRef[] = [];
  for (const r of resolved) {
    if (r.ref === null) continue;
    const prev = previous.get(r.ref) ?? null;
    if (!o.dryRun && prev !== r.checksum) await setRef(repo, refNamespace(r.ref), r.ref, r.checksum, { fsync: o.fsync });
    pulled.push({ ref: r.ref, checksum: r.checksum, previous: prev });
  }
  if (o.mirror && summary && !o.dryRun && (o.refs ?? []).length === 0 && (o.collectionRefs ?? []).length === 0) {
    await atomicWrite(repo.tmpDir, join(repo.path, "summary"), summary.bytes, false);
    if (summary.sig) await atomicWrite(repo.tmpDir, join(repo.path, "summary.sig"), summary.sig, false);
    else await rm(join(repo.path, "summary.sig"), { force: true });
  }
  puller.progress.phase = "done";
  puller.emit(true);
  puller.progress.elapsedMs = Date.now() - puller.started;
  puller.syncBytes();
  return {
    refs: pulled,
    commits: resolved.map((r) => r.checksum),
    progress: { ...puller.progress },
    deltaParts: puller.deltaParts,
    deltaTotals: { ...puller.deltaTotals },
    requests: source instanceof HttpSource ? source.http.requests : 0,
    inFlightLimit: source instanceof HttpSource ? source.http.limit.current : 0,
    storedOnThread: puller.storedOnThread,
    dryRun: Boolean(o.dryRun),
  };
}

function mirrorNamespaces(
  repo: Repo,
  collectionRefs: NonNullable<PullOptions["collectionRefs"]>,
  summaryCollection: string | undefined,
  fallback: (ref: string) => RefNamespace,
): (ref: string) => RefNamespace {
  const own = repo.config.getString("core", "collection-id") || null;
  const byRef = new Map(collectionRefs.map((c) => [c.ref, c.collectionId]));
  return (ref) => {
    const cid = byRef.get(ref) ?? summaryCollection;
    if (!cid) return fallback(ref);
    return cid === own ? { kind: "heads" } : { kind: "mirror", collectionId: cid };
  };
}

/**
 * The delta index of each target the summary resolves, when the summary says
 * indexes exist: doPullTarget asks for each of them first, so they can be on
 * the wire while the rest of the summary's answer is worked out.
 */
function prefetchDeltaIndexes(source: HttpSource, summary: ParsedSummary, targets: Target[]): void {
  if (summaryBoolean(summary, "ostree.summary.indexed-deltas") !== true) return;
  for (const t of targets) {
    const checksum = t.pinned ?? summary.refs.get(t.ref!)?.checksum;
    if (checksum !== undefined) source.prefetch("content", deltaIndexPath(checksum));
  }
}

async function readRemoteConfig(source: PullSource): Promise<KeyFile | null> {
  const bytes = await source.getFile("meta", "config");
  return bytes ? KeyFile.parse(Buffer.from(bytes).toString("utf8"), "remote config") : null;
}

/** The remote's `config` must say archive mode (pull.md §2 B). */
async function checkRemoteConfig(source: PullSource): Promise<void> {
  const kf = await readRemoteConfig(source);
  if (!kf) return;
  const mode = kf.getString("core", "mode") ?? "bare";
  if (mode !== "archive-z2" && mode !== "archive") throw new PullError(`Can't pull from archives with mode "${mode}"`);
}

function isoUtc(secs: number): string {
  return new Date(secs * 1000).toISOString().replace(/\.000Z$/, "Z");
}

