/** `ostree static-delta show` output, line for line as ostree 2022.7 prints it. */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { formatSize, type Repo } from "@ostree-ts/objstore";
import { DeltaApplyError } from "./apply.js";
import { parseDeltaName, partPath, superblockPath } from "./naming.js";
import { openPart, opStats, parseOps } from "./part.js";
import { inlinePart, readSuperblockBytes } from "./superblock.js";

function endiannessText(sb: { endianness: "l" | "B"; endiannessGuessed: boolean; endiannessInvalid: boolean }): string {
  if (sb.endiannessInvalid) return "invalid";
  const base = sb.endianness === "l" ? "little" : "big";
  return sb.endiannessGuessed ? `${base} (heuristic)` : base;
}

/**
 * Prints the dump through `print` (one call per line, newline included).
 * `delta` is a delta name, or a superblock path when it contains '/'
 * (as ostree accepts). Unlike ostree, inline parts are read from the
 * superblock instead of failing on the missing part file.
 */
export async function showDelta(repo: Repo, delta: string, print: (line: string) => void): Promise<void> {
  let path: string;
  let partDir: string | null = null;
  if (delta.includes("/")) {
    path = delta;
  } else {
    const { from, to } = parseDeltaName(delta);
    path = join(repo.path, superblockPath(from, to));
    partDir = join(repo.path, superblockPath(from, to), "..");
  }
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(path));
  } catch (e) {
    throw new DeltaApplyError(`openat(${delta.includes("/") ? delta : path.slice(repo.path.length + 1)}): ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "No such file or directory" : (e as Error).message}`);
  }
  const { superblock: sb, signed } = readSuperblockBytes(bytes);
  partDir ??= join(path, "..");
  print(`Delta: ${delta}\n`);
  print(`Signed: ${signed ? "yes" : "no"}\n`);
  print(sb.from === null ? "From <scratch>\n" : `From: ${sb.from}\n`);
  print(`To: ${sb.to}\n`);
  print(`Endianness: ${endiannessText(sb)}\n`);
  print(`Timestamp: ${sb.timestamp}\n`);
  print(`Number of parents: ${Math.floor(sb.dependencies.length / 64)}\n`);
  print(`Number of fallback entries: ${sb.fallbacks.length}\n`);
  let fbSize = 0;
  let fbUsize = 0;
  for (const f of sb.fallbacks) {
    print(`  ${f.checksum}\n`);
    fbSize += f.size;
    fbUsize += f.usize;
  }
  print(`Total Fallback Size: ${fbSize} (${formatSize(fbSize)})\n`);
  print(`Total Fallback Uncompressed Size: ${fbUsize} (${formatSize(fbUsize)})\n`);
  print(`Number of parts: ${sb.parts.length}\n`);
  let size = 0;
  let usize = 0;
  for (let i = 0; i < sb.parts.length; i++) {
    const h = sb.parts[i]!;
    size += h.size;
    usize += h.usize;
    print(`PartMeta${i}: nobjects=${h.objects.length} size=${h.size} usize=${h.usize}\n`);
    const inline = inlinePart(sb, partPath(sb.from, sb.to, i));
    let file: Uint8Array;
    if (inline) {
      file = inline;
    } else {
      try {
        file = new Uint8Array(await readFile(join(partDir, String(i))));
      } catch {
        throw new DeltaApplyError(`openat(${partPath(sb.from, sb.to, i)}): No such file or directory`);
      }
    }
    const payload = await openPart(file, { maxPayloadSize: Math.min(1 << 30, 2 * h.usize + (1 << 20)), label: `delta part ${i}` });
    print(`PartPayload${i}: nmodes=${payload.modes.length} nxattrs=${payload.xattrs.length} blobsize=${payload.blob.length} opsize=${payload.ops.length}\n`);
    const n = opStats(parseOps(payload.ops, h.objects, `delta part ${i}`));
    print(`PartPayloadOps${i}: openspliceclose=${n[0]} open=${n[1]} write=${n[2]} setread=${n[3]} unsetread=${n[4]} close=${n[5]} bspatch=${n[6]}\n`);
  }
  print(`Total Part Size: ${size} (${formatSize(size)})\n`);
  print(`Total Part Uncompressed Size: ${usize} (${formatSize(usize)})\n`);
  print(`Total Size: ${size + fbSize} (${formatSize(size + fbSize)})\n`);
  print(`Total Uncompressed Size: ${usize + fbUsize} (${formatSize(usize + fbUsize)})\n`);
}
