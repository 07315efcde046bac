import { randomBytes } from "node:crypto";
import { cpSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, expect, test } from "vitest";
import { bundleLikeCli, describeInterop, expectOstreeFsckClean, ostree, ostreeAsync, tempDir } from "@ostree-ts/interop";
import { decodePartPayload, decodeSuperblock, deltaName, encodePartPayload, encodeSuperblock, generateDelta, partFileBytes, partPath, sha256Hex, superblockPath } from "@ostree-ts/deltas";
import { readRef, Repo } from "@ostree-ts/objstore";
import type * as FetchModule from "../src/index.js";
import { staticServer, type StaticServer } from "./helpers.js";

/*
 * A static delta of several parts is executed by the main thread and the
 * store thread at once (applyPartsTwoThreads): the main thread takes part 0
 * and the thread part 1 (both take their first part before either awaits). These tests break part 1 so that it fails inside the
 * thread, and check what the pull leaves behind. The thread runs JavaScript,
 * so the package is bundled as the CLI bundles it (see store-thread.test.ts).
 */
const PKG = fileURLToPath(new URL("..", import.meta.url));
const OUT = join(PKG, "node_modules", ".cache", `store-thread-delta-test-${process.pid}`);

let tmp: { path: string; cleanup: () => void };
let src: string;
let c1: string;
let c2: string;
let name: string;
let good: StaticServer;
let fetchMod: typeof FetchModule;
let n = 0;

const TARGET = { kind: "remote", remote: "origin" } as const;

/** A bare-user client holding c1 (pulled by ostree), with origin:os2 at c1. */
async function clientAtC1(): Promise<Repo> {
  const path = join(tmp.path, `client-${n++}`);
  ostree(["init", `--repo=${path}`, "--mode=bare-user"]);
  ostree(["remote", "add", `--repo=${path}`, "--no-gpg-verify", "origin", good.url]);
  // Not spawnSync: the server runs in this process.
  await ostreeAsync(["pull", `--repo=${path}`, "origin", "os"]);
  ostree(["refs", `--repo=${path}`, `--create=origin:os2`, c1]);
  return Repo.open(path);
}

/** A copy of the source repo whose part 1 `edit` rewrites (the superblock and summary follow when `resign`), served. */
async function brokenServer(label: string, edit: (part: Uint8Array) => Uint8Array, resign: boolean): Promise<StaticServer> {
  const dir = join(tmp.path, `bad-${label}`);
  cpSync(src, dir, { recursive: true });
  const bytes = edit(new Uint8Array(readFileSync(join(dir, partPath(c1, c2, 1)))));
  writeFileSync(join(dir, partPath(c1, c2, 1)), bytes);
  if (resign) {
    const sbPath = join(dir, superblockPath(c1, c2));
    const sb = decodeSuperblock(new Uint8Array(readFileSync(sbPath)));
    sb.parts[1] = { ...sb.parts[1]!, checksum: sha256Hex(bytes), size: bytes.length };
    writeFileSync(sbPath, encodeSuperblock({ ...sb, endianness: "l" }));
    ostree(["summary", "-u", `--repo=${dir}`]);
  }
  return staticServer(dir);
}

/** Pulls os2 (from `url` when given); the error it fails with, or null. */
async function pullFails(repo: Repo, url?: string): Promise<unknown> {
  try {
    await fetchMod.pull(repo, "origin", { refs: ["os2"], requireStaticDeltas: true, ...(url ? { url } : {}) });
  } catch (e) {
    return e;
  }
  return null;
}

/** The pull failed with a PullError matching `message`; the ref did not move, c2 is partial, ostree fsck passes. */
async function expectFailedCleanly(repo: Repo, err: unknown, message: RegExp): Promise<void> {
  expect(String(err)).toMatch(message);
  expect(err).toBeInstanceOf(fetchMod.PullError);
  expect(await readRef(repo, TARGET, "os2")).toBe(c1);
  expect(await repo.commitPartialState(c2)).not.toBeNull();
  expectOstreeFsckClean(repo.path);
}

/**
 * A second pull from the good server completes and fetches neither part 0
 * (stored by the main thread before the pull failed) nor any loose object.
 */
async function expectResumes(repo: Repo): Promise<void> {
  good.log.length = 0;
  const res = await fetchMod.pull(repo, "origin", { refs: ["os2"], requireStaticDeltas: true });
  expect(res.refs[0]).toEqual({ ref: "os2", checksum: c2, previous: c1 });
  const paths = good.log.map((l) => l.path);
  expect(paths).toContain(partPath(c1, c2, 1));
  expect(paths).not.toContain(partPath(c1, c2, 0));
  expect(paths.filter((p) => p.endsWith(".filez"))).toEqual([]);
  expect(await readRef(repo, TARGET, "os2")).toBe(c2);
  expect(await repo.commitPartialState(c2)).toBeNull();
  expectOstreeFsckClean(repo.path);
}

describeInterop("delta parts failing in the store thread (CLI-like bundle)", () => {
  beforeAll(async () => {
    tmp = tempDir("fetch-store-thread-delta-");
    await bundleLikeCli({ entryPoints: { index: join(PKG, "src/index.ts") }, outdir: OUT, external: ["@napi-rs/xattr", "fs-ext"] });
    // The bundle requires its native modules at run time; objstore's node_modules has them.
    symlinkSync(join(PKG, "..", "objstore", "node_modules"), join(OUT, "node_modules"));
    fetchMod = (await import(pathToFileURL(join(OUT, "index.mjs")).href)) as typeof FetchModule;
    src = join(tmp.path, "src");
    ostree(["init", `--repo=${src}`, "--mode=archive"]);
    const tree = join(tmp.path, "tree");
    for (let d = 0; d < 8; d++) {
      mkdirSync(join(tree, `d${d}`), { recursive: true });
      for (let f = 0; f < 10; f++) writeFileSync(join(tree, `d${d}`, `f${f}`), `dir ${d} file ${f}\n`.repeat(f + 1));
    }
    c1 = ostree(["commit", `--repo=${src}`, "-b", "os", "--no-xattrs", "-s", "v1", tree]).trim();
    // Six new files of random content in 1 MB parts: at least three parts, part 1 for the thread.
    for (let i = 0; i < 6; i++) writeFileSync(join(tree, `d${i}`, `new${i}.bin`), randomBytes(400 * 1024));
    c2 = ostree(["commit", `--repo=${src}`, "-b", "os2", "--no-xattrs", "-s", "v2", `--parent=${c1}`, tree]).trim();
    // Uncompressed parts (our generator), so a test can rewrite one.
    await generateDelta(await Repo.open(src), { from: c1, to: c2, compression: "none", maxChunkSize: 1 });
    ostree(["summary", "-u", `--repo=${src}`]);
    name = deltaName(c1, c2);
    expect(decodeSuperblock(new Uint8Array(readFileSync(join(src, superblockPath(c1, c2))))).parts.length).toBeGreaterThanOrEqual(3);
    good = await staticServer(src);
  }, 120_000);
  afterAll(async () => {
    await good?.close();
    rmSync(OUT, { recursive: true, force: true });
    tmp?.cleanup();
  });

  test("a part whose checksum matches but whose object does not: the object's error, named with the delta and part", async () => {
    const bad = await brokenServer(
      "object",
      (part) => {
        const payload = decodePartPayload(part.subarray(1));
        const blob = Buffer.from(payload.blob);
        blob[blob.length >> 1] = blob[blob.length >> 1]! ^ 0xff;
        return partFileBytes("none", encodePartPayload({ ...payload, blob }));
      },
      true,
    );
    try {
      const repo = await clientAtC1();
      await expectFailedCleanly(repo, await pullFails(repo, bad.url), new RegExp(`^PullError: Static delta ${name}: .*delta part 1: .*[Cc]orrupted`));
      expect(bad.log.map((l) => l.path)).toContain(partPath(c1, c2, 1));
      await expectResumes(repo);
    } finally {
      await bad.close();
    }
  });

  test("a truncated part: refused before anything of it is written", async () => {
    const bad = await brokenServer("truncated", (part) => part.subarray(0, part.length >> 1), false);
    try {
      const repo = await clientAtC1();
      await expectFailedCleanly(repo, await pullFails(repo, bad.url), new RegExp(`^PullError: Static delta ${name}: delta part 1: part file is \\d+ bytes, superblock says \\d+`));
      await expectResumes(repo);
    } finally {
      await bad.close();
    }
  });

  test("an object write failing in the thread: the file system's error, named with the delta and part", async () => {
    const repo = await clientAtC1();
    const sb = decodeSuperblock(new Uint8Array(readFileSync(join(src, superblockPath(c1, c2)))));
    // An object directory only part 1 writes into, replaced by a dangling symlink: the object is
    // absent (lstat: ENOENT) and writing it fails.
    const others = new Set(sb.parts.flatMap((p, i) => (i === 1 ? [] : p.objects.map((o) => o.checksum.slice(0, 2)))));
    const prefix = sb.parts[1]!.objects.map((o) => o.checksum.slice(0, 2)).find((p) => !others.has(p))!;
    expect(prefix).toBeDefined();
    const dir = join(repo.path, "objects", prefix);
    rmSync(`${dir}.aside`, { recursive: true, force: true });
    let moved = false;
    try {
      renameSync(dir, `${dir}.aside`);
      moved = true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    }
    symlinkSync(join(tmp.path, "nowhere"), dir);
    let err: unknown;
    try {
      err = await pullFails(repo);
    } finally {
      rmSync(dir);
      if (moved) renameSync(`${dir}.aside`, dir);
    }
    await expectFailedCleanly(repo, err, new RegExp(`^PullError: Static delta ${name}: Executing delta part 1: (ENOENT|EEXIST)[^']*'${dir}`));
    // The server was never broken: the same server, now that the directory is back.
    await expectResumes(repo);
  });
});
