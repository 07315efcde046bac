/**
 * Reading content payloads whole, for the generator (which reads every
 * changed pair once or twice: rollsum decisions, bsdiff, patch judging).
 *
 * `Repo.readContentBytes` streams an archive object through `createInflateRaw`
 * in 16 KiB chunks, concatenates them and copies the result: for the ~330 MB
 * of os-v1→v2 pairs that was seconds of main-thread callbacks and garbage.
 * Here an archive object is one `readFile` and one inflate on the threadpool
 * whose output chunk is the payload's declared size, so the result is a
 * single exact buffer (transferable to a bsdiff worker without a copy).
 */
import { closeSync, openSync, readSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { promisify } from "node:util";
import { inflateRaw } from "node:zlib";
import { CorruptObjectError, decodeFilezHeader, ObjectType, unframe, type FileMeta, type Repo } from "@ostree-ts/objstore";

const inflateRawAsync = promisify(inflateRaw) as (buf: Uint8Array, options: { chunkSize: number }) => Promise<Buffer>;

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;

/** The payload of content object `checksum` (empty for a symlink), as `readContentBytes` returns it. */
export async function readPayload(repo: Repo, checksum: string): Promise<Uint8Array> {
  if (!repo.isArchive) return (await repo.readContentBytes(checksum)).data;
  let raw: Buffer;
  try {
    raw = await readFile(repo.objectPath(checksum, ObjectType.File));
  } catch (e) {
    // Staged in a transaction or only in a parent repo: the general reader finds it.
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return (await repo.readContentBytes(checksum)).data;
    throw e;
  }
  const { header, payloadOffset } = unframe(raw, checksum);
  const { meta, size } = decodeFilezHeader(header, checksum);
  if ((meta.mode & S_IFMT) !== S_IFREG) return new Uint8Array(0);
  // One output chunk of exactly `size` bytes: zlib fills it, and the call that finds the
  // stream's end gets a second chunk it never touches (no pages, no copy, no concat).
  const out = await inflateRawAsync(raw.subarray(payloadOffset), { chunkSize: Math.max(64, size) });
  if (out.length !== size) throw new CorruptObjectError(checksum, "file", `payload is ${out.length} bytes, header says ${size}`);
  return out;
}

/** Bytes read first for an archive object's header (typical headers are < 200 bytes). */
const HEADER_PROBE = 512;

/**
 * Metadata and payload size of content object `checksum` (size 0 for a symlink), as
 * `Repo.openContent` gives them. The generator needs them for every file of both commits
 * (~20k on os-v1→v2): an archive object's header is one synchronous open, read and close
 * here, instead of two lstats, an open, two reads and a close through the threadpool.
 */
export async function readContentInfo(repo: Repo, checksum: string): Promise<{ meta: FileMeta; size: number }> {
  if (!repo.isArchive) {
    const o = await repo.openContent(checksum);
    return { meta: o.meta, size: o.size };
  }
  let fd: number;
  try {
    fd = openSync(repo.objectPath(checksum, ObjectType.File), "r");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    const o = await repo.openContent(checksum);
    return { meta: o.meta, size: o.size };
  }
  try {
    let buf = Buffer.allocUnsafe(HEADER_PROBE);
    let n = readSync(fd, buf, 0, HEADER_PROBE, 0);
    if (n >= 8 && 8 + buf.readUInt32BE(0) > n) {
      buf = Buffer.allocUnsafe(8 + buf.readUInt32BE(0));
      n = readSync(fd, buf, 0, buf.length, 0);
    }
    const { meta, size } = decodeFilezHeader(unframe(buf.subarray(0, n), checksum).header, checksum);
    return { meta, size: (meta.mode & S_IFMT) === S_IFREG ? size : 0 };
  } finally {
    closeSync(fd);
  }
}
