/**
 * The static-delta generator (`ostree static-delta generate`, deltas.md §6).
 *
 * Same format and program shapes as ostree 2022.7; the differences are in the
 * choices: similar-file matching also follows versioned renames and skips
 * compressed payloads (matching.ts), rollsum keys chunks by their own bytes
 * (ostree keys by the file's prefix, a bug that misses most moved chunks),
 * bsdiff is refused beyond a memory budget instead of risking the machine,
 * and parts are xz-compressed in parallel while later parts are still being
 * built. Every object's cost is recorded for `explain`.
 */
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { mkdir, mkdtemp, rename, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { deflateRawSync } from "node:zlib";
import { variant } from "@ostree-ts/gvariant";
import { mapLimit, ObjectType, type FileMeta, type Repo } from "@ostree-ts/objstore";
import { bsdiffMemoryEstimate } from "./bsdiff.js";
import { readOfft } from "./bspatch.js";
import { readContentInfo, readPayload } from "./read-payload.js";
import { BsdiffPool, BsdiffWorkerLostError } from "./bsdiff-pool.js";
import { CompressionPool, type CompressionKind, type XzPreset } from "./compress.js";
import { DeltaError } from "./errors.js";
import { isCompressedData, matchFiles, type FileMatch, type TreeFile } from "./matching.js";
import { commitmetaKey, deltaDirPath, deltaName, partPath } from "./naming.js";
import { encodePartPayloadChunks, OP_BSPATCH, OP_CLOSE, OP_OPEN, OP_OPEN_SPLICE_AND_CLOSE, OP_SET_READ_SOURCE, OP_UNSET_READ_SOURCE, OP_WRITE, OpWriter, partFileBytes, sha256Hex, type ModeEntry, type XattrSet } from "./part.js";
import { computeRollsumMatches, rollsumPlan, type RollsumMatch } from "./rollsum.js";
import { DELTAPART_VERSION, encodeSuperblock, endiannessEntry, type DeltaObject, type Endianness, type FallbackEntry, type MetadataEntries, type PartHeader } from "./superblock.js";

const MB = 1000 * 1000;

/** Compressed payloads up to this size (bytes) may be bsdiff'ed when rollsum finds nothing. */
const COMPRESSED_BSDIFF_MAX = 1024 * 1024;

export interface GenerateOptions {
  /** FROM commit, or null for a scratch (`--empty`) delta. */
  from: string | null;
  to: string;
  /** `--min-fallback-size` in MB (1e6); 0 disables fallbacks. Default 4. */
  minFallbackSize?: number;
  /** `--max-bsdiff-size` in MB: limit on from+to size. Default 128. */
  maxBsdiffSize?: number;
  /** `--max-chunk-size` in MB per part blob. Default 32. */
  maxChunkSize?: number;
  /** `--disable-bsdiff` = false. */
  bsdiff?: boolean;
  /** `--inline`: parts stored in the superblock metadata. */
  inline?: boolean;
  /** `--filename`: superblock written here, parts beside it. */
  filename?: string;
  /** Byte order of the non-canonical integers (default host: 'l'). */
  endianness?: Endianness;
  /** User metadata placed first in the superblock's a{sv}. */
  metadata?: MetadataEntries;
  /** "extended" (default) or "ostree" (ostree's matching rules and rollsum keying, for comparisons). */
  matching?: "ostree" | "extended";
  /** Part compression (default xz, as ostree). */
  compression?: CompressionKind;
  /**
   * xz preset: "-8" = ostree's settings (the default with `matching: "ostree"`); "auto" (the
   * default otherwise) = "-8n" for parts that are mostly bsdiff patches (≈ 7 % smaller there,
   * ≈ 2.5× the xz CPU), "-8" for the others, where the longer match search gains < 1 %.
   */
  xzPreset?: XzPreset | "auto";
  /** bsdiff worker threads (default min(4, cores)). */
  bsdiffConcurrency?: number;
  /** Concurrent xz processes (default min(4, cores)). */
  compressionConcurrency?: number;
  /** bsdiff is skipped for a pair whose working memory would exceed this (bytes, default 2 GiB). */
  bsdiffMemoryBudget?: number;
  /**
   * New files at least this large (bytes, default 4 MiB) are bsdiff'ed as soon as they are
   * matched and their patches go last, in their own part, so one long diff (a kernel image)
   * overlaps the others instead of stalling the in-order stream.
   */
  earlyBsdiffSize?: number;
  /** Generation timestamp (seconds); default now. */
  timestamp?: number;
  /** ostree's verbose lines (it prints them on stderr). */
  log?: (line: string) => void;
  /** Weigh each object's share of its compressed part by a quick deflate of its bytes (slower, better `explain` costs). */
  explain?: boolean;
}

export type Strategy = "metadata" | "new" | "symlink" | "rollsum" | "bsdiff" | "fallback";

export interface ExplainEntry {
  /** First path of the object in TO ("" for metadata not tied to a path). */
  path: string;
  checksum: string;
  objectType: string;
  strategy: Strategy;
  /** Uncompressed object size. */
  size: number;
  /** Bytes the object adds to its part's blob (before compression). */
  blobBytes: number;
  /** Estimated bytes on the wire: blob share of the compressed part, or the fallback object size. */
  cost: number;
  part: number | null;
  fromPath?: string;
  matchReason?: string;
  /** rollsum: bytes copied from the old file. */
  reusedBytes?: number;
}

export interface GenerateResult {
  name: string;
  from: string | null;
  to: string;
  superblockPath: string;
  superblockSize: number;
  parts: Array<{ size: number; usize: number; objects: number }>;
  fallbacks: FallbackEntry[];
  explain: ExplainEntry[];
  stats: { rollsum: number; rollsumBytes: number; bsdiff: number; matches: number; seconds: number };
}

export class DeltaGenerateError extends DeltaError {
  override name = "DeltaGenerateError";
}

type Weighted = ExplainEntry & { weight: number };

function compareStr(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Sort key grouping similar files: extension, basename, then the path. */
function groupKey(path: string): string {
  const base = path.slice(path.lastIndexOf("/") + 1);
  const dot = base.indexOf(".", 1);
  return `${dot > 0 ? base.slice(dot) : ""}\0${base}\0${path}`;
}

/**
 * Bytes of a bsdiff patch that are not zero diff bytes: its "extra" bytes plus the diff
 * bytes where new and old differ. A patch with few of them compresses far below its file.
 */
function patchLiteralBytes(patch: Uint8Array): number {
  let n = 0;
  for (let at = 0; at + 24 <= patch.length; ) {
    const x = readOfft(patch, at);
    const y = readOfft(patch, at + 8);
    at += 24;
    const end = Math.min(patch.length, at + x);
    for (let i = at; i < end; i++) if (patch[i] !== 0) n++;
    n += y;
    at += x + y;
  }
  return n;
}

function deflatedSize(b: Uint8Array): number {
  return deflateRawSync(b, { level: 1 }).length;
}

interface ContentInfo extends TreeFile {
  uid: number;
  gid: number;
}

/** Walks a commit: every metadata object (walk order) and every file path. */
async function walkCommit(repo: Repo, commit: string): Promise<{ meta: Array<{ type: ObjectType; checksum: string; path: string }>; files: Array<{ path: string; checksum: string }> }> {
  const c = await repo.readCommit(commit);
  const meta: Array<{ type: ObjectType; checksum: string; path: string }> = [];
  const files: Array<{ path: string; checksum: string }> = [];
  const seen = new Set<string>();
  const addMeta = (type: ObjectType, checksum: string, path: string) => {
    const k = `${checksum}.${type}`;
    if (seen.has(k)) return false;
    seen.add(k);
    meta.push({ type, checksum, path });
    return true;
  };
  const walk = async (tree: string, metaCsum: string, path: string): Promise<void> => {
    addMeta(ObjectType.DirMeta, metaCsum, path || "/");
    const fresh = addMeta(ObjectType.DirTree, tree, path || "/");
    const t = await repo.readDirTree(tree);
    for (const f of t.files) files.push({ path: `${path}/${f.name}`, checksum: f.checksum });
    if (!fresh) {
      // Shared subtree: its objects are known, but its paths still matter for matching.
      for (const d of t.dirs) await walkPathsOnly(d.tree, `${path}/${d.name}`);
      return;
    }
    for (const d of t.dirs) await walk(d.tree, d.meta, `${path}/${d.name}`);
  };
  const walkPathsOnly = async (tree: string, path: string): Promise<void> => {
    const t = await repo.readDirTree(tree);
    for (const f of t.files) files.push({ path: `${path}/${f.name}`, checksum: f.checksum });
    for (const d of t.dirs) await walkPathsOnly(d.tree, `${path}/${d.name}`);
  };
  await walk(c.rootTree, c.rootMeta, "");
  return { meta, files };
}

async function contentInfos(repo: Repo, files: Array<{ path: string; checksum: string }>, cache: Map<string, { meta: FileMeta; size: number }>): Promise<ContentInfo[]> {
  const unique = [...new Set(files.map((f) => f.checksum))].filter((c) => !cache.has(c));
  await mapLimit(unique, 16, async (c) => {
    cache.set(c, await readContentInfo(repo, c));
  });
  return files.map((f) => {
    const { meta, size } = cache.get(f.checksum)!;
    return { path: f.path, checksum: f.checksum, size, mode: meta.mode, uid: meta.uid, gid: meta.gid };
  });
}

/** Accumulates one part: mode/xattr tables, blob, program, object list. */
class PartBuilder {
  readonly modes: ModeEntry[] = [];
  readonly xattrs: XattrSet[] = [];
  private readonly modeIdx = new Map<string, number>();
  private readonly xattrIdx = new Map<string, number>();
  private readonly chunks: Uint8Array[] = [];
  blobLen = 0;
  /** Blob bytes that are bsdiff patches of files below `earlyBsdiffSize`. */
  patchBytes = 0;
  readonly ops = new OpWriter();
  readonly objects: DeltaObject[] = [];
  usize = 0;

  /** Blob bytes appended since offset `from` (for explain weights). */
  blobSlice(from: number): Uint8Array {
    const out: Uint8Array[] = [];
    let at = 0;
    for (const c of this.chunks) {
      const end = at + c.length;
      if (end > from) out.push(c.subarray(Math.max(0, from - at)));
      at = end;
    }
    return Buffer.concat(out);
  }

  append(b: Uint8Array): number {
    const off = this.blobLen;
    this.chunks.push(b);
    this.blobLen += b.length;
    return off;
  }

  modeIndex(m: FileMeta): number {
    const key = `${m.uid}:${m.gid}:${m.mode}`;
    let i = this.modeIdx.get(key);
    if (i === undefined) {
      i = this.modes.length;
      this.modes.push({ uid: m.uid, gid: m.gid, mode: m.mode });
      this.modeIdx.set(key, i);
    }
    return i;
  }

  xattrIndex(m: FileMeta): number {
    const key = JSON.stringify(m.xattrs.map(([n, v]) => [n, Buffer.from(v).toString("base64")]));
    let i = this.xattrIdx.get(key);
    if (i === undefined) {
      i = this.xattrs.length;
      this.xattrs.push(m.xattrs.map(([n, v]) => [n, v] as const));
      this.xattrIdx.set(key, i);
    }
    return i;
  }

  /** The encoded payload; the blob chunks are released (a sealed part keeps only its header data). */
  payload(): Uint8Array {
    const out = encodePartPayloadChunks({ modes: this.modes, xattrs: this.xattrs, blobChunks: this.chunks, ops: this.ops.finish() });
    this.chunks.length = 0;
    return out;
  }
}

function bin(hex: string): Uint8Array {
  return new Uint8Array(Buffer.from(hex, "hex"));
}

async function atomicWriteFile(dir: string, name: string, data: Uint8Array): Promise<void> {
  const tmp = join(dir, `.tmp-${name}-${randomBytes(6).toString("hex")}`);
  try {
      await writeFile(tmp, data, { mode: 0o644 });
      await rename(tmp, join(dir, name));
  } finally {
    await rm(tmp, { force: true });
  }
}

/**
 * Generates a delta FROM→TO (or from scratch) and writes it. Sealed xz parts wait for their
 * compressor in a temporary directory, not in memory (when xz is slower than part building,
 * e.g. on a loaded machine, several 32 MB payloads would otherwise pile up).
 */
export async function generateDelta(repo: Repo, options: GenerateOptions): Promise<GenerateResult> {
  const spool = await mkdtemp(join(tmpdir(), "ostree-ts-delta-"));
  try {
    return await generateWithSpool(repo, options, spool);
  } finally {
    await rm(spool, { recursive: true, force: true });
  }
}

async function generateWithSpool(repo: Repo, options: GenerateOptions, spool: string): Promise<GenerateResult> {
  const t0 = performance.now();
  const { from, to } = options;
  const log = options.log ?? (() => undefined);
  const minFallback = (options.minFallbackSize ?? 4) * MB;
  const maxBsdiff = (options.maxBsdiffSize ?? 128) * MB;
  const maxChunk = (options.maxChunkSize ?? 32) * MB;
  const useBsdiff = options.bsdiff ?? true;
  const extended = (options.matching ?? "extended") === "extended";
  const budget = options.bsdiffMemoryBudget ?? 2 * 1024 ** 3;
  const bigBsdiff = options.earlyBsdiffSize ?? 4 * 1024 * 1024;
  const kind = options.compression ?? "xz";
  const endianness = options.endianness ?? "l";
  const pool = new CompressionPool(options.compressionConcurrency);
  const xzPreset = options.xzPreset ?? (extended ? "auto" : "-8");
  const presetFor = (p: PartBuilder): XzPreset => (xzPreset !== "auto" ? xzPreset : p.patchBytes * 2 > p.blobLen ? "-8n" : "-8");

  const commitBytes = await repo.loadMetadataBytes(ObjectType.Commit, to);
  const toWalk = await walkCommit(repo, to);
  const fromWalk = from === null ? null : await walkCommit(repo, from);
  const fromMeta = new Set(fromWalk?.meta.map((m) => `${m.checksum}.${m.type}`) ?? []);
  const fromContent = new Set(fromWalk?.files.map((f) => f.checksum) ?? []);

  const newMeta = toWalk.meta.filter((m) => !fromMeta.has(`${m.checksum}.${m.type}`));
  const infoCache = new Map<string, { meta: FileMeta; size: number }>();
  const seenNew = new Set<string>();
  const newFileRefs = toWalk.files.filter((f) => {
    if (fromContent.has(f.checksum) || seenNew.has(f.checksum)) return false;
    seenNew.add(f.checksum);
    return true;
  });
  const newFiles = await contentInfos(repo, newFileRefs, infoCache);
  const newRegular = newFiles.filter((f) => (f.mode & 0o170000) === 0o100000);
  const newSymlinks = newFiles.filter((f) => (f.mode & 0o170000) !== 0o100000);

  let matches: FileMatch[] = [];
  if (fromWalk) {
    const fromFiles = await contentInfos(repo, fromWalk.files, infoCache);
    matches = matchFiles(fromFiles.filter((f) => (f.mode & 0o170000) === 0o100000), newRegular, { mode: options.matching });
  }
  log(`modified: ${matches.length}`);
  log(`new reachable: metadata=${newMeta.length + 1} content regular=${newRegular.length} symlink=${newSymlinks.length}`);

  const readData = (checksum: string) => readPayload(repo, checksum);

  // Patches are computed on a worker pool while the main thread decides, builds parts and
  // hands them to xz. Large pairs (vmlinuz: ~20 s of bsdiff) start as soon as they are
  // decided and are emitted after the other patches, so they never stall the in-order stream.
  // The inputs are transferred to the worker, so the main thread holds no copy of a pair while
  // it is diffed; if the worker dies with them, they are read again and diffed here.
  const bpool = new BsdiffPool({ memoryBudget: budget, concurrency: options.bsdiffConcurrency });
  type Diffed = { patch: Uint8Array };
  const runDiff = (m: FileMatch, a: Uint8Array, b: Uint8Array): Promise<Diffed> => {
    const p = bpool.diff(a, b, { transfer: true }).then(
      (patch) => ({ patch }),
      async (e: unknown) => {
        if (!(e instanceof BsdiffWorkerLostError)) throw e;
        const [a2, b2] = await Promise.all([readData(m.from.checksum), readData(m.to.checksum)]);
        return { patch: await bpool.diff(a2, b2) };
      },
    );
    p.catch(() => undefined);
    return p;
  };

  // Decide rollsum vs bsdiff per match (ostree: rollsum when ≥ 50 % of chunks match).
  // `pre`: a patch started during the decisions, while a worker had nothing else to do.
  type Planned = { match: FileMatch; rollsum?: RollsumMatch[]; reused?: number; early?: Promise<Diffed>; pre?: Promise<Diffed> };
  const rollsums: Planned[] = [];
  const bsdiffs: Planned[] = [];
  const matchedNew = new Set<string>();
  // The decisions read every pair anyway; a worker left idle by them gets the pair in hand
  // instead of it being read again later. Those patches wait for the in-order stream, so
  // their total (≈ the new files' sizes) is capped.
  const prestartCap = 32 * 1024 * 1024;
  let prestarted = 0;
  // The next pair is read (and inflated, on the threadpool) while this one is decided.
  const readPair = (m: FileMatch) => {
    const p = Promise.all([readData(m.from.checksum), readData(m.to.checksum)]);
    p.catch(() => undefined);
    return p;
  };
  let nextPair = matches.length > 0 ? readPair(matches[0]!) : null;
  for (let i = 0; i < matches.length; i++) {
    const m = matches[i]!;
    const [a, b] = await nextPair!;
    nextPair = i + 1 < matches.length ? readPair(matches[i + 1]!) : null;
    // Payloads compressed under an uninformative name (e.g. initramfs.img) are recognised by their magic.
    const compressed = m.compressed || (extended && (isCompressedData(a) || isCompressedData(b)));
    const r = computeRollsumMatches(a, b, { keying: extended ? "content" : "ostree" });
    // Compressed payloads share only byte-identical runs with their old version. Rollsum finds
    // those in large files; in small ones (man pages, changelogs) its ~8 KiB chunks miss the
    // shared head (a gzip stream is identical up to the first changed byte), which bsdiff finds
    // cheaply; a patch that does not beat the whole file is dropped when it is emitted.
    const canBsdiff = (!compressed || m.to.size <= COMPRESSED_BSDIFF_MAX) && useBsdiff && m.from.size + m.to.size <= maxBsdiff && bsdiffMemoryEstimate(m.from.size, m.to.size) <= budget;
    // ostree takes rollsum whenever half the chunks match; the literal rest can
    // still be most of the file, which bsdiff would shrink to a few bytes.
    // Compressed payloads: any identical chunk is a gain.
    const rollsumGood = compressed ? r.matchSize > 0 : r.worthwhile && (!extended || !canBsdiff || b.length - r.matchSize <= b.length / 8);
    if (rollsumGood) {
      log(`rollsum for ${m.from.checksum} -> ${m.to.checksum}; crcs=${r.crcMatches} bufs=${r.bufMatches} total=${r.total} matchsize=${r.matchSize}`);
      rollsums.push({ match: m, rollsum: r.matches, reused: r.matchSize });
      matchedNew.add(m.to.checksum);
    } else if (canBsdiff) {
      const big = extended && m.to.size >= bigBsdiff;
      const pre = !big && prestarted + m.to.size <= prestartCap && bpool.busy < bpool.concurrency;
      if (pre) prestarted += m.to.size;
      bsdiffs.push({ match: m, early: big ? runDiff(m, a, b) : undefined, pre: pre ? runDiff(m, a, b) : undefined });
      matchedNew.add(m.to.checksum);
    }
  }
  log(`rollsum for ${rollsums.length}/${matches.length} modified`);

  const parts: PartBuilder[] = [];
  const explain: Weighted[] = [];
  const compressed: Array<Promise<Uint8Array>> = [];
  let cur = new PartBuilder();
  const seal = () => {
    const done = cur;
    parts.push(done);
    const idx = parts.length;
    let input: Uint8Array | { path: string } = done.payload();
    if (kind !== "none") {
      const path = join(spool, String(idx));
      writeFileSync(path, input);
      input = { path };
    }
    const p = pool.compress(input, kind, presetFor(done)).then((c) => {
      log(`part ${idx} n:${done.objects.length} compressed:${c.length + 1} uncompressed:${done.usize}`);
      return partFileBytes(kind, c);
    });
    // Surface errors when awaited below, not as unhandled rejections.
    p.catch(() => undefined);
    compressed.push(p);
    cur = new PartBuilder();
  };
  const room = (plainSize: number | null) => {
    if (cur.objects.length === 0) return;
    if (plainSize === null ? cur.blobLen > maxChunk : cur.blobLen + plainSize > maxChunk) seal();
  };
  // Weight for sharing a compressed part among its objects: blob bytes, or their deflated size with `explain`.
  const entry = (e: Omit<ExplainEntry, "cost" | "part">, bytes: () => Uint8Array) =>
    explain.push({ ...e, cost: 0, part: parts.length, weight: options.explain ? deflatedSize(bytes()) : e.blobBytes });

  // 1. metadata
  for (const m of newMeta) {
    const bytes = await repo.loadMetadataBytes(m.type, m.checksum);
    room(bytes.length);
    const off = cur.append(bytes);
    cur.ops.op(OP_OPEN_SPLICE_AND_CLOSE, bytes.length, off);
    cur.objects.push({ type: m.type, checksum: m.checksum });
    cur.usize += bytes.length;
    entry({ path: m.path, checksum: m.checksum, objectType: m.type === ObjectType.DirTree ? "dirtree" : "dirmeta", strategy: "metadata", size: bytes.length, blobBytes: bytes.length }, () => bytes);
  }

  // 2. rollsum
  let rollsumBytes = 0;
  for (const { match, rollsum, reused } of rollsums) {
    room(null);
    const meta = infoCache.get(match.to.checksum)!.meta;
    const data = await readData(match.to.checksum);
    const start = cur.blobLen;
    cur.ops.op(OP_OPEN, cur.modeIndex(meta), cur.xattrIndex(meta), data.length);
    const srcOff = cur.append(bin(match.from.checksum));
    let reading = false;
    for (const seg of rollsumPlan(rollsum!, data.length)) {
      if (seg.kind === "copy") {
        if (!reading) cur.ops.op(OP_SET_READ_SOURCE, srcOff);
        reading = true;
        cur.ops.op(OP_WRITE, seg.length, seg.fromStart);
      } else {
        if (reading) cur.ops.op(OP_UNSET_READ_SOURCE);
        reading = false;
        const off = cur.append(data.subarray(seg.toStart, seg.toStart + seg.length));
        cur.ops.op(OP_WRITE, seg.length, off);
      }
    }
    if (reading) cur.ops.op(OP_UNSET_READ_SOURCE);
    cur.ops.op(OP_CLOSE);
    cur.objects.push({ type: ObjectType.File, checksum: match.to.checksum });
    cur.usize += data.length;
    rollsumBytes += reused!;
    entry({ path: match.to.path, checksum: match.to.checksum, objectType: "file", strategy: "rollsum", size: data.length, blobBytes: cur.blobLen - start, fromPath: match.from.path, matchReason: match.reason, reusedBytes: reused }, () => cur.blobSlice(start));
  }

  // 4. plain regular files, or fallbacks. Similar files side by side (same extension, then
  // same name) give xz's window more to match. With extended matching the unmatched ones go
  // before the patches, so their part is compressed while bsdiff runs; files whose patch is
  // dropped follow the patches.
  const fallbacks: FallbackEntry[] = [];
  const plain = extended ? [...newRegular].sort((x, y) => compareStr(groupKey(x.path), groupKey(y.path))) : newRegular;
  const plainDone = new Set<string>();
  const emitPlain = async () => {
    for (const f of plain) {
      if (matchedNew.has(f.checksum) || plainDone.has(f.checksum)) continue;
      plainDone.add(f.checksum);
      if (minFallback > 0 && f.size > minFallback) {
        const st = await stat(repo.objectPath(f.checksum, ObjectType.File));
        fallbacks.push({ type: ObjectType.File, checksum: f.checksum, size: st.size, usize: f.size });
        explain.push({ path: f.path, checksum: f.checksum, objectType: "file", strategy: "fallback", size: f.size, blobBytes: 0, cost: st.size, part: null, weight: 0 });
        continue;
      }
      room(f.size);
      const meta = infoCache.get(f.checksum)!.meta;
      const data = await readData(f.checksum);
      const off = cur.append(data);
      cur.ops.op(OP_OPEN_SPLICE_AND_CLOSE, cur.modeIndex(meta), cur.xattrIndex(meta), data.length, off);
      cur.objects.push({ type: ObjectType.File, checksum: f.checksum });
      cur.usize += data.length;
      entry({ path: f.path, checksum: f.checksum, objectType: "file", strategy: "new", size: data.length, blobBytes: data.length }, () => data);
    }
  };
  if (extended) await emitPlain();

  // 3. bsdiff: small patches in match order, a window ahead of the part being built; the
  // large ones (started early) last, in match order too, so the output is deterministic.
  let nBsdiff = 0;
  let judged = 0;
  let dropped = 0;
  const emitBsdiff = async ({ match }: Planned, { patch }: Diffed) => {
    // A patch between unrelated versions is mostly "extra" bytes plus noise and
    // compresses worse than the file itself; send such files whole. Only a patch with
    // many literal bytes can lose, so only those pay for re-reading and deflating.
    if (extended && patchLiteralBytes(patch) * 8 > match.to.size) {
      judged++;
      if (deflatedSize(patch) >= deflatedSize(await readData(match.to.checksum))) {
        dropped++;
        matchedNew.delete(match.to.checksum);
        return;
      }
    }
    nBsdiff++;
    room(null);
    const meta = infoCache.get(match.to.checksum)!.meta;
    const start = cur.blobLen;
    const srcOff = cur.append(bin(match.from.checksum));
    cur.ops.op(OP_SET_READ_SOURCE, srcOff);
    cur.ops.op(OP_OPEN, cur.modeIndex(meta), cur.xattrIndex(meta), match.to.size);
    const off = cur.append(patch);
    // Large patches (a compressed kernel image) gain nothing from the longer match search.
    if (match.to.size < bigBsdiff) cur.patchBytes += patch.length;
    cur.ops.op(OP_BSPATCH, off, patch.length);
    cur.ops.op(OP_CLOSE);
    cur.ops.op(OP_UNSET_READ_SOURCE);
    cur.objects.push({ type: ObjectType.File, checksum: match.to.checksum });
    cur.usize += match.to.size;
    entry({ path: match.to.path, checksum: match.to.checksum, objectType: "file", strategy: "bsdiff", size: match.to.size, blobBytes: cur.blobLen - start, fromPath: match.from.path, matchReason: match.reason }, () => patch);
  };
  const inOrder = bsdiffs.filter((p) => !p.early);
  const late = bsdiffs.filter((p) => p.early);
  const ahead: Array<Promise<Diffed>> = [];
  const startDiff = (i: number) => {
    const planned = inOrder[i]!;
    const { match } = planned;
    const p = planned.pre ?? Promise.all([readData(match.from.checksum), readData(match.to.checksum)]).then(([a, b]) => runDiff(match, a, b));
    planned.pre = undefined;
    p.catch(() => undefined);
    ahead[i] = p;
  };
  const window = bpool.concurrency * 2;
  try {
    for (let i = 0; i < inOrder.length; i++) {
      log(`processing bsdiff: [${i}/${bsdiffs.length}]`);
      for (let j = i; j < Math.min(inOrder.length, i + window); j++) if (!ahead[j]) startDiff(j);
      const d = await ahead[i]!;
      delete ahead[i];
      await emitBsdiff(inOrder[i]!, d);
    }
    // The large patches get their own part(s): compressed beside the previous one, not after it.
    if (late.length > 0 && cur.objects.length > 0) seal();
    for (const [k, p] of late.entries()) {
      log(`processing bsdiff: [${inOrder.length + k}/${bsdiffs.length}]`);
      await emitBsdiff(p, await p.early!);
      p.early = undefined;
    }
  } finally {
    if (bpool.failure) log(`bsdiff workers unavailable, ran on the main thread: ${bpool.failure}`);
    await bpool.close();
  }
  await emitPlain();

  // 5. symlinks
  for (const f of newSymlinks) {
    const meta = infoCache.get(f.checksum)!.meta;
    const target = new TextEncoder().encode(meta.symlinkTarget);
    room(target.length);
    const off = cur.append(target);
    cur.ops.op(OP_OPEN_SPLICE_AND_CLOSE, cur.modeIndex(meta), cur.xattrIndex(meta), target.length, off);
    cur.objects.push({ type: ObjectType.File, checksum: f.checksum });
    entry({ path: f.path, checksum: f.checksum, objectType: "file", strategy: "symlink", size: 0, blobBytes: target.length }, () => target);
  }
  if (cur.objects.length > 0 || parts.length === 0) seal();

  const files = await Promise.all(compressed);
  const headers: PartHeader[] = parts.map((p, i) => ({
    version: DELTAPART_VERSION,
    checksum: sha256Hex(files[i]!),
    size: files[i]!.length,
    usize: p.usize,
    objects: p.objects,
  }));
  const weightSum = new Map<number, number>();
  for (const e of explain) if (e.part !== null) weightSum.set(e.part, (weightSum.get(e.part) ?? 0) + e.weight);
  for (const e of explain) {
    if (e.part === null) continue;
    const sum = weightSum.get(e.part)!;
    e.cost = sum === 0 ? 0 : Math.round((e.weight * files[e.part]!.length) / sum);
  }
  for (const e of explain) delete (e as Partial<Weighted>).weight;

  // Superblock metadata, in ostree's order.
  const metadata: MetadataEntries = [...(options.metadata ?? []), endiannessEntry(endianness)];
  if (options.inline) {
    files.forEach((f, i) => metadata.push([partPath(from, to, i), variant("(yay)", [f[0]!, f.subarray(1)])]));
  }
  const detached = await repo.readCommitMeta(to);
  if (detached) metadata.push([commitmetaKey(from, to), variant("a{sv}", detached.map(([k, v]) => [k, v]))]);

  const sbBytes = encodeSuperblock({
    metadata,
    timestamp: options.timestamp ?? Math.floor(Date.now() / 1000),
    from,
    to,
    commit: commitBytes,
    parts: headers,
    fallbacks,
    endianness,
  });

  const dir = options.filename ? dirname(options.filename) : join(repo.path, deltaDirPath(from, to));
  const sbName = options.filename ? options.filename.slice(dir.length).replace(/^\/+/, "") : "superblock";
  await mkdir(dir, { recursive: true });
  if (!options.inline) await Promise.all(files.map((f, i) => atomicWriteFile(dir, String(i), f)));
  await atomicWriteFile(dir, sbName, sbBytes);

  const totalC = files.reduce((s, f) => s + f.length, 0);
  const totalU = parts.reduce((s, p) => s + p.usize, 0);
  log(`uncompressed=${totalU} compressed=${totalC}`);
  log(`rollsum=${rollsums.length} objects, ${rollsumBytes} bytes`);
  log(`bsdiff=${nBsdiff} objects`);
  log(`bsdiff patches judged by deflate=${judged}, sent whole instead=${dropped}`);

  return {
    name: deltaName(from, to),
    from,
    to,
    superblockPath: join(dir, sbName),
    superblockSize: sbBytes.length,
    parts: headers.map((h) => ({ size: h.size, usize: h.usize, objects: h.objects.length })),
    fallbacks,
    explain,
    stats: { rollsum: rollsums.length, rollsumBytes, bsdiff: nBsdiff, matches: matches.length, seconds: (performance.now() - t0) / 1000 },
  };
}

/** Explain entries sorted by cost, largest first. */
export function sortExplain(entries: readonly ExplainEntry[]): ExplainEntry[] {
  return [...entries].sort((a, b) => b.cost - a.cost || a.path.localeCompare(b.path));
}
