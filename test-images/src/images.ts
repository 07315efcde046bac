import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  AptError,
  availableVersions,
  compareVersions,
  debFileName,
  downloadDebs,
  formatLock,
  packageRecords,
  parseLock,
  resolveClosure,
  verifyInstallable,
  type Pin,
} from "./apt.js";
import { cpioNewc, gzipDeterministic, type CpioEntry } from "./cpio.js";
import { MANIFEST_NAME, recordTree } from "./manifest.js";
import { fileSha256, setTreeMtimes } from "./tree.js";

export interface ImageSpec {
  description: string;
  roots?: string[];
  base?: string;
  add?: string[];
  remove?: string[];
  prefer: "oldest" | "newest";
  /** Per-package choice: an exact version, "oldest" or "newest". */
  versions: Record<string, string>;
}

export interface ImagesFile {
  epoch: number;
  arch: string;
  images: Record<string, ImageSpec>;
}

/** Directory of the @ostree-ts/test-images package (the loader sets the env var when it runs a bundled copy). */
export function packageDir(): string {
  return process.env.OSTREE_TS_IMAGES_PKGDIR ?? fileURLToPath(new URL("..", import.meta.url));
}

/** Where built trees and downloaded .debs live: $OSTREE_TS_IMAGES_CACHE or test-images/cache. */
export function cacheDir(): string {
  return process.env.OSTREE_TS_IMAGES_CACHE ?? join(packageDir(), "cache");
}

export function loadImages(pkgDir = packageDir()): ImagesFile {
  return JSON.parse(readFileSync(join(pkgDir, "images.json"), "utf8")) as ImagesFile;
}

export const IMAGE_NAMES = ["os-v1", "os-v2", "os-v3"] as const;

/** Roots of an image after applying its base's roots and its add/remove lists. */
export function imageRoots(spec: ImagesFile, name: string): string[] {
  const img = spec.images[name];
  if (!img) throw new Error(`unknown image ${name} (known: ${Object.keys(spec.images).join(", ")})`);
  const base = img.base ? imageRoots(spec, img.base) : (img.roots ?? []);
  const removed = new Set(img.remove ?? []);
  return [...new Set([...base.filter((r) => !removed.has(r)), ...(img.add ?? [])])].sort();
}

export function lockPath(name: string, pkgDir = packageDir()): string {
  return join(pkgDir, "packages", `${name}.lock`);
}

export function readLock(name: string, pkgDir = packageDir()): Pin[] {
  const p = lockPath(name, pkgDir);
  return parseLock(readFileSync(p, "utf8"), p);
}

/**
 * Resolves an image's package set against this machine's apt indices and
 * writes packages/<name>.lock with exact versions and hashes.
 */
export function pinImage(name: string, log: (s: string) => void, pkgDir = packageDir()): Pin[] {
  const spec = loadImages(pkgDir);
  const img = spec.images[name];
  if (!img) throw new Error(`unknown image ${name}`);
  const roots = imageRoots(spec, name);
  // The version chosen for a package can change what it depends on (a kernel
  // meta-package names its ABI), so re-resolve under the pins until no new
  // package shows up.
  const pinned = new Map<string, string>();
  const suites = new Map<string, string>();
  let closure = resolveClosure(roots, pinned);
  for (let round = 0; ; round++) {
    const fresh = [...closure.keys()].filter((p) => !pinned.has(p));
    if (fresh.length === 0) break;
    if (round > 8) throw new AptError(`${name}: package set does not settle under the version policy`);
    const avail = availableVersions(fresh);
    for (const pkg of fresh) {
      const cand = closure.get(pkg) as { version: string };
      const versions = (avail.get(pkg) ?? [{ version: cand.version, suite: "?" }]).slice().sort((a, b) => compareVersions(a.version, b.version));
      const want = img.versions[pkg] ?? img.prefer;
      const pick =
        want === "oldest" ? versions[0] : want === "newest" ? versions[versions.length - 1] : versions.find((v) => v.version === want);
      if (!pick) throw new AptError(`${name}: ${pkg}=${want} is not in the archive (have ${versions.map((v) => v.version).join(", ")})`);
      pinned.set(pkg, pick.version);
      suites.set(pkg, pick.suite);
    }
    closure = resolveClosure(roots, pinned);
  }
  const chosen = [...closure].map(([pkg, c]) => ({ name: pkg, version: c.version, suite: suites.get(pkg) ?? "?" }));
  const off = chosen.filter((c) => pinned.get(c.name) !== c.version);
  if (off.length) throw new AptError(`${name}: apt did not honour the pins for ${off.map((c) => `${c.name} (${c.version} ≠ ${pinned.get(c.name)})`).join(", ")}`);
  verifyInstallable(chosen);
  const recs = packageRecords(chosen);
  const pins: Pin[] = chosen.map((c) => {
    const r = recs.get(`${c.name}=${c.version}`);
    if (!r || !r.sha256) throw new AptError(`${name}: no archive record for ${c.name}=${c.version}`);
    return { ...c, arch: r.arch, sha256: r.sha256, size: r.size, source: r.source };
  });
  mkdirSync(join(pkgDir, "packages"), { recursive: true });
  const text = formatLock(name, pins, [img.description, `roots: ${imageRoots(spec, name).join(" ")}`]);
  writeFileSync(`${lockPath(name, pkgDir)}.tmp`, text);
  renameSync(`${lockPath(name, pkgDir)}.tmp`, lockPath(name, pkgDir));
  log(`${name}: pinned ${pins.length} packages`);
  return pins;
}

export class ImageBuildError extends Error {
  override name = "ImageBuildError";
}

/** Makes sure every pinned .deb is in `<cache>/debs` with the pinned SHA-256, downloading what is missing. */
export function ensureDebs(pins: Pin[], cache: string, opts: { offline?: boolean; log: (s: string) => void }): string[] {
  const debDir = join(cache, "debs");
  mkdirSync(debDir, { recursive: true });
  const missing = pins.filter((p) => !existsSync(join(debDir, debFileName(p))));
  if (missing.length) {
    if (opts.offline) throw new ImageBuildError(`offline and ${missing.length} .debs are not cached (first: ${debFileName(missing[0] as Pin)})`);
    opts.log(`downloading ${missing.length} packages into ${debDir}`);
    downloadDebs(debDir, missing);
  }
  return pins.map((p) => {
    const path = join(debDir, debFileName(p));
    if (!existsSync(path)) throw new ImageBuildError(`apt-get download did not produce ${path}`);
    const sum = fileSha256(path);
    if (sum !== p.sha256) {
      rmSync(path);
      throw new ImageBuildError(`${path}: sha256 ${sum} but the lock pins ${p.sha256}; removed it, run again to re-download`);
    }
    return path;
  });
}

/** Extracts a .deb's data into `root` without running maintainer scripts; existing directory symlinks (merged /usr) are kept. */
function extractDeb(deb: string, root: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const d = spawn("dpkg-deb", ["--fsys-tarfile", deb], { stdio: ["ignore", "pipe", "pipe"] });
    const t = spawn("tar", ["-x", "--keep-directory-symlink", "--no-same-owner", "-p", "-f", "-", "-C", root], { stdio: ["pipe", "ignore", "pipe"] });
    d.stdout.pipe(t.stdin);
    let err = "";
    d.stderr.on("data", (b) => (err += b));
    t.stderr.on("data", (b) => (err += b));
    let pending = 2;
    let failed = false;
    const done = (who: string) => (code: number | null) => {
      if (code !== 0 && !failed) {
        failed = true;
        reject(new ImageBuildError(`extracting ${deb}: ${who} exited ${code}: ${err.trim()}`));
      }
      if (--pending === 0 && !failed) resolve();
    };
    d.on("close", done("dpkg-deb"));
    t.on("close", done("tar"));
  });
}

/** Modules copied into the generated initramfs when the kernel has them. */
const INITRAMFS_MODULES = [
  "kernel/drivers/block/virtio_blk.ko",
  "kernel/drivers/scsi/virtio_scsi.ko",
  "kernel/drivers/net/virtio_net.ko",
  "kernel/drivers/net/net_failover.ko",
  "kernel/net/core/failover.ko",
  "kernel/fs/overlayfs/overlay.ko",
  "kernel/fs/ext4/ext4.ko",
  "kernel/fs/jbd2/jbd2.ko",
  "kernel/fs/mbcache.ko",
  "kernel/lib/crc16.ko",
  "kernel/crypto/crc32c_generic.ko",
  "kernel/arch/x86/crypto/crc32c-intel.ko",
];

const INIT_SCRIPT = `#!/bin/busybox sh
# Minimal initramfs init generated by ostree-ts test-images: load the disk and
# filesystem modules, mount the root named by root= read-only and switch to it.
/bin/busybox --install -s /bin
mkdir -p /proc /sys /dev /sysroot
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /etc/modules); do modprobe "$m"; done
root=$(sed -n 's/.*root=\\([^ ]*\\).*/\\1/p' /proc/cmdline)
mount -o ro "$root" /sysroot || exec sh
exec switch_root /sysroot /sbin/init
`;

/**
 * A small real initramfs (newc cpio, gzip) for `kver`: busybox-static, an
 * init script, and the virtio/ext4/overlay modules of that kernel with
 * their modules.dep. Building one with initramfs-tools needs a chroot and
 * maintainer scripts, which this builder avoids.
 */
export function buildInitramfs(root: string, kver: string, epoch: number): Buffer {
  const modRoot = join(root, "usr/lib/modules", kver);
  const busybox = join(root, "usr/bin/busybox");
  if (!existsSync(busybox)) throw new ImageBuildError(`${busybox} missing: the image needs busybox-static for its initramfs`);
  const mods = INITRAMFS_MODULES.filter((m) => existsSync(join(modRoot, m)));
  const dirs = new Set<string>(["bin", "dev", "etc", "proc", "sys", "sysroot", "lib", "lib/modules", `lib/modules/${kver}`]);
  for (const m of mods) {
    const parts = m.split("/");
    for (let i = 1; i < parts.length; i++) dirs.add(`lib/modules/${kver}/${parts.slice(0, i).join("/")}`);
  }
  const entries: CpioEntry[] = [...dirs].sort().map((d) => ({ name: d, type: "dir" as const, mode: 0o755 }));
  entries.push({ name: "bin/busybox", type: "file", mode: 0o755, data: readFileSync(busybox) });
  entries.push({ name: "bin/sh", type: "symlink", mode: 0o777, data: "busybox" });
  entries.push({ name: "init", type: "file", mode: 0o755, data: INIT_SCRIPT });
  const names = mods.map((m) => m.split("/").pop()?.replace(/\.ko$/, "") ?? m);
  entries.push({ name: "etc/modules", type: "file", mode: 0o644, data: `${names.join("\n")}\n` });
  for (const m of mods) entries.push({ name: `lib/modules/${kver}/${m}`, type: "file", mode: 0o644, data: readFileSync(join(modRoot, m)) });
  const depLines = readFileSync(join(modRoot, "modules.dep"), "utf8")
    .split("\n")
    .filter((l) => mods.includes(l.split(":")[0] ?? ""))
    .map((l) => {
      const [mod, deps = ""] = l.split(":");
      return `${mod}:${deps.split(" ").filter((d) => mods.includes(d)).map((d) => ` ${d}`).join("")}`;
    });
  entries.push({ name: `lib/modules/${kver}/modules.dep`, type: "file", mode: 0o644, data: `${depLines.join("\n")}\n` });
  return gzipDeterministic(cpioNewc(entries, epoch));
}

/**
 * Runs the image's own depmod (kmod from the tree, through the tree's
 * dynamic loader) so modules.dep & co. do not depend on the host's kmod.
 */
function runDepmod(root: string, kver: string): void {
  const libs = ["usr/lib/x86_64-linux-gnu", "lib/x86_64-linux-gnu"].map((l) => join(root, l)).join(":");
  const args = ["--library-path", libs, "--argv0", "depmod", join(root, "usr/bin/kmod"), "-b", root, kver];
  const r = spawnSync(join(root, "usr/lib64/ld-linux-x86-64.so.2"), args, { encoding: "utf8" });
  if (r.status !== 0) throw new ImageBuildError(`depmod -b ${root} ${kver} (the image's kmod) failed: ${r.error?.message ?? r.stderr}`);
}

function passwdFiles(root: string, epoch: number): void {
  const master = join(root, "usr/share/base-passwd");
  const passwd = readFileSync(join(master, "passwd.master"), "utf8");
  const group = readFileSync(join(master, "group.master"), "utf8");
  const day = Math.floor(epoch / 86400);
  const users = passwd.split("\n").filter(Boolean).map((l) => l.split(":")[0]);
  const groups = group.split("\n").filter(Boolean).map((l) => l.split(":")[0]);
  const w = (p: string, s: string, mode: number) => {
    writeFileSync(join(root, p), s);
    chmodSync(join(root, p), mode);
  };
  w("etc/passwd", passwd, 0o644);
  w("etc/group", group, 0o644);
  w("etc/shadow", users.map((u) => `${u}:*:${day}:0:99999:7:::\n`).join(""), 0o640);
  w("etc/gshadow", groups.map((g) => `${g}:*::\n`).join(""), 0o640);
  w("etc/hostname", "ostree-ts-test\n", 0o644);
  w("etc/machine-id", "", 0o444);
}

/** The kernel version(s) under usr/lib/modules. */
export function kernelVersions(root: string): string[] {
  const d = join(root, "usr/lib/modules");
  return existsSync(d) ? readdirSync(d).sort() : [];
}

/**
 * Assembles `name` from its lock into `<cache>/<name>`: merged-/usr skeleton,
 * every .deb's data in lock order, passwd/group from base-passwd, depmod,
 * vmlinuz + generated initramfs under /usr/lib/modules/<kver>/ (and Debian's
 * /boot names), fixed mtimes, uid/gid 0. Then derives `<name>-ostree`.
 */
export async function buildImage(name: string, opts: { cache?: string; offline?: boolean; log: (s: string) => void }): Promise<void> {
  const pkgDir = packageDir();
  const spec = loadImages(pkgDir);
  const cache = opts.cache ?? cacheDir();
  const pins = readLock(name, pkgDir);
  const lockSum = createHash("sha256").update(readFileSync(lockPath(name, pkgDir))).digest("hex");
  const debs = ensureDebs(pins, cache, opts);
  const out = join(cache, name);
  const tmp = `${out}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  chmodSync(tmp, 0o755);
  for (const d of ["usr/bin", "usr/sbin", "usr/lib", "usr/lib64"]) mkdirSync(join(tmp, d), { recursive: true });
  for (const l of ["bin", "sbin", "lib", "lib64"]) symlinkSync(`usr/${l}`, join(tmp, l));
  opts.log(`${name}: extracting ${debs.length} packages`);
  for (const deb of debs) await extractDeb(deb, tmp);

  passwdFiles(tmp, spec.epoch);
  for (const d of ["proc", "sys", "dev", "run", "tmp", "boot"]) mkdirSync(join(tmp, d), { recursive: true });
  chmodSync(join(tmp, "tmp"), 0o1777);

  const kvers = kernelVersions(tmp);
  if (kvers.length !== 1) throw new ImageBuildError(`${name}: expected one kernel under usr/lib/modules, found ${kvers.join(", ") || "none"}`);
  const kver = kvers[0] as string;
  runDepmod(tmp, kver);
  const modDir = join(tmp, "usr/lib/modules", kver);
  copyFileSync(join(tmp, "boot", `vmlinuz-${kver}`), join(modDir, "vmlinuz"));
  writeFileSync(join(modDir, "initramfs.img"), buildInitramfs(tmp, kver, spec.epoch));
  copyFileSync(join(modDir, "initramfs.img"), join(tmp, "boot", `initrd.img-${kver}`));
  for (const f of ["vmlinuz", "initramfs.img"]) chmodSync(join(modDir, f), 0o644);
  chmodSync(join(tmp, "boot", `initrd.img-${kver}`), 0o644);

  setTreeMtimes(tmp, spec.epoch);
  rmSync(out, { recursive: true, force: true });
  renameSync(tmp, out);
  const manifest = join(cache, MANIFEST_NAME);
  const e = recordTree(manifest, cache, name, { kver, lock: lockSum });
  opts.log(`${name}: ${e.files} files, ${(e.bytes / 1e6).toFixed(1)} MB, kernel ${kver}, digest ${e.digest.slice(0, 16)}`);

  makeOstreeReady(out, `${out}-ostree`, spec.epoch);
  const eo = recordTree(manifest, cache, `${name}-ostree`, { kver, lock: lockSum });
  opts.log(`${name}-ostree: ${eo.files} files, ${(eo.bytes / 1e6).toFixed(1)} MB, digest ${eo.digest.slice(0, 16)}`);
}

/** Top-level directories that ostree systems keep as symlinks into /var (or /run), per ostree's "adapting existing" layout. */
const VAR_LINKS: Array<[string, string]> = [
  ["home", "var/home"],
  ["root", "var/roothome"],
  ["opt", "var/opt"],
  ["srv", "var/srv"],
  ["mnt", "var/mnt"],
  ["media", "run/media"],
  ["usr/local", "../var/usrlocal"],
];

/**
 * The ostree-ready form of a tree, written to `dst` as hardlinks to `src`'s
 * files (nothing in it is modified in place): /etc moved to /usr/etc, /var
 * and /boot emptied, /home, /root, /opt, /srv, /mnt, /media, /usr/local made
 * symlinks into /var or /run, /sysroot + /ostree -> sysroot/ostree added.
 */
export function makeOstreeReady(src: string, dst: string, epoch: number): void {
  const tmp = `${dst}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  const cp = spawnSync("cp", ["-al", src, tmp], { encoding: "utf8" });
  if (cp.status !== 0) throw new ImageBuildError(`cp -al ${src} ${tmp}: ${cp.stderr}`);
  renameSync(join(tmp, "etc"), join(tmp, "usr/etc"));
  for (const d of ["var", "boot"]) {
    rmSync(join(tmp, d), { recursive: true, force: true });
    mkdirSync(join(tmp, d));
    chmodSync(join(tmp, d), 0o755);
  }
  for (const [link, target] of VAR_LINKS) {
    rmSync(join(tmp, link), { recursive: true, force: true });
    mkdirSync(dirname(join(tmp, link)), { recursive: true });
    symlinkSync(target, join(tmp, link));
  }
  mkdirSync(join(tmp, "sysroot"));
  symlinkSync("sysroot/ostree", join(tmp, "ostree"));
  setTreeMtimes(tmp, epoch);
  rmSync(dst, { recursive: true, force: true });
  renameSync(tmp, dst);
}
