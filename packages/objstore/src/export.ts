import { createWriteStream } from "node:fs";
import { Readable, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { InvalidArgumentError } from "./errors.js";
import { isSymlink } from "./content.js";
import type { DirMeta } from "./metadata.js";
import type { Repo } from "./repo.js";

/**
 * `ostree export`: a commit's tree as a GNU tar stream, laid out the way
 * libarchive's gnutar writer does it for ostree 2022.7 (headers, field
 * formats, `././@LongLink` entries, end blocks and record padding), so the
 * bytes match. Every entry gets the commit's timestamp as mtime; ownership and
 * modes come from the commit; xattrs are not representable in GNU tar and are
 * dropped, as ostree's output drops them too. Payloads stream through.
 */
export interface ExportOptions {
  /** `--subpath`: export only this directory of the commit. */
  subpath?: string;
  /** `--prefix`: prepended verbatim to every path (ostree adds no slash). */
  prefix?: string;
  /**
   * Pad the stream to a whole 10240-byte record, as libarchive does when it
   * writes to stdout; ostree's `--output FILE` stops after the end blocks.
   */
  padToRecord?: boolean;
}

const BLOCK = 512;
const RECORD = 10240;

function octal(value: number, digits: number): string {
  return value.toString(8).padStart(digits, "0");
}

/** A numeric field: octal with a NUL when it fits, else GNU base-256. */
function numField(buf: Buffer, off: number, len: number, value: number): void {
  if (value < 8 ** (len - 1)) {
    buf.write(`${octal(value, len - 1)}\0`, off, "ascii");
    return;
  }
  let v = BigInt(value);
  for (let i = len - 1; i > 0; i--) {
    buf[off + i] = Number(v & 0xffn);
    v >>= 8n;
  }
  buf[off] = 0x80;
}

interface Entry {
  name: string;
  type: "0" | "2" | "5" | "L" | "K";
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname?: string;
  uname?: string;
  gname?: string;
}

function header(e: Entry): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(e.name, 0, 100, "utf8");
  numField(h, 100, 8, e.mode & 0o7777);
  numField(h, 108, 8, e.uid);
  numField(h, 116, 8, e.gid);
  numField(h, 124, 12, e.size);
  numField(h, 136, 12, e.mtime);
  h.write(e.type, 156, 1, "ascii");
  if (e.linkname) h.write(e.linkname, 157, 100, "utf8");
  h.write("ustar  \0", 257, "ascii");
  if (e.uname) h.write(e.uname, 265, 32, "ascii");
  if (e.gname) h.write(e.gname, 297, 32, "ascii");
  // Checksum: the header summed with the checksum field as spaces, written "%06o\0 ".
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${octal(sum, 6)}\0 `, 148, "ascii");
  return h;
}

function pad(n: number): Buffer {
  const r = n % BLOCK;
  return Buffer.alloc(r === 0 ? 0 : BLOCK - r);
}

/** Header blocks for an entry, preceded by GNU long-name/long-link records when needed. */
function headers(e: Entry): Buffer[] {
  const out: Buffer[] = [];
  const long = (type: "L" | "K", value: string) => {
    const data = Buffer.from(`${value}\0`, "utf8");
    // libarchive names the owner of its long-name records root/wheel.
    out.push(header({ name: "././@LongLink", type, mode: 0, uid: 0, gid: 0, size: data.length, mtime: 0, uname: "root", gname: "wheel" }), data, pad(data.length));
  };
  if (e.linkname && Buffer.byteLength(e.linkname) > 100) long("K", e.linkname);
  if (Buffer.byteLength(e.name) > 100) long("L", e.name);
  out.push(header(e));
  return out;
}

async function* walk(repo: Repo, tree: string, meta: DirMeta, rel: string, prefix: string, mtime: number): AsyncGenerator<Buffer> {
  let name = prefix + rel;
  if (name === "") name = ".";
  if (!name.endsWith("/")) name += "/";
  yield* headers({ name, type: "5", mode: meta.mode, uid: meta.uid, gid: meta.gid, size: 0, mtime });
  const dt = await repo.readDirTree(tree);
  const sep = rel === "" ? "" : "/";
  for (const f of dt.files) {
    const obj = await repo.openContent(f.checksum);
    const path = prefix + rel + sep + f.name;
    if (isSymlink(obj.meta)) {
      yield* headers({ name: path, type: "2", mode: obj.meta.mode, uid: obj.meta.uid, gid: obj.meta.gid, size: 0, mtime, linkname: obj.meta.symlinkTarget });
      continue;
    }
    yield* headers({ name: path, type: "0", mode: obj.meta.mode, uid: obj.meta.uid, gid: obj.meta.gid, size: obj.size, mtime });
    let n = 0;
    for await (const chunk of obj.payload()) {
      n += (chunk as Buffer).length;
      yield chunk as Buffer;
    }
    if (n !== obj.size) throw new InvalidArgumentError(`content object ${f.checksum} has ${n} bytes, expected ${obj.size}`);
    yield pad(n);
  }
  for (const d of dt.dirs) {
    yield* walk(repo, d.tree, await repo.readDirMeta(d.meta), rel + sep + d.name, prefix, mtime);
  }
}

/** The tar stream of `commit` (a checksum) as an async iterable of chunks. */
export async function* exportTar(repo: Repo, commit: string, options: ExportOptions = {}): AsyncGenerator<Buffer> {
  const c = await repo.readCommit(commit);
  let tree = c.rootTree;
  let meta = c.rootMeta;
  for (const part of (options.subpath ?? "").split("/").filter((p) => p !== "" && p !== ".")) {
    const dt = await repo.readDirTree(tree);
    const d = dt.dirs.find((x) => x.name === part);
    if (!d) {
      if (dt.files.some((x) => x.name === part)) throw new InvalidArgumentError(`Not a directory: ${options.subpath}`);
      throw new InvalidArgumentError(`No such file or directory: ${options.subpath}`);
    }
    tree = d.tree;
    meta = d.meta;
  }
  let written = 0;
  for await (const chunk of walk(repo, tree, await repo.readDirMeta(meta), "", options.prefix ?? "", c.timestamp)) {
    written += chunk.length;
    yield chunk;
  }
  const end = Buffer.alloc(2 * BLOCK);
  written += end.length;
  yield end;
  if (options.padToRecord && written % RECORD !== 0) yield Buffer.alloc(RECORD - (written % RECORD));
}

/** Write the tar of `commit` to a stream or a file path (`--output`). */
export async function exportCommit(repo: Repo, commit: string, dest: Writable | string, options: ExportOptions = {}): Promise<void> {
  const out = typeof dest === "string" ? createWriteStream(dest) : dest;
  await pipeline(Readable.from(exportTar(repo, commit, options)), out, { end: typeof dest === "string" });
}
