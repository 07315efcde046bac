import { createReadStream } from "node:fs";
import { rm } from "node:fs/promises";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import tar from "tar-stream";
import type { CommitContext } from "./commit.js";
import type { FileMeta } from "./content.js";
import { InvalidArgumentError } from "./errors.js";
import { S_IFDIR, S_IFLNK, S_IFREG, type Xattrs } from "./metadata.js";
import { MutableTree, MutableTreeError, PENDING } from "./mtree.js";
import type { PayloadSource } from "./repo.js";

/** A tar member ostree cannot import (device, fifo) or a malformed path. */
export class TarImportError extends InvalidArgumentError {
  override name = "TarImportError";
}

const DEFAULT_DIRMODE = S_IFDIR | 0o755;
/** ostree refuses archive paths longer than this (ot_util_path_split_validate). */
const PATH_MAX = 4096;

/** ostree's path_relative: strip leading `/`, `/../`, `./` and empty components; `.` is the root (""). */
export function tarPathRelative(src: string): string {
  let i = 0;
  while (src[i] === "/") {
    i++;
    if (src.startsWith("../", i)) i += 2;
  }
  for (;;) {
    if (src.startsWith("./", i)) i += 2;
    else if (src[i] === "/") i++;
    else break;
  }
  let rest = src.slice(i);
  if (rest === ".") rest = "";
  splitPath(rest, `While making relative path "${rest}":`);
  return rest;
}

/** ot_util_path_split_validate: components without `.` and empty ones; `..` is an error. */
function splitPath(path: string, prefix = ""): string[] {
  if (Buffer.byteLength(path) > PATH_MAX) throw new TarImportError(`${prefix}Path '${path}' is too long`);
  const parts = path.split("/");
  if (parts.includes("..")) throw new TarImportError(`${prefix}Invalid uplink '..' in path ${path}`);
  return parts.filter((p) => p !== "." && p !== "");
}

function basename(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? path : path.slice(i + 1);
}

function squashTrailingSlashes(path: string): string {
  let end = path.length;
  while (end > 1 && path[end - 1] === "/") end--;
  return path.slice(0, end);
}

/** Optionally gunzip: libarchive detects compression itself. */
async function* maybeGunzip(input: Readable): AsyncGenerator<Buffer> {
  const it = (input as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.done) return;
  const head = first.value;
  const all = (async function* () {
    yield head;
    for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
  })();
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) {
    yield* Readable.from(all).pipe(createGunzip()) as AsyncIterable<Buffer>;
    return;
  }
  if (head.subarray(0, 3).toString("latin1") === "BZh") throw new TarImportError("bzip2-compressed archives are not supported");
  if (head[0] === 0xfd && head.subarray(1, 6).toString("latin1") === "7zXZ\0") throw new TarImportError("xz-compressed archives are not supported");
  yield* all;
}

interface Deferred {
  parent: MutableTree;
  path: string;
  size: number;
}

/**
 * `--tree=tar=FILE`: import a tar archive into `mtree` as ostree's libarchive
 * importer does (paths relativised, parents must exist unless
 * `autocreateParents`, hardlinks resolved at the end, uid/gid/mode from the
 * headers, xattrs from SCHILY.xattr pax records).
 */
export async function importTar(ctx: CommitContext, src: string | Readable, root: MutableTree, autocreateParents: boolean): Promise<void> {
  const { repo, modifier } = ctx;
  ctx.sizes?.clear();
  const label = typeof src === "string" ? src : "tar stream";
  const input = typeof src === "string" ? createReadStream(src) : src;
  const extract = tar.extract();
  const feeding = pipeline(Readable.from(maybeGunzip(input)), extract).catch((e: unknown) => {
    extract.destroy(e as Error);
    throw e;
  });
  const latest = new Map<MutableTree, Map<string, object>>();
  const assign = (node: MutableTree, name: string, work: () => Promise<string>) => {
    node.replaceFile(name, PENDING);
    const token = {};
    let m = latest.get(node);
    if (!m) latest.set(node, (m = new Map()));
    m.set(name, token);
    return ctx.pool.run(async () => {
      const csum = await work();
      if (m.get(name) === token) node.files.set(name, csum);
    });
  };
  const deferred = new Map<string, Deferred[]>();

  const parentDir = async (path: string, uid: number, gid: number): Promise<MutableTree> => {
    const components = splitPath(path);
    if (components.length === 0) return root;
    try {
      return await root.walk(repo, components);
    } catch (e) {
      if (!(e instanceof MutableTreeError) || !autocreateParents) throw e;
    }
    // ostree (re)writes the metadata of every directory on the way, existing ones included.
    const meta = await ctx.writeDirMeta({ uid, gid, mode: DEFAULT_DIRMODE }, []);
    root.setMetadataChecksum(meta);
    let dir = root;
    for (const name of components.slice(0, -1)) {
      await dir.makeWhole(repo);
      dir = dir.ensureDir(name);
      dir.setMetadataChecksum(meta);
    }
    return dir;
  };

  try {
    for await (const entry of extract) {
      const h = entry.header as tar.Headers & { pax?: Record<string, string> };
      const path = squashTrailingSlashes(tarPathRelative(h.name));
      let fmt: number;
      switch (h.type) {
        case "file":
        case "contiguous-file":
        case "link":
          fmt = S_IFREG;
          break;
        case "symlink":
          fmt = S_IFLNK;
          break;
        case "directory":
          fmt = S_IFDIR;
          break;
        default:
          entry.resume();
          throw new TarImportError(`Unsupported file type for path "${path}" (${h.type ?? "unknown"})`);
      }
      const uid = h.uid ?? 0;
      const gid = h.gid ?? 0;
      const { allow, info } = modifier.apply(`/${path}`, { uid, gid, mode: fmt | ((h.mode ?? 0) & 0o7777) });
      if (!allow) {
        entry.resume();
        continue;
      }
      const parent = await parentDir(path, uid, gid);
      const xattrs: Xattrs = modifier.skipTarXattrs
        ? []
        : Object.entries(h.pax ?? {})
            .filter(([k]) => k.startsWith("SCHILY.xattr."))
            .map(([k, v]) => {
              // tar-stream hands pax values over as decoded UTF-8: refuse rather than hash altered bytes.
              if (v.includes("\uFFFD")) throw new TarImportError(`/${path}: xattr ${k.slice(13)} has a non-UTF-8 value, which this importer cannot read exactly`);
              return [k.slice("SCHILY.xattr.".length), new Uint8Array(Buffer.from(v, "utf8"))] as const;
            });
      const name = basename(path);
      if (fmt === S_IFDIR) {
        entry.resume();
        let node: MutableTree;
        if (name === "") node = root;
        else {
          await parent.makeWhole(repo);
          node = parent.dirs.get(name) ?? parent.ensureDir(name);
        }
        node.setMetadataChecksum(await ctx.writeDirMeta(info, xattrs));
        continue;
      }
      const hardlink = h.type === "link" ? tarPathRelative(h.linkname ?? "") : null;
      const size = fmt === S_IFREG ? (h.size ?? 0) : 0;
      await parent.makeWhole(repo);
      if (hardlink === null || size > 0) {
        const cleanup: string[] = [];
        const source: PayloadSource = fmt === S_IFREG ? await ctx.spool(entry, size, cleanup) : (entry.resume(), { data: new Uint8Array(0) });
        const meta: FileMeta = { ...info, symlinkTarget: fmt === S_IFLNK ? (h.linkname ?? "") : "", xattrs };
        await assign(parent, name, async () => {
          try {
            return await ctx.writeFile(`/${path}`, meta, source, size);
          } finally {
            for (const p of cleanup) await rm(p, { force: true });
          }
        });
      } else entry.resume();
      if (hardlink !== null) {
        let list = deferred.get(hardlink);
        if (!list) deferred.set(hardlink, (list = []));
        list.push({ parent, path, size });
      }
    }
    await feeding;
  } catch (e) {
    await feeding.catch(() => undefined);
    await ctx.pool.drain().catch(() => undefined);
    if (e instanceof InvalidArgumentError) throw e;
    throw new TarImportError(`${label}: ${(e as Error).message}`);
  }
  await ctx.pool.drain();

  for (const [target, links] of deferred) {
    const components = splitPath(target);
    const targetName = basename(target);
    const payload = links.find((l) => l.size > 0);
    if (payload) {
      const csum = payload.parent.files.get(basename(payload.path))!;
      const tparent = await root.walk(repo, components);
      await tparent.makeWhole(repo);
      tparent.replaceFile(targetName, csum);
    }
    const tparent = await root.walk(repo, components);
    await tparent.makeWhole(repo);
    if (tparent.dirs.has(targetName)) throw new TarImportError(`Expected hardlink file target at "${target}" but found a directory`);
    const csum = tparent.files.get(targetName);
    if (csum === undefined) throw new TarImportError(`ostree-tar: Processing deferred hardlink ${target}: Failed to find object: No such file or directory: ${targetName}`);
    for (const l of links) if (l !== payload) l.parent.replaceFile(basename(l.path), csum);
  }
}
