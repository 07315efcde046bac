import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { treeDigest, type TreeDigest } from "./tree.js";

/** What the build records for one tree of the cache. */
export interface ManifestEntry extends TreeDigest {
  /** Kernel version inside the tree, when it has one. */
  kver?: string;
  /** SHA-256 of the package lock the tree was built from. */
  lock?: string;
}

export interface Manifest {
  /** Format version of this file. */
  version: 1;
  trees: Record<string, ManifestEntry>;
}

export const MANIFEST_NAME = "manifest.json";

/** Writes JSON atomically (temp file + rename) with a trailing newline and sorted tree names. */
export function writeJsonAtomic(path: string, value: unknown): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`);
  renameSync(tmp, path);
}

export function readManifest(path: string): Manifest {
  if (!existsSync(path)) return { version: 1, trees: {} };
  const m = JSON.parse(readFileSync(path, "utf8")) as Manifest;
  if (m.version !== 1 || typeof m.trees !== "object") throw new Error(`${path}: not a test-images manifest (version ${String(m.version)})`);
  return m;
}

export function sortedManifest(m: Manifest): Manifest {
  const trees: Record<string, ManifestEntry> = {};
  for (const k of Object.keys(m.trees).sort()) trees[k] = m.trees[k] as ManifestEntry;
  return { version: 1, trees };
}

/** Records `name`'s current digest in the manifest at `manifestPath`. */
export function recordTree(manifestPath: string, cacheDir: string, name: string, extra: Partial<ManifestEntry> = {}): ManifestEntry {
  const m = readManifest(manifestPath);
  const entry: ManifestEntry = { ...treeDigest(join(cacheDir, name)), ...extra };
  m.trees[name] = entry;
  writeJsonAtomic(manifestPath, sortedManifest(m));
  return entry;
}

export interface CheckResult {
  name: string;
  ok: boolean;
  /** Why it failed: missing tree, digest mismatch, or no expectation. */
  reason?: string;
  expected?: string;
  actual?: string;
}

/**
 * Recomputes the digest of each named tree under `cacheDir` and compares it
 * with `expected` (the checked-in digests, or the build manifest when none
 * are checked in yet).
 */
export function checkTrees(cacheDir: string, names: string[], expected: Record<string, { digest: string }>): CheckResult[] {
  return names.map((name) => {
    const want = expected[name]?.digest;
    const dir = join(cacheDir, name);
    if (!existsSync(dir)) return { name, ok: false, reason: `${dir} does not exist (not built)`, ...(want ? { expected: want } : {}) };
    const actual = treeDigest(dir).digest;
    if (!want) return { name, ok: false, reason: `no expected digest for ${name}`, actual };
    if (want !== actual) return { name, ok: false, reason: `digest mismatch for ${dir}`, expected: want, actual };
    return { name, ok: true, expected: want, actual };
  });
}
