/** Deltas stored in a repository: listing, reading, deleting. */
import { opendir, readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Repo } from "@ostree-ts/objstore";
import { DeltaError } from "./errors.js";
import { deltaDirPath, deltaNameFromDirs, parseDeltaName, superblockPath } from "./naming.js";
import { readSuperblockBytes, type Superblock, type SignedSuperblock } from "./superblock.js";

/** A delta that is not in the repository (ostree: G_IO_ERROR_NOT_FOUND). */
export class DeltaNotFoundError extends DeltaError {
  override name = "DeltaNotFoundError";
}

/** Directory entries in the kernel's readdir order (fs.readdir sorts; ostree does not). */
export async function readdirRaw(path: string): Promise<Array<{ name: string; isDirectory: boolean }>> {
  const out: Array<{ name: string; isDirectory: boolean }> = [];
  for await (const d of await opendir(path)) out.push({ name: d.name, isDirectory: d.isDirectory() });
  return out;
}

/** Delta names (`FROM-TO` or `TO`) in readdir order, as `ostree static-delta list` prints them. */
export async function listDeltas(repo: Repo): Promise<string[]> {
  const root = join(repo.path, "deltas");
  const out: string[] = [];
  let tops;
  try {
    tops = await readdirRaw(root);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return out;
    throw e;
  }
  for (const a of tops) {
    if (!a.isDirectory) continue;
    for (const b of await readdirRaw(join(root, a.name))) {
      if (!b.isDirectory) continue;
      try {
        await stat(join(root, a.name, b.name, "superblock"));
      } catch {
        continue;
      }
      const name = deltaNameFromDirs(a.name, b.name);
      if (name !== null) out.push(name);
    }
  }
  return out;
}

export async function readRepoSuperblock(repo: Repo, name: string): Promise<{ superblock: Superblock; signed: SignedSuperblock | null; bytes: Uint8Array }> {
  const { from, to } = parseDeltaName(name);
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(join(repo.path, superblockPath(from, to))));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") throw new DeltaNotFoundError(`openat(${superblockPath(from, to)}): No such file or directory`);
    throw e;
  }
  return { ...readSuperblockBytes(bytes), bytes };
}

/** `ostree static-delta delete NAME`. */
export async function deleteDelta(repo: Repo, name: string): Promise<void> {
  const { from, to } = parseDeltaName(name);
  const dir = join(repo.path, deltaDirPath(from, to));
  try {
    await stat(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") throw new DeltaNotFoundError(`Can't find delta ${name}`);
    throw e;
  }
  await rm(dir, { recursive: true, force: true });
}
