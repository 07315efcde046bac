import { statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { deltaDirBytes, describeInterop, expectOstreeFsckClean, makeDeltaTestRepo, ostree, ostreeAsync, tempDir } from "@ostree-ts/interop";
import { deltaIndexPath, generateDelta, partPath, superblockPath } from "@ostree-ts/deltas";
import { Repo, updateSummary } from "@ostree-ts/objstore";
import { pull } from "@ostree-ts/fetch";
import { RepoServer, type AccessLogEntry } from "../src/server.js";

let tmp: { path: string; cleanup: () => void };
let tsrc: string; // archive repo written by ostree, deltas made by our generator
let server: RepoServer;
let serverUrl: string;
const serverLog: AccessLogEntry[] = [];
let c1: string;
let c2: string;

/** Bytes of a delta on disk: superblock + parts. */
function deltaBytes(repo: string, from: string | null, to: string): { superblock: number; parts: number } {
  return deltaDirBytes(join(repo, superblockPath(from, to), ".."));
}


describeInterop("static deltas served by ostree-ts-server", () => {
  beforeAll(async () => {
    tmp = tempDir("delta-serve-");
    tsrc = join(tmp.path, "tsrc");
    ({ c1, c2 } = makeDeltaTestRepo(tsrc, tmp.path));
    const ts = await Repo.open(tsrc);
    await generateDelta(ts, { from: c1, to: c2 });
    await generateDelta(ts, { from: null, to: c2 });
    await updateSummary(ts);
    server = new RepoServer({ repos: [{ name: "", path: tsrc }], port: 0, log: (e) => serverLog.push(e), updateSummary: false });
    serverUrl = `http://127.0.0.1:${await server.start()}`;
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
    tmp?.cleanup();
  });

  test("real ostree pulls deltas made by our generator from ostree-ts-server (scratch, then FROM); ours does the same with fewer bytes", async () => {
    const results: Record<string, { requests: number; bytes: number; objectGets: number }> = {};
    const d0 = deltaBytes(tsrc, null, c2);
    const d1 = deltaBytes(tsrc, c1, c2);
    const meta = ["summary", "config", deltaIndexPath(c2)].reduce((n, p) => n + statSync(join(tsrc, p)).size, 0);
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
      expectOstreeFsckClean(path);
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
      expectOstreeFsckClean(path2);
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
