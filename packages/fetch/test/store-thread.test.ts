import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, expect, test } from "vitest";
import { bundleLikeCli, describeInterop, ostree, ostreeAsync, runOstree, tempDir } from "@ostree-ts/interop";
import { listRefs, ObjectType, readRef, Repo } from "@ostree-ts/objstore";
import type * as FetchModule from "../src/index.js";
import type * as StorePoolModule from "../src/store-pool.js";
import { staticServer, type StaticServer } from "./helpers.js";

/*
 * The store thread runs JavaScript, so these tests bundle the package as the
 * CLI does (esbuild, code splitting, store-pool.ts as its own chunk) and pull
 * through that bundle. Its node_modules link is objstore's, where the native
 * modules (fs-ext, @napi-rs/xattr) the bundle requires at run time live.
 */
const PKG = fileURLToPath(new URL("..", import.meta.url));
const OUT = join(PKG, "node_modules", ".cache", `store-thread-test-${process.pid}`);

let tmp: { path: string; cleanup: () => void };
let src: string;
let commit: string;
let srv: StaticServer;
let fetchMod: typeof FetchModule;
let poolMod: typeof StorePoolModule;

/** 300 small files (so the pull starts the thread), one of 1.5 MiB (inflated off the 1 MiB fast path), a symlink, odd modes. */
function mkTree(dir: string): void {
  for (let d = 0; d < 10; d++) {
    mkdirSync(join(dir, `d${d}`, "sub"), { recursive: true });
    for (let f = 0; f < 30; f++) writeFileSync(join(dir, `d${d}`, f % 2 ? "sub" : "", `f${f}`), `dir ${d} file ${f}\n`.repeat(f + 1), { mode: f % 5 ? 0o644 : 0o755 });
  }
  const big = Buffer.alloc(1536 * 1024);
  for (let i = 0; i < big.length; i += 1024) randomBytes(256).copy(big, i);
  writeFileSync(join(dir, "big.bin"), big);
  symlinkSync("d0/f0", join(dir, "link"));
  writeFileSync(join(dir, "empty"), "");
}

function ostreeFsck(path: string): void {
  const r = runOstree(["fsck", `--repo=${path}`]);
  expect(r.stderr + r.stdout).toMatch(/no errors found/);
  expect(r.status).toBe(0);
}

async function clientRepo(name: string): Promise<Repo> {
  const path = join(tmp.path, name);
  ostree(["init", `--repo=${path}`, "--mode=bare-user"]);
  ostree(["remote", "add", `--repo=${path}`, "--no-gpg-verify", "origin", srv.url]);
  return Repo.open(path);
}

describeInterop("content stored by the store thread (CLI-like bundle)", () => {
  beforeAll(async () => {
    tmp = tempDir("fetch-store-thread-");
    await bundleLikeCli({ entryPoints: { index: join(PKG, "src/index.ts"), "store-pool": join(PKG, "src/store-pool.ts") }, outdir: OUT, external: ["@napi-rs/xattr", "fs-ext"] });
    symlinkSync(join(PKG, "..", "objstore", "node_modules"), join(OUT, "node_modules"));
    fetchMod = (await import(pathToFileURL(join(OUT, "index.mjs")).href)) as typeof FetchModule;
    poolMod = (await import(pathToFileURL(join(OUT, "store-pool.mjs")).href)) as typeof StorePoolModule;
    src = join(tmp.path, "src");
    ostree(["init", `--repo=${src}`, "--mode=archive"]);
    mkTree(join(tmp.path, "tree"));
    commit = ostree(["commit", `--repo=${src}`, "-b", "os", "--no-xattrs", "-s", "s", join(tmp.path, "tree")]).trim();
    srv = await staticServer(src);
  }, 120_000);
  afterAll(async () => {
    await srv?.close();
    rmSync(OUT, { recursive: true, force: true });
    tmp?.cleanup();
  });

  test("a pull through the thread stores what ostree's pull stores, and ostree fsck passes", async () => {
    const ours = await clientRepo("ours");
    const res = await fetchMod.pull(ours, "origin", { refs: ["os"] });
    // 300+ content objects: past the first 64 the thread takes over once it is up.
    expect(res.storedOnThread).toBeGreaterThan(0);
    expect(await readRef(ours, { kind: "remote", remote: "origin" }, "os")).toBe(commit);
    ostreeFsck(ours.path);
    const theirs = join(tmp.path, "theirs");
    ostree(["init", `--repo=${theirs}`, "--mode=bare-user"]);
    ostree(["remote", "add", `--repo=${theirs}`, "--no-gpg-verify", "origin", srv.url]);
    // Not spawnSync: the server runs in this process.
    await ostreeAsync(["pull", `--repo=${theirs}`, "origin", "os"]);
    const listing = (repo: string) => ostree(["ls", `--repo=${repo}`, "-R", "-X", "-C", "origin:os"]);
    expect(listing(ours.path)).toBe(listing(theirs));
    // Stored objects are byte-identical to ostree's (payload, and the user.ostreemeta xattr fsck checked).
    for (const name of ["big.bin", "d3/sub/f7", "empty"]) {
      expect(ostree(["cat", `--repo=${ours.path}`, "origin:os", `/${name}`])).toBe(ostree(["cat", `--repo=${theirs}`, "origin:os", `/${name}`]));
    }
  });

  test("a delta of several parts is applied by both threads; ostree fsck passes", async () => {
    // v2: new random content in 6 files of 400 KiB, a delta of 1 MB parts (several parts), and a summary listing it.
    const tree = join(tmp.path, "tree");
    for (let i = 0; i < 6; i++) writeFileSync(join(tree, `d${i}`, `new${i}.bin`), randomBytes(400 * 1024));
    const c2 = ostree(["commit", `--repo=${src}`, "-b", "os2", "--no-xattrs", "-s", "s2", `--parent=${commit}`, tree]).trim();
    ostree(["static-delta", "generate", `--repo=${src}`, `--from=${commit}`, `--to=${c2}`, "--max-chunk-size=1"]);
    ostree(["summary", "-u", `--repo=${src}`]);
    const repo = await clientRepo("delta");
    await ostreeAsync(["pull", `--repo=${repo.path}`, "origin", "os"]);
    ostree(["refs", `--repo=${repo.path}`, `--create=origin:os2`, commit]);
    srv.log.length = 0;
    const res = await fetchMod.pull(repo, "origin", { refs: ["os2"], requireStaticDeltas: true });
    expect(res.deltaParts).toBeGreaterThanOrEqual(3);
    expect(res.storedOnThread).toBeGreaterThan(0);
    // Everything came in the parts: no object was fetched loose.
    expect(srv.log.filter((l) => l.path.endsWith(".filez"))).toHaveLength(0);
    expect(await readRef(repo, { kind: "remote", remote: "origin" }, "os2")).toBe(c2);
    ostreeFsck(repo.path);
  });

  test("the thread refuses a corrupted object with the main thread's error and stores nothing under its name", async () => {
    const repo = await clientRepo("corrupt");
    const pool = poolMod.StorePool.start(repo, { fsync: false, bareUserOnly: false, threads: 1 });
    expect(pool).not.toBeNull();
    try {
      const big = findObject(src, "big.bin");
      const filez = readFileSync(join(src, "objects", big.slice(0, 2), `${big.slice(2)}.filez`));
      // store() moves a body's own ArrayBuffer to the thread: each call gets a copy.
      const bad = Buffer.from(filez);
      bad[bad.length - 100] = bad[bad.length - 100]! ^ 0xff;
      await expect(pool!.store(big, Buffer.from(bad))).rejects.toMatchObject({ name: "CorruptObjectError" });
      // A flipped bit in the deflate stream either breaks it or changes the content: both are refused.
      await expect(pool!.store(big, Buffer.from(bad))).rejects.toThrow(new RegExp(`Corrupted file object ${big}: (corrupted compressed payload|Corrupted file object; checksum expected='${big}' actual='[0-9a-f]{64}')`));
      expect(repo.storedObjectPath(big, ObjectType.File)).toBeNull();
      expect(await pool!.store(big, Buffer.from(filez))).toBe(1536 * 1024);
      expect(repo.storedObjectPath(big, ObjectType.File)).not.toBeNull();
      // A content object sent under another object's name: the checksum check names both.
      const other = findObject(src, "d0/f0");
      await expect(pool!.store(other, Buffer.from(filez))).rejects.toThrow(`Corrupted file object; checksum expected='${other}' actual='${big}'`);
      expect(repo.storedObjectPath(other, ObjectType.File)).toBeNull();
      expect(pool!.stored).toBe(1);
      expect(await listRefs(repo)).toEqual([]);
    } finally {
      await pool!.close();
    }
  });

  test("reservations are bounded by objects and by received bytes, and granted in order", async () => {
    const repo = await clientRepo("reserve");
    const pool = poolMod.StorePool.start(repo, { fsync: false, bareUserOnly: false, threads: 1 })!;
    try {
      const granted: number[] = [];
      const first = await Promise.all(Array.from({ length: 48 }, () => pool.reserve()));
      const waiting = [48, 49, 50].map((n) => pool.reserve().then((r) => (granted.push(n), r)));
      await new Promise((r) => setTimeout(r, 20));
      expect(granted).toEqual([]);
      // Two places free, but the bodies still held fill the byte budget: nobody gets in.
      first[0]!.hold(3 << 20);
      first[1]!.hold(1 << 20);
      first[2]!.release();
      first[3]!.release();
      await new Promise((r) => setTimeout(r, 20));
      expect(granted).toEqual([]);
      first[0]!.release();
      first[0]!.release();
      await new Promise((r) => setTimeout(r, 20));
      expect(granted).toEqual([48, 49, 50]);
      for (const r of [...first.slice(1), ...(await Promise.all(waiting))]) r.release();
    } finally {
      await pool.close();
    }
  });
});

/** The content checksum of a file in the source commit (from `ostree ls -C`). */
function findObject(repo: string, path: string): string {
  const line = ostree(["ls", `--repo=${repo}`, "-C", "os", `/${path}`]).trim();
  return line.split(/\s+/)[4]!;
}
