import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { chmodSync, chownSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { listAttributesSync, getAttributeSync } from "@napi-rs/xattr";
import type { CheckoutOptions } from "../src/index.js";

/** inode → `objects/xx/….file` (or the uncompressed cache) for every stored file object. */
export function objectInodes(repoPath: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const top of ["objects", "uncompressed-objects-cache"]) {
    let prefixes: string[];
    try {
      prefixes = readdirSync(join(repoPath, top));
    } catch {
      continue;
    }
    for (const p of prefixes) {
      for (const n of readdirSync(join(repoPath, top, p))) {
        if (!n.endsWith(".file")) continue;
        out.set(lstatSync(join(repoPath, top, p, n)).ino, `${top}/${p}/${n}`);
      }
    }
  }
  return out;
}

/**
 * Everything ostree's checkout decides about a tree, one line per path:
 * type, mode, uid/gid, xattrs, content hash or symlink target, which object
 * (if any) a file shares its inode with, and whether its mtime is 0.
 * Inodes shared between two checkout paths are reported by group index.
 */
export function snapshot(root: string, repoPath: string): string[] {
  const inodes = objectInodes(repoPath);
  const lines: string[] = [];
  const walk = (rel: string) => {
    const p = rel ? join(root, rel) : root;
    const st = lstatSync(p);
    let xattrs = "";
    try {
      xattrs = listAttributesSync(p)
        .sort()
        .map((n) => `${n}=${Buffer.from(getAttributeSync(p, n) ?? []).toString("hex")}`)
        .join(",");
    } catch {
      xattrs = "?";
    }
    const mode = (st.mode & 0o7777).toString(8).padStart(4, "0");
    let kind: string;
    let extra = "";
    if (st.isDirectory()) kind = "d";
    else if (st.isSymbolicLink()) {
      kind = "l";
      extra = `-> ${readlinkSync(p)}`;
    } else if (st.isFile()) {
      kind = "f";
      extra = createHash("sha256").update(readFileSync(p)).digest("hex").slice(0, 16);
    } else kind = "?";
    const obj = inodes.get(st.ino);
    const link = obj ? ` link=${obj}` : st.isFile() ? ` nlink=${st.nlink}` : "";
    const mtime0 = st.isSymbolicLink() ? "" : ` mtime0=${st.mtimeMs === 0}`;
    lines.push(`${kind} ${mode} ${st.uid}:${st.gid} /${rel} ${extra} [${xattrs}]${link}${mtime0}`);
    if (st.isDirectory()) for (const n of readdirSync(p).sort()) walk(rel ? `${rel}/${n}` : n);
  };
  walk("");
  return lines;
}

/** Map `ostree checkout` flags to library options, as the CLI does (incl. its legacy uncompressed-cache path). */
export function optionsFromFlags(flags: string[]): CheckoutOptions {
  const o: CheckoutOptions = {};
  let atPath = false;
  for (const f of flags) {
    if (f === "-U" || f === "--user-mode") o.userMode = true;
    else if (f === "--union") o.union = true;
    else if (f === "--union-add") (o.unionAdd = true), (atPath = true);
    else if (f === "--union-identical") (o.unionIdentical = true), (atPath = true);
    else if (f === "--whiteouts") (o.whiteouts = true), (atPath = true);
    else if (f === "-H" || f === "--require-hardlinks") (o.requireHardlinks = true), (atPath = true);
    else if (f === "-C" || f === "--force-copy") (o.forceCopy = true), (atPath = true);
    else if (f === "-z") (o.forceCopyZerosized = true), (atPath = true);
    else if (f === "-M" || f === "--bareuseronly-dirs") (o.bareuseronlyDirs = true), (atPath = true);
    else if (f === "--disable-cache") atPath = true;
    else if (f.startsWith("--subpath=")) o.subpath = f.slice("--subpath=".length);
    else if (f.startsWith("--skip-list=")) {
      o.skipList = readFileSync(f.slice("--skip-list=".length), "utf8").split("\n").filter((l) => l !== "");
      atPath = true;
    } else throw new Error(`unmapped flag ${f}`);
  }
  o.uncompressedCache = !atPath;
  return o;
}

/**
 * A tree with what checkouts must get right: symlinks (relative, absolute,
 * dangling), setuid/setgid/sticky, an unreadable file, empty files, UTF-8
 * names, deep nesting, xattrs, foreign ownership, odd directory modes.
 */
export function makeRichTree(dir: string): void {
  const script = `
set -e
T="$1"
rm -rf "$T"; mkdir -p "$T"
cd "$T"
printf 'hello\\n' > hello.txt
: > empty1; : > empty2
printf 'x' > suid; chmod 4755 suid
printf 'y' > sgid; chmod 2711 sgid
printf 'z' > noread; chmod 0200 noread
printf 'owned' > owned; chown 1000:1001 owned
ln -s hello.txt rel-link; ln -s /etc/passwd abs-link; ln -s does-not-exist dangling
ln -s ../.. up-link
mkdir -p 'ünïcödé/日本語'; printf 'utf8\\n' > 'ünïcödé/日本語/ファイル.txt'
mkdir -p a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p; printf 'deep' > a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/leaf
mkdir sticky; chmod 1777 sticky; printf 's' > sticky/f
mkdir private; chmod 0700 private; printf 'p' > private/f
mkdir owneddir; chown 1000:1000 owneddir; printf 'o' > owneddir/f
mkdir emptydir
printf 'same' > dup1; printf 'same' > dup2
head -c 3000000 /dev/zero | tr '\\0' 'q' > big
printf 'x' > xattr-file; setfattr -n user.alpha -v hello xattr-file; setfattr -n user.zeta -v 1 xattr-file
mkdir xattr-dir; setfattr -n user.dir -v yes xattr-dir
`;
  const path = join(dir, "mkrich.sh");
  writeFileSync(path, script);
  execFileSync("sh", [path, join(dir, "rich")], { stdio: "pipe" });
}

/**
 * Changes of every kind to a copy of makeRichTree's tree, for diff tests:
 * a modified, a removed and an added file, a removed and an added directory,
 * symlink → directory and directory → symlink, a mode, an owner and an xattr.
 */
export function mutateRichTree(d: string): void {
  writeFileSync(join(d, "hello.txt"), "changed\n");
  unlinkSync(join(d, "empty1"));
  rmSync(join(d, "a", "b"), { recursive: true });
  mkdirSync(join(d, "newdir", "deeper"), { recursive: true });
  writeFileSync(join(d, "newdir", "deeper", "f"), "n");
  unlinkSync(join(d, "rel-link"));
  mkdirSync(join(d, "rel-link"));
  rmSync(join(d, "emptydir"), { recursive: true });
  symlinkSync("x", join(d, "emptydir"));
  chmodSync(join(d, "private"), 0o755);
  chownSync(join(d, "owned"), 7, 7);
  execFileSync("setfattr", ["-n", "user.new", "-v", "1", join(d, "dup1")]);
}
