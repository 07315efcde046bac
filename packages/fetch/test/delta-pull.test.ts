import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { deltaDirBytes, describeInterop, expectOstreeFsckClean, makeDeltaTestRepo, ostree, tempDir } from "@ostree-ts/interop";
import {
  COMPRESSION_NONE,
  decodePartPayload,
  decodeSuperblock,
  deltaIndexPath,
  deltaName,
  encodePartPayload,
  encodeSuperblock,
  generateDelta,
  OP_CLOSE,
  OP_OPEN_SPLICE_AND_CLOSE,
  parseOps,
  partFileBytes,
  partPath,
  sha256Hex,
  superblockPath,
} from "@ostree-ts/deltas";
import { fsck, readRef, Repo, type RepoMode } from "@ostree-ts/objstore";
import { pull, Remotes } from "@ostree-ts/fetch";
import { staticServer, type StaticServer } from "./helpers.js";

let tmp: { path: string; cleanup: () => void };
let osrc: string; // archive repo, deltas made by real `ostree static-delta generate`
let c1: string;
let c2: string;
let srv: StaticServer;

/** Bytes of a delta on disk: superblock + parts. */
function deltaBytes(repo: string, from: string | null, to: string): { superblock: number; parts: number } {
  return deltaDirBytes(join(repo, superblockPath(from, to), ".."));
}

async function newRepo(mode: RepoMode, url: string): Promise<Repo> {
  const p = join(tmp.path, `c-${mode}-${Math.random().toString(16).slice(2, 10)}`);
  const repo = await Repo.init(p, { mode });
  await new Remotes(repo).add("origin", url, { noGpgVerify: true });
  return repo;
}

const obj = (c: string, ext: string) => `objects/${c.slice(0, 2)}/${c.slice(2)}.${ext}`;
const sumBytes = (log: Array<{ bytes?: number; status: number }>) => log.reduce((n, l) => n + (l.status < 300 ? (l.bytes ?? 0) : 0), 0);

describeInterop("static delta pulls", () => {
  beforeAll(async () => {
    tmp = tempDir("delta-pull-");
    osrc = join(tmp.path, "osrc");
    ({ c1, c2 } = makeDeltaTestRepo(osrc, tmp.path));
    ostree(["static-delta", "generate", `--repo=${osrc}`, `--from=${c1}`, `--to=${c2}`]);
    ostree(["static-delta", "generate", `--repo=${osrc}`, "--empty", `--to=${c2}`, "--min-fallback-size=1"]);
    ostree(["summary", "-u", `--repo=${osrc}`]);
    srv = await staticServer(osrc);

  }, 120_000);
  afterAll(async () => {
    await srv?.close();
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
    const fallback = statSync(join(osrc, obj(bigSo, "filez"))).size;
    const metadata = ["summary", "config", deltaIndexPath(c2)].reduce((n, p) => n + statSync(join(osrc, p)).size, 0);
    expect(sumBytes(srv.log)).toBe(d.superblock + d.parts + fallback + metadata);
    expect(res.progress.bytesTransferred).toBe(sumBytes(srv.log));
    await fsck(repo, { quiet: true });
    expectOstreeFsckClean(repo.path);
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
    const metadata = ["summary", "config", deltaIndexPath(c2)].reduce((n, p) => n + statSync(join(osrc, p)).size, 0);
    expect(sumBytes(srv.log)).toBe(d.superblock + d.parts + metadata);
    expectOstreeFsckClean(repo.path);
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
    expectOstreeFsckClean(repo.path);

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
    expectOstreeFsckClean(br.path);
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
    expectOstreeFsckClean(repo.path);
  });

  test("a delta that omits an object of a changed directory: the scan after it fetches the object, or the pull fails and the ref stays", async () => {
    // Same commits as osrc (fixed timestamps). Our generator, uncompressed parts, so the
    // part that splices usr/lib/new.txt (usr/lib changes) can be rewritten without it:
    // then nothing in the delta carries that object.
    const lie = join(tmp.path, "lie");
    makeDeltaTestRepo(lie, join(tmp.path, "lie-trees"));
    await generateDelta(await Repo.open(lie), { from: c1, to: c2, compression: "none" });
    const sbPath = join(lie, superblockPath(c1, c2));
    const sb = decodeSuperblock(new Uint8Array(readFileSync(sbPath)));
    const newTxt = ostree(["ls", `--repo=${lie}`, "-C", c2, "/usr/lib/new.txt"]).trim().split(/\s+/)[4]!;
    const pi = sb.parts.findIndex((h) => h.objects.some((o) => o.checksum === newTxt));
    const header = sb.parts[pi]!;
    const file = new Uint8Array(readFileSync(join(lie, partPath(c1, c2, pi))));
    expect(file[0]).toBe(COMPRESSION_NONE);
    const payload = decodePartPayload(file.subarray(1));
    const ops = parseOps(payload.ops, header.objects);
    let k = 0;
    let cut: { k: number; start: number; end: number } | null = null;
    for (const [j, op] of ops.entries()) {
      if (op.code !== OP_OPEN_SPLICE_AND_CLOSE && op.code !== OP_CLOSE) continue;
      if (header.objects[k]!.checksum === newTxt) {
        expect(op.code).toBe(OP_OPEN_SPLICE_AND_CLOSE);
        cut = { k, start: op.at, end: ops[j + 1]?.at ?? payload.ops.length };
      }
      k++;
    }
    const lied = partFileBytes("none", encodePartPayload({ ...payload, ops: Buffer.concat([payload.ops.subarray(0, cut!.start), payload.ops.subarray(cut!.end)]) }));
    writeFileSync(join(lie, partPath(c1, c2, pi)), lied);
    sb.parts[pi] = { ...header, checksum: sha256Hex(lied), size: lied.length, objects: header.objects.filter((_, i) => i !== cut!.k) };
    writeFileSync(sbPath, encodeSuperblock({ ...sb, endianness: "l" }));
    ostree(["summary", "-u", `--repo=${lie}`]);
    const ls = await staticServer(lie);
    try {
      for (const missing of [true, false]) {
        const repo = await newRepo("bare-user", ls.url);
        await pull(repo, "origin", { refs: [`os/x86_64@${c1}`], disableStaticDeltas: true });
        await repo.clearCommitPartial(c1);
        ls.fault = (p) => (missing && p === obj(newTxt, "filez") ? "404" : null);
        ls.log.length = 0;
        if (missing) {
          await expect(pull(repo, "origin", { refs: ["os/x86_64"] })).rejects.toThrow(`Server returned HTTP 404 for ${ls.url.replace(/\/$/, "")}/${obj(newTxt, "filez")}`);
          expect(await readRef(repo, { kind: "remote", remote: "origin" }, "os/x86_64")).toBe(c1);
          expect(await repo.commitPartialState(c2)).not.toBe(null);
        } else {
          const res = await pull(repo, "origin", { refs: ["os/x86_64"] });
          expect(res.refs[0]).toEqual({ ref: "os/x86_64", checksum: c2, previous: c1 });
          expect(await repo.commitPartialState(c2)).toBe(null);
          await fsck(repo, { quiet: true });
          expectOstreeFsckClean(repo.path);
        }
        const paths = ls.log.map((l) => l.path);
        expect(paths).toContain(partPath(c1, c2, 0));
        expect(paths).toContain(obj(newTxt, "filez"));
      }
    } finally {
      await ls.close();
    }
  });
});
