import { mkdirSync, readdirSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { expect } from "vitest";
import { ostree, runOstree } from "./index.js";

/** Deterministic pseudo-random bytes (xorshift32), so test versions differ only where a test says. */
export function xorshiftBytes(n: number, seed: number): Buffer {
  const out = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/**
 * A small two-version tree for delta tests: a 2.5 MB incompressible library (a
 * fallback object in scratch deltas with --min-fallback-size=1), a binary with
 * scattered edits (bsdiff), text files, one new file in v2 and a symlink.
 */
export function makeDeltaTestTree(dir: string, version: 1 | 2): void {
  mkdirSync(join(dir, "usr/bin"), { recursive: true });
  mkdirSync(join(dir, "usr/lib"), { recursive: true });
  mkdirSync(join(dir, "etc"), { recursive: true });
  const big = xorshiftBytes(2_500_000, 7);
  if (version === 2) big.writeUInt32BE(0xdeadbeef, 1_000_000);
  writeFileSync(join(dir, "usr/lib/big.so"), big);
  const bin = xorshiftBytes(200_000, 11);
  if (version === 2) for (let i = 0; i < 40; i++) bin[i * 4000] = bin[i * 4000]! ^ 0x5a;
  writeFileSync(join(dir, "usr/bin/app"), bin, { mode: 0o755 });
  for (let i = 0; i < 60; i++) {
    writeFileSync(join(dir, "usr/lib", `mod${i}.txt`), `module ${i}\n${"x".repeat(i * 50)}\n${i % 10 === 0 ? `v${version}` : ""}`);
  }
  writeFileSync(join(dir, "etc/os-release"), `VERSION=${version}\n`);
  if (version === 2) writeFileSync(join(dir, "usr/lib/new.txt"), "only in v2\n");
  symlinkSync("lib/big.so", join(dir, "usr/libbig.so"));
}

/**
 * An archive repo made by real `ostree` at `repo` holding makeDeltaTestTree
 * v1 then v2 (trees built under `workDir/t1`, `workDir/t2`) on branch
 * `os/x86_64`, with fixed timestamps so the commit checksums are stable.
 * Returns the two commits.
 */
export function makeDeltaTestRepo(repo: string, workDir: string): { c1: string; c2: string } {
  ostree(["init", `--repo=${repo}`, "--mode=archive"]);
  const commit = (version: 1 | 2, timestamp: string) => {
    const tree = join(workDir, `t${version}`);
    makeDeltaTestTree(tree, version);
    return ostree(["commit", `--repo=${repo}`, "-b", "os/x86_64", "--no-xattrs", `--timestamp=${timestamp}`, "-s", `v${version}`, tree]).trim();
  };
  return { c1: commit(1, "2021-01-01T00:00:00Z"), c2: commit(2, "2021-02-01T00:00:00Z") };
}

/** Assert that real `ostree fsck` finds the repository clean. */
export function expectOstreeFsckClean(path: string): void {
  const r = runOstree(["fsck", `--repo=${path}`]);
  expect(r.stderr + r.stdout).not.toMatch(/corrupt|invalid/i);
  expect(r.status).toBe(0);
}

/** Bytes of one static delta directory on disk: its superblock and its numbered parts. */
export function deltaDirBytes(dir: string): { superblock: number; parts: number } {
  let parts = 0;
  for (const f of readdirSync(dir)) if (/^\d+$/.test(f)) parts += statSync(join(dir, f)).size;
  return { superblock: statSync(join(dir, "superblock")).size, parts };
}
