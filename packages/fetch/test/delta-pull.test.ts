import { cpSync, mkdirSync, readdirSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, test } from "vitest";
import { describeInterop, ostree, runOstree, tempDir } from "@ostree-ts/interop";
import { deltaIndexPath, deltaName, generateDelta, partPath, superblockPath } from "@ostree-ts/deltas";
import { fsck, readRef, Repo, updateSummary, type RepoMode } from "@ostree-ts/objstore";
import { pull, Remotes } from "@ostree-ts/fetch";
import { RepoServer, type AccessLogEntry } from "../../../apps/server/src/server.js";
import { staticServer, type StaticServer } from "./helpers.js";

let tmp: { path: string; cleanup: () => void };
let osrc: string; // archive repo, deltas made by real `ostree static-delta generate`
let tsrc: string; // archive repo, deltas made by our generator
let c1: string;
let c2: string;
let srv: StaticServer;
let server: RepoServer;
let serverUrl: string;
const serverLog: AccessLogEntry[] = [];

/** Deterministic pseudo-random bytes (so v1/v2 differ only where we say). */
function prng(seed: number, n: number): Buffer {
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

function mkTree(dir: string, v: number): void {
  mkdirSync(join(dir, "usr/bin"), { recursive: true });
  mkdirSync(join(dir, "usr/lib"), { recursive: true });
  mkdirSync(join(dir, "etc"), { recursive: true });
  // 2.5 MB incompressible: a fallback in a scratch delta with --min-fallback-size=1.
  const big = prng(7, 2_500_000);
  if (v === 2) big.writeUInt32BE(0xdeadbeef, 1_000_000);
  writeFileSync(join(dir, "usr/lib/big.so"), big);
  const bin = prng(11, 200_000);
  if (v === 2) for (let i = 0; i < 40; i++) bin[i * 4000] ^= 0x5a;
  writeFileSync(join(dir, "usr/bin/app"), bin, { mode: 0o755 });
  for (let i = 0; i < 60; i++) writeFileSync(join(dir, "usr/lib", `mod${i}.txt`), `module ${i}\n${"x".repeat(i * 50)}\n${i % 10 === 0 ? `v${v}` : ""}`);
  writeFileSync(join(dir, "etc/os-release"), `VERSION=${v}\n`);
  if (v === 2) writeFileSync(join(dir, "usr/lib/new.txt"), "only in v2\n");
  symlinkSync("lib/big.so", join(dir, "usr/libbig.so"));
}

function ostreeFsck(path: string): void {
  const r = runOstree(["fsck", `--repo=${path}`]);
  expect(r.stderr + r.stdout).not.toMatch(/corrupt|invalid/i);
  expect(r.status).toBe(0);
}

function fileSize(p: string): number {
  return statSync(p).size;
}

/** Bytes of a delta on disk: superblock + parts. */
function deltaBytes(repo: string, from: string | null, to: string): { superblock: number; parts: number } {
  const dir = join(repo, superblockPath(from, to), "..");
  let parts = 0;
  for (const f of readdirSync(dir)) if (/^\d+$/.test(f)) parts += fileSize(join(dir, f));
  return { superblock: fileSize(join(dir, "superblock")), parts };
}

async function newRepo(mode: RepoMode, url: string): Promise<Repo> {
  const p = join(tmp.path, `c-${mode}-${Math.random().toString(16).slice(2, 10)}`);
  const repo = await Repo.init(p, { mode });
  await new Remotes(repo).add("origin", url, { noGpgVerify: true });
  return repo;
}

/** The server runs in this process: a synchronous `ostree pull` would block it. */
async function ostreeAsync(args: string[]): Promise<string> {
  return (await promisify(execFile)("ostree", args, { maxBuffer: 1 << 26 })).stdout;
}

const obj = (c: string, ext: string) => `objects/${c.slice(0, 2)}/${c.slice(2)}.${ext}`;
const sumBytes = (log: Array<{ bytes?: number; status: number }>) => log.reduce((n, l) => n + (l.status < 300 ? (l.bytes ?? 0) : 0), 0);

describeInterop("static delta pulls", () => {
  beforeAll(async () => {
    tmp = tempDir("delta-pull-");
    osrc = join(tmp.path, "osrc");
    ostree(["init", `--repo=${osrc}`, "--mode=archive"]);
    mkTree(join(tmp.path, "t1"), 1);
    mkTree(join(tmp.path, "t2"), 2);
    c1 = ostree(["commit", `--repo=${osrc}`, "-b", "os/x86_64", "--no-xattrs", "--timestamp=2021-01-01T00:00:00Z", "-s", "v1", join(tmp.path, "t1")]).trim();
    c2 = ostree(["commit", `--repo=${osrc}`, "-b", "os/x86_64", "--no-xattrs", "--timestamp=2021-02-01T00:00:00Z", "-s", "v2", join(tmp.path, "t2")]).trim();
    // Same objects for our generator before any delta exists.
    tsrc = join(tmp.path, "tsrc");
    cpSync(osrc, tsrc, { recursive: true });
    ostree(["static-delta", "generate", `--repo=${osrc}`, `--from=${c1}`, `--to=${c2}`]);
    ostree(["static-delta", "generate", `--repo=${osrc}`, "--empty", `--to=${c2}`, "--min-fallback-size=1"]);
    ostree(["summary", "-u", `--repo=${osrc}`]);
    srv = await staticServer(osrc);

    const ts = await Repo.open(tsrc);
    await generateDelta(ts, { from: c1, to: c2 });
    await generateDelta(ts, { from: null, to: c2 });
    await updateSummary(ts);
    server = new RepoServer({ repos: [{ name: "", path: tsrc }], port: 0, log: (e) => serverLog.push(e), updateSummary: false });
    serverUrl = `http://127.0.0.1:${await server.start()}`;
  }, 120_000);
  afterAll(async () => {
    await srv?.close();
    await server?.stop();
    tmp?.cleanup();
  });

  test("scratch delta with a fallback from a static server (ostree-made delta): requests as pull.md §2 E, bytes ≤ delta + metadata", async () => {
    const repo = await newRepo("bare-user", srv.url);
    srv.log.length = 0;
    const res = await pull(repo, "origin", { refs: ["os/x86_64"] });
    expect(res.refs).toEqual([{ ref: "os/x86_64", checksum: c2, previous: null }]);
    expect(res.deltaParts).toBe(1);
    const paths = srv.log.map((l) => l.path);
    const bigSo = ostree(["ls", `--repo=${osrc}`, "-C", c2, "/usr/lib/big.so"]).trim().split(/\s+/)[4]!;
    expect(paths.slice(0, 5)).toEqual(["summary.sig", "summary", "config", deltaIndexPath(c2), superblockPath(null, c2)]);
    expect(new Set(paths.slice(5))).toEqual(new Set([obj(bigSo, "filez"), partPath(null, c2, 0), obj(c2, "commitmeta")]));
    expect(paths.length).toBe(8);
    const d = deltaBytes(osrc, null, c2);
    const fallback = fileSize(join(osrc, obj(bigSo, "filez")));
    const metadata = ["summary", "config", deltaIndexPath(c2)].reduce((n, p) => n + fileSize(join(osrc, p)), 0);
    expect(sumBytes(srv.log)).toBe(d.superblock + d.parts + fallback + metadata);
    expect(res.progress.bytesTransferred).toBe(sumBytes(srv.log));
    await fsck(repo, { quiet: true });
    ostreeFsck(repo.path);
    expect(ostree(["ls", `--repo=${repo.path}`, "-R", c2])).toBe(ostree(["ls", `--repo=${osrc}`, "-R", c2]));
    expect(ostree(["cat", `--repo=${repo.path}`, c2, "/usr/lib/big.so"])).toBe(ostree(["cat", `--repo=${osrc}`, c2, "/usr/lib/big.so"]));
  });

  test("FROM delta (ostree-made, rollsum/bsdiff) after a pinned pull: traces C and D, no object re-fetched", async () => {
    const repo = await newRepo("bare-user", srv.url);
    srv.log.length = 0;
    await pull(repo, "origin", { refs: [`os/x86_64@${c1}`] });
    // Trace C: config (indexed-deltas), the TO index, then objects (the index has no delta to C1).
    expect(srv.log.slice(0, 3).map((l) => `${l.path} ${l.status}`)).toEqual(["config 200", `${deltaIndexPath(c1)} 404`, `${obj(c1, "commitmeta")} 404`]);
    srv.log.length = 0;
    const res = await pull(repo, "origin", { refs: ["os/x86_64"] });
    expect(res.refs[0]).toEqual({ ref: "os/x86_64", checksum: c2, previous: c1 });
    const paths = srv.log.map((l) => l.path);
    expect(paths).toEqual(["summary.sig", "summary", "config", deltaIndexPath(c2), superblockPath(c1, c2), partPath(c1, c2, 0), obj(c2, "commitmeta")]);
    const d = deltaBytes(osrc, c1, c2);
    const metadata = ["summary", "config", deltaIndexPath(c2)].reduce((n, p) => n + fileSize(join(osrc, p)), 0);
    expect(sumBytes(srv.log)).toBe(d.superblock + d.parts + metadata);
    ostreeFsck(repo.path);
    expect(ostree(["cat", `--repo=${repo.path}`, c2, "/usr/bin/app"])).toBe(ostree(["cat", `--repo=${osrc}`, c2, "/usr/bin/app"]));
    // Up to date: the delta search says unchanged, only the detached metadata is refreshed.
    srv.log.length = 0;
    await pull(repo, "origin", { refs: ["os/x86_64"] });
    expect(srv.log.map((l) => l.path)).toEqual(["summary.sig", "summary", "config", deltaIndexPath(c2), obj(c2, "commitmeta")]);
  });

  test("a scratch delta is not used when the ref exists locally; --disable-static-deltas goes object by object", async () => {
    const repo = await newRepo("bare-user", srv.url);
    await pull(repo, "origin", { refs: [`os/x86_64@${c1}`], disableStaticDeltas: true });
    // Make C1 partial: it can no longer be a FROM, and the ref exists → objects, not the scratch delta.
    await repo.markCommitPartial(c1);
    srv.log.length = 0;
    const res = await pull(repo, "origin", { refs: ["os/x86_64"] });
    expect(res.deltaParts).toBe(0);
    expect(srv.log.some((l) => l.path.startsWith("deltas/"))).toBe(false);
    expect(srv.log.some((l) => l.path === obj(c2, "commit"))).toBe(true);
    ostreeFsck(repo.path);

    const r2 = await newRepo("bare-user", srv.url);
    srv.log.length = 0;
    await pull(r2, "origin", { refs: ["os/x86_64"], disableStaticDeltas: true });
    expect(srv.log.some((l) => l.path.startsWith("delta"))).toBe(false);
  });

  test("errors as ostree gives them: archive target, nothing to require, bad superblock digest", async () => {
    const ar = await newRepo("archive", srv.url);
    await expect(pull(ar, "origin", { refs: ["os/x86_64"], requireStaticDeltas: true })).rejects.toThrow("Can't use static deltas in an archive repo");
    // An archive target never uses deltas.
    srv.log.length = 0;
    await pull(ar, "origin", { refs: ["os/x86_64"] });
    expect(srv.log.some((l) => l.path.startsWith("delta"))).toBe(false);

    const br = await newRepo("bare-user", srv.url);
    await expect(pull(br, "origin", { refs: [`os/x86_64@${c1}`], requireStaticDeltas: true })).rejects.toThrow(`Static deltas required, but none found for os/x86_64 to ${c1}`);
    await expect(pull(br, "origin", { refs: ["os/x86_64"], dryRun: true })).rejects.toThrow("--dry-run requires --require-static-deltas");
    const dry = await pull(br, "origin", { refs: ["os/x86_64"], dryRun: true, requireStaticDeltas: true });
    expect(dry.deltaTotals.parts).toBe(1);
    expect(dry.deltaTotals.size).toBe(deltaBytes(osrc, null, c2).parts);
    expect(await readRef(br, { kind: "remote", remote: "origin" }, "os/x86_64")).toBe(null);

    // A superblock that does not match the summary's digest is refused before anything is written.
    srv.fault = (p) => (p === superblockPath(null, c2) ? "corrupt" : null);
    try {
      await expect(pull(br, "origin", { refs: ["os/x86_64"] })).rejects.toThrow(`Invalid checksum for static delta ${deltaName(null, c2)}`);
    } finally {
      srv.fault = () => null;
    }
    // A corrupted part fails verification, no ref is written, and the next pull completes.
    srv.fault = (p) => (p === partPath(null, c2, 0) ? "corrupt" : null);
    try {
      await expect(pull(br, "origin", { refs: ["os/x86_64"] })).rejects.toThrow(/Checksum mismatch in static delta part/);
    } finally {
      srv.fault = () => null;
    }
    expect(await readRef(br, { kind: "remote", remote: "origin" }, "os/x86_64")).toBe(null);
    await fsck(br, { quiet: true });
    const ok = await pull(br, "origin", { refs: ["os/x86_64"] });
    expect(ok.refs[0]!.checksum).toBe(c2);
    ostreeFsck(br.path);
  });

  test("a dropped part download is retried (resumed with Range when bytes arrived)", async () => {
    const repo = await newRepo("bare-user", srv.url);
    let dropped = false;
    srv.fault = (p) => {
      if (p === partPath(null, c2, 0) && !dropped) {
        dropped = true;
        return "drop";
      }
      return null;
    };
    srv.log.length = 0;
    try {
      await pull(repo, "origin", { refs: ["os/x86_64"], timeoutMs: 10000 });
    } finally {
      srv.fault = () => null;
    }
    expect(srv.log.filter((l) => l.path === partPath(null, c2, 0)).length).toBe(2);
    ostreeFsck(repo.path);
  });

  test("real ostree pulls deltas made by our generator from ostree-ts-server (scratch, then FROM); ours does the same with fewer bytes", async () => {
    const results: Record<string, { requests: number; bytes: number; objectGets: number }> = {};
    const d0 = deltaBytes(tsrc, null, c2);
    const d1 = deltaBytes(tsrc, c1, c2);
    const meta = ["summary", "config", deltaIndexPath(c2)].reduce((n, p) => n + fileSize(join(tsrc, p)), 0);
    const bytesOf = (log: AccessLogEntry[]) => log.filter((l) => l.status < 300).reduce((n, l) => n + l.bytes, 0);

    for (const client of ["ostree", "ours"] as const) {
      const path = join(tmp.path, `srvpull-${client}`);
      ostree(["init", `--repo=${path}`, "--mode=bare-user"]);
      ostree(["remote", "add", `--repo=${path}`, "--no-gpg-verify", "origin", serverUrl]);
      const doPull = async (ref: string, extra: string[] = []) => {
        serverLog.length = 0;
        if (client === "ostree") await ostreeAsync(["pull", `--repo=${path}`, "--require-static-deltas", ...extra, "origin", ref]);
        else await pull(await Repo.open(path), "origin", { refs: [ref], requireStaticDeltas: true });
        return [...serverLog];
      };
      // Scratch delta into an empty repo.
      const l0 = await doPull("os/x86_64");
      expect(l0.some((l) => l.path === `/${partPath(null, c2, 0)}`)).toBe(true);
      expect(ostree(["rev-parse", `--repo=${path}`, "origin:os/x86_64"]).trim()).toBe(c2);
      ostreeFsck(path);
      results[`${client} scratch`] = { requests: l0.length, bytes: bytesOf(l0), objectGets: l0.filter((l) => l.path.startsWith("/objects/") && l.status === 200).length };
      // FROM delta: reset to C1 by pulling it object by object into a fresh repo.
      const path2 = `${path}-from`;
      ostree(["init", `--repo=${path2}`, "--mode=bare-user"]);
      ostree(["remote", "add", `--repo=${path2}`, "--no-gpg-verify", "origin", serverUrl]);
      await ostreeAsync(["pull", `--repo=${path2}`, "--disable-static-deltas", "origin", `os/x86_64@${c1}`]);
      serverLog.length = 0;
      if (client === "ostree") await ostreeAsync(["pull", `--repo=${path2}`, "--require-static-deltas", "origin", "os/x86_64"]);
      else await pull(await Repo.open(path2), "origin", { refs: ["os/x86_64"], requireStaticDeltas: true });
      const l1 = [...serverLog];
      expect(l1.some((l) => l.path === `/${partPath(c1, c2, 0)}`)).toBe(true);
      expect(ostree(["rev-parse", `--repo=${path2}`, "origin:os/x86_64"]).trim()).toBe(c2);
      ostreeFsck(path2);
      expect(ostree(["cat", `--repo=${path2}`, c2, "/usr/bin/app"])).toBe(ostree(["cat", `--repo=${tsrc}`, c2, "/usr/bin/app"]));
      results[`${client} from`] = { requests: l1.length, bytes: bytesOf(l1), objectGets: l1.filter((l) => l.path.startsWith("/objects/") && l.status === 200).length };
    }
    console.log(`delta sizes: scratch ${d0.superblock}+${d0.parts} B, from ${d1.superblock}+${d1.parts} B, metadata ${meta} B`, results);
    // Ours: at most the delta (+ the commitmeta 404) plus summary/config/index; no object GETs at all.
    expect(results["ours scratch"]!.bytes).toBeLessThanOrEqual(d0.superblock + d0.parts + meta);
    expect(results["ours from"]!.bytes).toBeLessThanOrEqual(d1.superblock + d1.parts + meta);
    expect(results["ours scratch"]!.objectGets).toBe(0);
    expect(results["ours from"]!.objectGets).toBe(0);
    expect(results["ours from"]!.bytes).toBeLessThanOrEqual(results["ostree from"]!.bytes);
  }, 120_000);
});
