/**
 * Similar-file matching for the generator: which old file should a new file
 * be diffed against.
 *
 * ostree 2022.7 pairs files with the same path ("modified") and, among added
 * files, those sharing a basename (or the part before the first '.') within
 * ±30 % size. We do that and also follow renamed *versioned* paths: every run
 * of digits in every path component is folded, so
 * `/usr/lib/modules/6.1.0-50-amd64/kernel/x.ko` finds
 * `/usr/lib/modules/6.1.0-56-amd64/kernel/x.ko` and `libfoo.so.1.2` finds
 * `libfoo.so.1.3` even when its directory also changed.
 *
 * Compressed payloads (`.xz`, `.gz`, `.bz2`, `.zst`, `.ko.xz`, …, or a
 * compression magic in the content) are paired but flagged: after the first
 * changed input byte a compressed stream shares nothing with the old one
 * except byte-identical runs, which rollsum finds cheaply (e.g. the unchanged
 * head of a deterministic initramfs.img); bsdiff's approximate matches mean
 * nothing there and cost ~10 bytes of memory per input byte. The generator
 * therefore uses rollsum for them when any chunk matches, else bsdiff for small
 * ones (a shared head shorter than rollsum's chunks; kept only if it beats the
 * whole file), else sends them whole. ostree never pairs `.xz`/`.bz2` and
 * bsdiffs the rest.
 */

export interface TreeFile {
  path: string;
  checksum: string;
  size: number;
  mode: number;
}

export type MatchReason = "same-path" | "versioned-path" | "basename" | "basename-prefix";

export interface FileMatch {
  to: TreeFile;
  from: TreeFile;
  reason: MatchReason;
  /** Either side has a compressed-file name (see module doc). */
  compressed: boolean;
}

const COMPRESSED = /\.(xz|gz|bz2|zst|lz4|lzma|lz|tgz|txz|zip|jar|apk|deb|rpm|squashfs|png|jpe?g|gif|webp|woff2?)$/i;

export function isCompressedName(path: string): boolean {
  return COMPRESSED.test(path);
}

const MAGICS: ReadonlyArray<readonly number[]> = [
  [0x1f, 0x8b], // gzip
  [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], // xz
  [0x28, 0xb5, 0x2f, 0xfd], // zstd
  [0x42, 0x5a, 0x68], // bzip2
  [0x04, 0x22, 0x4d, 0x18], // lz4
  [0x89, 0x4c, 0x5a, 0x4f], // lzop
];

/** True when the bytes start with a gzip/xz/zstd/bzip2/lz4/lzop magic (content sniffing for unnamed payloads). */
export function isCompressedData(b: Uint8Array): boolean {
  return MAGICS.some((m) => b.length >= m.length && m.every((x, i) => b[i] === x));
}

function basename(p: string): string {
  return p.slice(p.lastIndexOf("/") + 1);
}

/** Path with every digit run folded to '#': the key renamed versions share. */
export function versionlessPath(path: string): string {
  return path.replace(/[0-9]+/g, "#");
}

function eligible(f: TreeFile, extended: boolean): boolean {
  return f.size > 0 && (f.mode & 0o170000) === 0o100000 && (extended || !/\.(xz|bz2)$/.test(f.path));
}

function sizeClose(a: number, b: number, ratio: number): boolean {
  return a <= b * (1 + ratio) && b <= a * (1 + ratio);
}

/** Picks from `cands` the file closest in size to `to` (ties: lexically first path). */
function closest(to: TreeFile, cands: readonly TreeFile[] | undefined, ratio: number): TreeFile | undefined {
  let best: TreeFile | undefined;
  for (const c of cands ?? []) {
    if (!sizeClose(c.size, to.size, ratio)) continue;
    if (!best || Math.abs(c.size - to.size) < Math.abs(best.size - to.size) || (c.size === best.size && c.path < best.path)) best = c;
  }
  return best;
}

export interface MatchOptions {
  /** "ostree": only ostree's rules; "extended" (default): also versioned paths and a looser size window. */
  mode?: "ostree" | "extended";
  /** Old objects must be world-readable (ostree's rule); pass false to ignore. */
  requireWorldReadable?: boolean;
}

/**
 * Pairs each new regular file (content not present in FROM) with an old file.
 * `fromFiles`/`toFiles` are every regular file of each tree.
 */
export function matchFiles(fromFiles: readonly TreeFile[], newFiles: readonly TreeFile[], options: MatchOptions = {}): FileMatch[] {
  const extended = (options.mode ?? "extended") === "extended";
  const requireReadable = options.requireWorldReadable ?? true;
  const olds = fromFiles.filter((f) => eligible(f, extended) && (!requireReadable || (f.mode & 0o004) !== 0));
  const byPath = new Map<string, TreeFile>();
  const byVersionless = new Map<string, TreeFile[]>();
  const byBase = new Map<string, TreeFile[]>();
  const byPrefix = new Map<string, TreeFile[]>();
  const push = (m: Map<string, TreeFile[]>, k: string, f: TreeFile) => {
    const l = m.get(k);
    if (l) l.push(f);
    else m.set(k, [f]);
  };
  for (const f of olds) {
    byPath.set(f.path, f);
    push(byVersionless, versionlessPath(f.path), f);
    const b = basename(f.path);
    push(byBase, b, f);
    const dot = b.indexOf(".");
    if (dot > 0) push(byPrefix, `${dot}:${b.slice(0, dot)}`, f);
  }
  const found: Array<Omit<FileMatch, "compressed">> = [];
  for (const to of newFiles) {
    if (!eligible(to, extended)) continue;
    const same = byPath.get(to.path);
    if (same && (extended || sizeClose(same.size, to.size, 0.3))) {
      found.push({ to, from: same, reason: "same-path" });
      continue;
    }
    if (extended) {
      const v = closest(to, byVersionless.get(versionlessPath(to.path)), 1.0);
      if (v) {
        found.push({ to, from: v, reason: "versioned-path" });
        continue;
      }
    }
    const b = basename(to.path);
    const byName = closest(to, byBase.get(b), 0.3);
    if (byName) {
      found.push({ to, from: byName, reason: "basename" });
      continue;
    }
    const dot = b.indexOf(".");
    if (dot > 0) {
      const p = closest(to, byPrefix.get(`${dot}:${b.slice(0, dot)}`), 0.3);
      if (p) found.push({ to, from: p, reason: "basename-prefix" });
    }
  }
  return found.map((m) => ({ ...m, compressed: extended && (isCompressedName(m.to.path) || isCompressedName(m.from.path)) }));
}
