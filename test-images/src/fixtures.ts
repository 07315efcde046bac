import { createCipheriv, createHash } from "node:crypto";
import {
  chmodSync,
  closeSync,
  cpSync,
  existsSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { setTreeMtimes, walkTree } from "./tree.js";

/** Mtime given to every fixture entry: Debian 12's release day, 2023-06-10T00:00:00Z. */
export const FIXTURE_EPOCH = 1686355200;

/** Size of the optional large file: just over 64 MiB, past ostree's 64 MiB static-delta/fallback limits. */
export const LARGE_FILE_SIZE = 64 * 1024 * 1024 + 12345;

export interface FixtureOptions {
  /** Number of ordinary generated files (special entries come on top). */
  files: number;
  /** Seed for names, sizes and contents; same seed, same tree. */
  seed: number;
  /** Add `large/large.bin` of LARGE_FILE_SIZE bytes. */
  largeFile?: boolean;
  /** Mtime for every entry, in seconds (default FIXTURE_EPOCH). */
  epoch?: number;
}

export interface FixtureInfo {
  /** Paths (relative) of the ordinary generated files. */
  files: string[];
  /** Paths of the special entries, by kind. */
  special: {
    empty: string;
    exec: string;
    setuid: string;
    setgid: string;
    stickyDir: string;
    readonly: string;
    symlinks: string[];
    hardlinks: string[];
    utf8: string[];
    deepLeaf: string;
    emptyDir: string;
    large?: string;
  };
}

/** Small deterministic PRNG (mulberry32): enough for choosing names and sizes. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)] as T;
  }
}

/**
 * A deterministic byte stream keyed by (seed, label): AES-128-CTR over zeros,
 * which is fast enough for a 64 MiB file and has no dependency on Node's
 * random source.
 */
export function pseudoRandomBytes(seed: number, label: string, length: number): Buffer {
  const key = createHash("sha256").update(`${seed}\0${label}`).digest();
  const c = createCipheriv("aes-128-ctr", key.subarray(0, 16), key.subarray(16, 32));
  return c.update(Buffer.alloc(length));
}

const WORDS = [
  "alpha", "beta", "gamma", "delta", "config", "lib", "share", "data", "cache", "module",
  "ñandú", "日本語", "Ελληνικά", "emoji-🚀", "space name", "x", "README", "a.b.c", "-dash", "z",
];

const TEXT = "The quick brown fox jumps over the lazy dog. OSTree commits content-addressed objects.\n";

/** Content for a generated file: a mix of compressible text and random bytes, like real binaries. */
function fileContent(seed: number, label: string, size: number, rng: Rng): Buffer {
  if (size === 0) return Buffer.alloc(0);
  const kind = rng.int(0, 2);
  if (kind === 0) return pseudoRandomBytes(seed, label, size);
  if (kind === 1) return Buffer.from(TEXT.repeat(Math.ceil(size / TEXT.length)).slice(0, size));
  const half = Math.floor(size / 2);
  return Buffer.concat([Buffer.from(TEXT.repeat(Math.ceil(half / TEXT.length)).slice(0, half)), pseudoRandomBytes(seed, label, size - half)]);
}

function writeFile(root: string, rel: string, data: Buffer | string, mode = 0o644): void {
  const p = join(root, rel);
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, data);
  chmodSync(p, mode);
}

function randomSize(rng: Rng): number {
  const r = rng.next();
  if (r < 0.1) return 0;
  if (r < 0.6) return rng.int(1, 4096);
  if (r < 0.95) return rng.int(4097, 256 * 1024);
  return rng.int(256 * 1024, 2 * 1024 * 1024);
}

/**
 * Creates a deterministic tree in `dir` (which must not exist or be empty):
 * `files` ordinary files spread over nested directories plus a fixed set of
 * special entries (empty file, exec/setuid/setgid bits, sticky dir, read-only
 * file, relative/absolute/dangling symlinks, hardlinks, UTF-8 names, a
 * 24-level deep path, an empty dir, optionally a >64 MiB file). Mtimes are
 * fixed; ownership is whoever runs it (root in CI and the benchmarks).
 */
export function makeFixtureTree(dir: string, opts: FixtureOptions): FixtureInfo {
  if (existsSync(dir) && readdirSync(dir).length > 0) throw new Error(`makeFixtureTree: ${dir} is not empty`);
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o755);
  const rng = new Rng(opts.seed);
  const files: string[] = [];
  const used = new Set<string>();
  for (let i = 0; i < opts.files; i++) {
    const depth = rng.int(0, 3);
    const parts: string[] = [];
    for (let d = 0; d < depth; d++) parts.push(`d${rng.int(0, 5)}-${rng.pick(WORDS)}`);
    let rel = [...parts, `f${i}-${rng.pick(WORDS)}`].join("/");
    while (used.has(rel)) rel += "_";
    used.add(rel);
    const mode = rng.next() < 0.15 ? 0o755 : 0o644;
    writeFile(dir, rel, fileContent(opts.seed, rel, randomSize(rng), rng), mode);
    files.push(rel);
  }

  writeFile(dir, "special/empty", "");
  writeFile(dir, "special/exec.sh", "#!/bin/sh\necho hello\n", 0o755);
  writeFile(dir, "special/setuid-bin", pseudoRandomBytes(opts.seed, "setuid", 3000), 0o4755);
  writeFile(dir, "special/setgid-bin", pseudoRandomBytes(opts.seed, "setgid", 2000), 0o2755);
  writeFile(dir, "special/readonly", "read only\n", 0o444);
  mkdirSync(join(dir, "special/sticky"));
  writeFile(dir, "special/sticky/inside", "in a sticky dir\n");
  chmodSync(join(dir, "special/sticky"), 0o1777);
  mkdirSync(join(dir, "special/empty-dir"));

  const firstFile = files[0] ?? "special/exec.sh";
  symlinkSync(`../${firstFile}`, join(dir, "special/link-rel"));
  symlinkSync("/usr/bin/env", join(dir, "special/link-abs"));
  symlinkSync("does/not/exist", join(dir, "special/link-dangling"));
  symlinkSync("../deep", join(dir, "special/link-dir"));

  writeFile(dir, "hardlinks/orig", pseudoRandomBytes(opts.seed, "hardlink", 5000));
  linkSync(join(dir, "hardlinks/orig"), join(dir, "hardlinks/link1"));
  mkdirSync(join(dir, "hardlinks/sub"));
  linkSync(join(dir, "hardlinks/orig"), join(dir, "hardlinks/sub/link2"));

  const utf8 = ["utf8/ñandú.txt", "utf8/日本語/ファイル", "utf8/emoji-🚀", "utf8/space name", "utf8/Ελληνικά/ßtraße"];
  for (const u of utf8) writeFile(dir, u, `${u}\n`);

  const deepLeaf = ["deep", ...Array.from({ length: 23 }, (_, i) => `l${i + 1}`), "leaf"].join("/");
  writeFile(dir, deepLeaf, "deep leaf\n");

  let large: string | undefined;
  if (opts.largeFile) {
    large = "large/large.bin";
    writeLargeFile(join(dir, large), opts.seed);
  }

  setTreeMtimes(dir, opts.epoch ?? FIXTURE_EPOCH);
  return {
    files,
    special: {
      empty: "special/empty",
      exec: "special/exec.sh",
      setuid: "special/setuid-bin",
      setgid: "special/setgid-bin",
      stickyDir: "special/sticky",
      readonly: "special/readonly",
      symlinks: ["special/link-rel", "special/link-abs", "special/link-dangling", "special/link-dir"],
      hardlinks: ["hardlinks/orig", "hardlinks/link1", "hardlinks/sub/link2"],
      utf8,
      deepLeaf,
      emptyDir: "special/empty-dir",
      ...(large ? { large } : {}),
    },
  };
}

/** Large file written in 4 MiB blocks; every fourth block repeats, so deltas and compression have something to find. */
function writeLargeFile(path: string, seed: number): void {
  mkdirSync(dirname(path), { recursive: true });
  const block = 4 * 1024 * 1024;
  const fd = openSync(path, "w", 0o644);
  try {
    let written = 0;
    for (let i = 0; written < LARGE_FILE_SIZE; i++) {
      const n = Math.min(block, LARGE_FILE_SIZE - written);
      const label = i % 4 === 3 ? "large-repeat" : `large-${i}`;
      writeSync(fd, pseudoRandomBytes(seed, label, n));
      written += n;
    }
  } finally {
    closeSync(fd);
  }
}

export interface DeriveOptions {
  seed: number;
  /** Fraction (0..1) of regular files whose content gets a small in-place edit. */
  modify: number;
  /** Fraction of regular files deleted. */
  remove: number;
  /** Number of new files added under `added/`. */
  add: number;
  epoch?: number;
}

export interface DeriveInfo {
  modified: string[];
  removed: string[];
  added: string[];
}

/**
 * Makes `dst` a copy of `src` changed the way an update changes a tree: some
 * files edited in place (a few bytes rewritten and a tail appended, so
 * bsdiff/rollsum have similar old content to work from), some removed, some
 * new. Deterministic for a given src and seed.
 */
export function deriveTree(src: string, dst: string, opts: DeriveOptions): DeriveInfo {
  if (existsSync(dst)) throw new Error(`deriveTree: ${dst} already exists`);
  cpSync(src, dst, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
  const rng = new Rng(opts.seed);
  const regular = walkTree(dst).filter((e) => e.type === "file" && e.nlink === 1 && e.size > 0);
  const info: DeriveInfo = { modified: [], removed: [], added: [] };
  for (const e of regular) {
    const r = rng.next();
    const p = join(dst, e.path);
    if (r < opts.remove) {
      rmSync(p);
      info.removed.push(e.path);
    } else if (r < opts.remove + opts.modify) {
      const data = readFileSync(p);
      const at = rng.int(0, Math.max(0, data.length - 16));
      pseudoRandomBytes(opts.seed, `edit:${e.path}`, Math.min(16, data.length)).copy(data, at);
      const tail = pseudoRandomBytes(opts.seed, `tail:${e.path}`, rng.int(0, 512));
      writeFileSync(p, Buffer.concat([data, tail]));
      chmodSync(p, e.mode);
      info.modified.push(e.path);
    }
  }
  for (let i = 0; i < opts.add; i++) {
    const rel = `added/s${opts.seed}-${i}`;
    writeFile(dst, rel, fileContent(opts.seed, rel, randomSize(rng), rng), 0o644);
    info.added.push(rel);
  }
  setTreeMtimes(dst, opts.epoch ?? FIXTURE_EPOCH);
  return info;
}
