import { closeSync, openSync, readFileSync, readSync } from "node:fs";
import { open } from "node:fs/promises";
import { inflateRawSync } from "node:zlib";
import { sha256Hex } from "./checksum.js";
import { contentHasher, decodeFilezHeader, isSymlink } from "./content.js";
import { FsckError, ObjectNotFoundError, OstreeError } from "./errors.js";
import { verifyBindings } from "./bindings.js";
import { decodeCommit, decodeDirMeta, decodeDirTree, S_IFLNK, S_IFMT, S_IFREG, type Commit } from "./metadata.js";
import { ObjectType, objectTypeName } from "./object-types.js";
import { DEFAULT_CONCURRENCY, TaskPool } from "./pool.js";
import { deleteObject, enableTombstoneCommits } from "./prune.js";
import { listRefs, type RefEntry } from "./refs.js";
import { resolveRev } from "./rev.js";
import type { Repo } from "./repo.js";
import { objectKey, parentCommits, parseObjectKey, traverseCommit, type ParentMap, type ReachableSet } from "./traverse.js";

/** One object failed verification; `message` is ostree's text for it. */
export class ObjectVerifyError extends OstreeError {
  override name = "ObjectVerifyError";
  constructor(
    readonly checksum: string,
    readonly objectType: ObjectType,
    message: string,
  ) {
    super(message);
  }
}

export interface FsckOptions {
  /** `-q`: only error messages (and the final summary line, as ostree prints it). */
  quiet?: boolean;
  /** `-a/--all`: report every corrupted object instead of stopping at the first. */
  all?: boolean;
  /** `--delete`: delete corrupted objects and mark the commits that reach them partial (`f`). */
  delete?: boolean;
  /** `--add-tombstones`: delete commits whose parent is missing, leaving tombstones. */
  addTombstones?: boolean;
  /** `--verify-bindings`: each ref's commit must list the ref in `ostree.ref-binding`. */
  verifyBindings?: boolean;
  /** `--verify-back-refs`: each ref a commit binds must resolve to it (implies verifyBindings). */
  verifyBackRefs?: boolean;
  /** Objects hashed at once (default: enough to keep the libuv pool busy). */
  concurrency?: number;
  /** Print progress lines like ostree does on a non-tty (default true). */
  progress?: boolean;
  /** stdout lines (without newline). */
  out?: (line: string) => void;
  /** stderr lines (without newline). */
  err?: (line: string) => void;
}

export interface FsckResult {
  /** Complete commits whose trees were verified. */
  commitsVerified: number;
  partialCommits: number;
  fsckPartialCommits: number;
  objectsChecked: number;
  /** Object names (`csum.type`) found corrupted. */
  corrupted: string[];
  /** Object names found missing (including those deleted by `--delete`). */
  missing: string[];
  /** Commits newly marked partial. */
  markedPartial: string[];
  /** Commits replaced by tombstones. */
  tombstoned: string[];
}

/**
 * Verify one object as `ostree_repo_fsck_object` does: metadata is re-hashed
 * and structurally validated; content objects are streamed through the
 * content checksum. Missing objects throw ObjectNotFoundError.
 */
export async function fsckObject(repo: Repo, checksum: string, type: ObjectType): Promise<void> {
  const name = `${checksum}.${objectTypeName(type)}`;
  if (type === ObjectType.File) {
    if (repo.isArchive && filezVerifiesInMemory(repo, checksum)) return;
    const prefix = `fsck content object ${checksum}: `;
    let actual: string;
    try {
      if (repo.isArchive) await checkFilezHeaderLength(repo, checksum, prefix);
      const obj = await repo.openContent(checksum);
      const fmt = obj.meta.mode & S_IFMT;
      if (fmt !== S_IFREG && fmt !== S_IFLNK) {
        throw new ObjectVerifyError(checksum, type, `${prefix}Invalid file metadata mode ${obj.meta.mode}; not a valid file type`);
      }
      const h = contentHasher(obj.meta);
      let n = 0;
      // Bare modes: the payload is the object file itself; small ones are read in one call.
      const whole = !repo.isArchive && obj.size > 0 ? readWholeSync(repo.objectPath(checksum, type), obj.size) : undefined;
      if (whole) {
        h.update(whole);
        n = whole.length;
      } else {
        for await (const c of obj.payload()) {
          h.update(c as Buffer);
          n += (c as Buffer).length;
        }
      }
      if (n !== obj.size) throw new ObjectVerifyError(checksum, type, `${prefix}Corrupted file object; payload is ${n} bytes, header says ${obj.size}`);
      actual = h.digest("hex");
    } catch (e) {
      if (e instanceof ObjectNotFoundError || e instanceof ObjectVerifyError) throw e;
      throw new ObjectVerifyError(checksum, type, `${prefix}${zlibMessage(e as NodeJS.ErrnoException)}`);
    }
    if (actual !== checksum) {
      throw new ObjectVerifyError(checksum, type, `${prefix}Corrupted file object; checksum expected='${checksum}' actual='${actual}'`);
    }
    return;
  }
  const prefix = `fsck ${name}: `;
  let bytes: Uint8Array;
  try {
    // Synchronous: metadata objects are small, and a threadpool round trip per object costs more than the read.
    bytes = new Uint8Array(readFileSync(repo.objectPath(checksum, type)));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") throw new ObjectNotFoundError(checksum, objectTypeName(type));
    throw new ObjectVerifyError(checksum, type, `${prefix}${(e as Error).message}`);
  }
  const actual = sha256Hex(bytes);
  if (actual !== checksum) {
    throw new ObjectVerifyError(checksum, type, `${prefix}Corrupted ${objectTypeName(type)} object; checksum expected='${checksum}' actual='${actual}'`);
  }
  // Bytes that hash right can still be hostile (hand-crafted `..` entries, non-normal form).
  try {
    if (type === ObjectType.Commit) decodeCommit(bytes, checksum);
    else if (type === ObjectType.DirTree) decodeDirTree(bytes, checksum);
    else if (type === ObjectType.DirMeta) decodeDirMeta(bytes, checksum);
  } catch (e) {
    throw new ObjectVerifyError(checksum, type, `${prefix}${name}: ${(e as Error).message}`);
  }
}

/** Objects (compressed `.filez`, or bare-mode files) under this size are read in one piece; larger ones are streamed. */
const FILEZ_IN_MEMORY = 1 << 20;
/** Declared payloads up to this size are inflated in one call; larger ones are streamed. */
const PAYLOAD_IN_MEMORY = 4 << 20;
/** One read buffer for every in-memory check (archive and bare): they are synchronous, so never overlap. */
let filezScratch: Buffer | undefined;

/**
 * The common case of a `.filez` check without streams or threadpool round
 * trips: read the (small) object into a reused buffer, inflate the payload in
 * one call, hash. True only when the object verifies; anything unusual
 * (missing, large, damaged, wrong checksum) returns false so the streaming
 * check runs and reports it with ostree's wording.
 */
function filezVerifiesInMemory(repo: Repo, checksum: string): boolean {
  filezScratch ??= Buffer.allocUnsafe(FILEZ_IN_MEMORY);
  const buf = filezScratch;
  let n: number;
  try {
    const fd = openSync(repo.objectPath(checksum, ObjectType.File), "r");
    try {
      n = readSync(fd, buf, 0, buf.length, 0);
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
  // A full buffer may mean more bytes follow.
  if (n < 8 || n === buf.length) return false;
  const len = buf.readUInt32BE(0);
  if (8 + len > n) return false;
  try {
    const { meta, size } = decodeFilezHeader(buf.subarray(8, 8 + len), checksum);
    const fmt = meta.mode & S_IFMT;
    if (fmt !== S_IFREG && fmt !== S_IFLNK) return false;
    const h = contentHasher(meta);
    if (!isSymlink(meta)) {
      if (size > PAYLOAD_IN_MEMORY) return false;
      // One output buffer of the declared size (+1 to see the end) instead of 16 KiB pieces
      // joined by a copy; maxOutputLength makes an overlong payload throw rather than grow.
      const payload = inflateRawSync(buf.subarray(8 + len, n), { chunkSize: Math.max(64, size + 1), maxOutputLength: Math.max(size, 1) });
      if (payload.length !== size) return false;
      h.update(payload);
    }
    return h.digest("hex") === checksum;
  } catch {
    return false;
  }
}

/**
 * A bare-mode object's bytes in the shared scratch buffer when it is small and
 * exactly `size` long; otherwise undefined (the caller streams it, and reports
 * a size mismatch in ostree's words).
 */
function readWholeSync(path: string, size: number): Buffer | undefined {
  if (size >= FILEZ_IN_MEMORY) return undefined;
  filezScratch ??= Buffer.allocUnsafe(FILEZ_IN_MEMORY);
  let n: number;
  try {
    const fd = openSync(path, "r");
    try {
      n = readSync(fd, filezScratch, 0, size + 1, 0);
    } finally {
      closeSync(fd);
    }
  } catch {
    return undefined;
  }
  return n === size ? filezScratch.subarray(0, n) : undefined;
}

/** ostree's first check on a `.filez`: the header length must fit in the file. */
async function checkFilezHeaderLength(repo: Repo, checksum: string, prefix: string): Promise<void> {
  let fh;
  try {
    fh = await open(repo.objectPath(checksum, ObjectType.File), "r");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") throw new ObjectNotFoundError(checksum, "file");
    throw e;
  }
  try {
    const { size } = await fh.stat();
    const buf = Buffer.alloc(4);
    const { bytesRead } = await fh.read(buf, 0, 4, 0);
    if (bytesRead < 4) throw new ObjectVerifyError(checksum, ObjectType.File, `${prefix}File header size 0 exceeds size ${size}`);
    const len = buf.readUInt32BE(0);
    if (len > size) throw new ObjectVerifyError(checksum, ObjectType.File, `${prefix}File header size ${len} exceeds size ${size}`);
  } finally {
    await fh.close();
  }
}

/** GLib's GZlibDecompressor wording for zlib failures, which is what ostree prints. */
function zlibMessage(e: NodeJS.ErrnoException): string {
  if (e.code === "Z_BUF_ERROR") return "Need more input";
  if (e.code === "Z_DATA_ERROR") return "Invalid compressed data";
  return e.message;
}

/** Non-tty progress lines as libglnx prints them: first, then at most once a second, then 100%. */
function progressPrinter(out: (l: string) => void, total: number): (current: number) => void {
  let last = -Infinity;
  return (current) => {
    const pct = current === total ? 100 : Math.trunc((current / total) * 100);
    const now = performance.now();
    if (pct !== 100 && now - last < 1000) return;
    last = now;
    out(`fsck objects (${current}/${total}) ${pct}%`);
  };
}

/**
 * `ostree fsck`: validate refs, enumerate commits, verify every object
 * reachable from the complete ones (depth 0 each; every commit object in the
 * repo is visited). Resolves with the result on success; throws FsckError
 * with ostree's final message otherwise.
 */
export async function fsck(repo: Repo, options: FsckOptions = {}): Promise<FsckResult> {
  const out = options.out ?? (() => {});
  const err = options.err ?? (() => {});
  const verifyBackRefs = options.verifyBackRefs ?? false;
  const verifyBind = (options.verifyBindings ?? false) || verifyBackRefs;
  const result: FsckResult = {
    commitsVerified: 0,
    partialCommits: 0,
    fsckPartialCommits: 0,
    objectsChecked: 0,
    corrupted: [],
    missing: [],
    markedPartial: [],
    tombstoned: [],
  };
  let foundCorruption = false;
  const marking = new Set<string>();

  // One object, with ostree's reporting and --delete/--all policy.
  const checkOne = async (checksum: string, type: ObjectType, parents: (() => Promise<ParentMap>) | undefined): Promise<void> => {
    const key = objectKey(checksum, type);
    let missing = false;
    try {
      await fsckObject(repo, checksum, type);
      return;
    } catch (e) {
      const commits = parents ? parentCommits(await parents(), key) : null;
      const inCommits = commits && commits.length ? commits.join(", ") : null;
      if (e instanceof ObjectNotFoundError) {
        err(inCommits ? `Object missing in commits ${inCommits}: ${key}` : `Object missing: ${key}`);
        result.missing.push(key);
        missing = true;
      } else if (e instanceof ObjectVerifyError) {
        const msg = inCommits ? `In commits ${inCommits}: ${e.message}` : e.message;
        result.corrupted.push(key);
        if (options.delete) {
          err(msg);
          await deleteObject(repo, checksum, type).catch(() => {});
          missing = true;
        } else if (options.all) {
          foundCorruption = true;
          err(msg);
        } else {
          throw new FsckError(msg);
        }
      } else {
        throw e;
      }
      if (missing) {
        foundCorruption = true;
        if (commits && type !== ObjectType.Commit) {
          for (const c of commits) {
            // Checked synchronously first: parallel checks must not mark one commit twice.
            if (marking.has(c)) continue;
            marking.add(c);
            if ((await repo.commitPartialState(c)) === null) {
              err(`Marking commit as partial: ${c}`);
              await repo.markCommitPartial(c, true);
              result.markedPartial.push(c);
            }
          }
        }
      }
    }
  };

  const loadCommitForRef = async (checksum: string, collectionId: string | null, refName: string): Promise<void> => {
    await checkOne(checksum, ObjectType.Commit, undefined);
    let commit: Commit;
    try {
      commit = await repo.readCommit(checksum);
    } catch (e) {
      const what = collectionId !== null ? `(${collectionId}, ${refName})` : refName;
      throw new FsckError(`Loading commit for ref ${what}: ${(e as Error).message}`);
    }
    if (verifyBind) {
      try {
        verifyBindings(collectionId, refName, commit);
      } catch (e) {
        throw new FsckError(`Commit ${checksum}: ${(e as Error).message}`);
      }
    }
  };

  if (!options.quiet) out("Validating refs...");
  let refs: RefEntry[];
  try {
    refs = await listRefs(repo, { heads: true, remotes: true, mirrors: true });
  } catch (e) {
    throw new FsckError((e as Error).message);
  }
  for (const r of refs) if (r.ns.kind !== "mirror") await loadCommitForRef(r.checksum, null, r.ref);

  if (!options.quiet) out("Validating refs in collections...");
  const mainCollection = repo.config.getString("core", "collection-id") ?? null;
  for (const r of refs) {
    if (r.ns.kind === "mirror") await loadCommitForRef(r.checksum, r.ns.collectionId, r.ref);
    else if (r.ns.kind === "heads" && mainCollection !== null) await loadCommitForRef(r.checksum, mainCollection, r.ref);
  }

  if (!options.quiet) out("Enumerating commits...");
  const complete: string[] = [];
  const tombstones: string[] = [];
  for await (const o of repo.listObjects()) {
    if (o.type !== ObjectType.Commit) continue;
    const state = await repo.commitPartialState(o.checksum);
    let commit: Commit | null = null;
    try {
      commit = await repo.readCommit(o.checksum);
    } catch {
      // Left to the checksum pass, which names it.
    }
    if (commit) await checkCommitLinks(repo, o.checksum, commit, verifyBackRefs, options.addTombstones ? tombstones : null);
    if (state !== null) {
      result.partialCommits++;
      if (state.startsWith("f")) result.fsckPartialCommits++;
    } else {
      complete.push(o.checksum);
    }
  }

  if (!options.quiet) out(`Verifying content integrity of ${complete.length} commit objects...`);
  const reachable: ReachableSet = new Set();
  try {
    for (const c of complete) await traverseCommit(repo, c, reachable, { maxDepth: 0 });
  } catch (e) {
    // A dirtree missing from a complete commit stops ostree's traversal the same way.
    if (e instanceof OstreeError) throw new FsckError(e.message);
    throw e;
  }
  // Which commits reach an object only matters once one is bad: the referrer map (a set per
  // object, ~20 MB for an OS tree) is built by walking the same commits again on the first error,
  // before anything is deleted, so it is the map the first walk would have built.
  let parentMap: Promise<ParentMap> | undefined;
  const parents = () =>
    (parentMap ??= (async () => {
      const map: ParentMap = new Map();
      const seen: ReachableSet = new Set();
      for (const c of complete) await traverseCommit(repo, c, seen, { maxDepth: 0, parents: map });
      return map;
    })());

  const total = reachable.size;
  const progress = options.progress === false || total === 0 ? () => {} : progressPrinter(out, total);
  const pool = new TaskPool(options.concurrency ?? DEFAULT_CONCURRENCY);
  let done = 0;
  for (const key of reachable) {
    const { checksum, type } = parseObjectKey(key);
    await pool.run(async () => {
      await checkOne(checksum, type, parents);
      done++;
      progress(done);
    });
  }
  await pool.drain();
  result.objectsChecked = total;
  result.commitsVerified = complete.length;

  if (options.addTombstones) {
    if (tombstones.length) await enableTombstoneCommits(repo);
    for (const c of tombstones) {
      out(`Adding tombstone for commit ${c}`);
      await deleteObject(repo, c, ObjectType.Commit);
      result.tombstoned.push(c);
    }
  } else if (result.partialCommits > 0) {
    out(`${result.partialCommits} partial commits not verified`);
  }

  if (foundCorruption) throw new FsckError("Repository corruption encountered");
  // ostree prints the count of all partial commits here, not just fsck-marked ones.
  if (result.fsckPartialCommits > 0) throw new FsckError(`${result.partialCommits} partial commits from fsck-detected corruption`);
  out(`object fsck of ${complete.length} commits completed successfully - no errors found.`);
  return result;
}

/** --verify-back-refs and --add-tombstones checks of one commit. */
async function checkCommitLinks(repo: Repo, checksum: string, commit: Commit, backRefs: boolean, tombstones: string[] | null): Promise<void> {
  if (backRefs) {
    const cid = commit.metadata.find(([k]) => k === "ostree.collection-binding")?.[1];
    const collectionId = cid && cid.type === "s" ? (cid.value as string) : null;
    const refsV = commit.metadata.find(([k]) => k === "ostree.ref-binding")?.[1];
    const refs = refsV && refsV.type === "as" ? (refsV.value as string[]) : [];
    for (const ref of refs) {
      let target: string | null;
      if (collectionId !== null) {
        target = await resolveCollectionRef(repo, collectionId, ref);
      } else {
        target = await resolveRev(repo, ref, true);
      }
      const what = collectionId !== null ? `Collection–ref (${collectionId}, ${ref})` : `Ref ‘${ref}’`;
      if (target === null) throw new FsckError(`${what} in bindings for commit ${checksum} does not exist`);
      if (target !== checksum) throw new FsckError(`${what} in bindings for commit ${checksum} does not resolve to that commit`);
    }
  }
  if (tombstones && commit.parent !== null && !(await repo.hasObject(commit.parent, ObjectType.Commit))) {
    tombstones.push(checksum);
  }
}

/** A (collection, ref) in this repo: refs/heads when it is the repo's collection, else refs/mirrors. */
async function resolveCollectionRef(repo: Repo, collectionId: string, ref: string): Promise<string | null> {
  const refs = await listRefs(repo, { heads: true, remotes: false, mirrors: true });
  const main = repo.config.getString("core", "collection-id");
  for (const r of refs) {
    if (r.ref !== ref) continue;
    if (r.ns.kind === "mirror" && r.ns.collectionId === collectionId) return r.checksum;
    if (r.ns.kind === "heads" && main === collectionId) return r.checksum;
  }
  return null;
}
