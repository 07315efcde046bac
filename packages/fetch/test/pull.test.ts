import { randomBytes } from "node:crypto";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { describeInterop, ostree, runOstree, tempDir } from "@ostree-ts/interop";
import { fsck, listRefs, ObjectType, readRef, Repo, updateSummary, type RepoMode } from "@ostree-ts/objstore";
import { FetchError, PullError, pull, pullLocal, Remotes, type PullProgress } from "@ostree-ts/fetch";
import { superblockPath } from "@ostree-ts/deltas";
import { staticServer, type StaticServer } from "./helpers.js";

let tmp: { path: string; cleanup: () => void };
let src: string; // archive repo written by real ostree, no summary
let c1: string;
let c2: string;
let srv: StaticServer;

function mkTree(dir: string, variant: number): void {
  mkdirSync(join(dir, "usr/bin"), { recursive: true });
  mkdirSync(join(dir, "etc/conf.d"), { recursive: true });
  writeFileSync(join(dir, "usr/bin/tool"), `#!/bin/sh\necho ${variant}\n`, { mode: 0o755 });
  writeFileSync(join(dir, "etc/conf.d/a.conf"), "a=1\n");
  writeFileSync(join(dir, "etc/hosts"), `127.0.0.1 v${variant}\n`);
  // > 8 MiB so the streaming (temp file) path and Range resumption are exercised; mid.bin (3 MiB)
  // takes the in-memory path for large payloads.
  for (const [name, size] of [["big.bin", 9 << 20], ["mid.bin", 3 << 20]] as const) {
    const big = Buffer.alloc(size);
    for (let i = 0; i < big.length; i += 4096) randomBytes(64).copy(big, i);
    big.writeUInt32BE(variant, 0);
    writeFileSync(join(dir, "usr", name), big);
  }
  for (let i = 0; i < 20; i++) writeFileSync(join(dir, "usr", `f${i}`), `file ${i} ${i % 3 === 0 ? variant : ""}\n`);
  symlinkSync("bin/tool", join(dir, "usr/link"));
}

async function ourFsck(path: string): Promise<void> {
  await fsck(await Repo.open(path), { quiet: true });
}

function ostreeFsck(path: string): void {
  const r = runOstree(["fsck", `--repo=${path}`]);
  expect(r.stderr + r.stdout).toMatch(/no errors found|^$/);
  expect(r.status).toBe(0);
}

async function newRepo(mode: RepoMode, url: string, name = "origin"): Promise<Repo> {
  const p = join(tmp.path, `c-${mode}-${randomBytes(4).toString("hex")}`);
  const repo = await Repo.init(p, { mode });
  await new Remotes(repo).add(name, url, { noGpgVerify: true });
  return repo;
}

describeInterop("pull interop and faults", () => {
  beforeAll(async () => {
    tmp = tempDir("fetch-test-");
    src = join(tmp.path, "src");
    ostree(["init", `--repo=${src}`, "--mode=archive"]);
    mkTree(join(tmp.path, "t1"), 1);
    mkTree(join(tmp.path, "t2"), 2);
    c1 = ostree(["commit", `--repo=${src}`, "-b", "os/x86_64", "--no-xattrs", "--timestamp=2020-01-01T00:00:00Z", "-s", "v1", join(tmp.path, "t1")]).trim();
    c2 = ostree(["commit", `--repo=${src}`, "-b", "os/x86_64", "--no-xattrs", "--timestamp=2021-01-01T00:00:00Z", "-s", "v2", join(tmp.path, "t2")]).trim();
    ostree(["commit", `--repo=${src}`, "-b", "other", "--no-xattrs", "-s", "o", join(tmp.path, "t1")]);
    srv = await staticServer(src);
  });
  afterAll(async () => {
    await srv?.close();
    tmp?.cleanup();
  });

  test("remote add/delete write the config ostree writes", async () => {
    const ours = await Repo.init(join(tmp.path, "rc-ours"), { mode: "bare" });
    const theirs = join(tmp.path, "rc-theirs");
    ostree(["init", `--repo=${theirs}`, "--mode=bare"]);
    const r = new Remotes(ours);
    await r.add("a", "http://a/repo");
    await r.add("b", "http://b", { branches: ["main", "x"], contentUrl: "http://c", set: [["branches", "z"], ["tls-permissive", "true"]], noGpgVerify: true, collectionId: "org.ex.B" });
    await r.add("c", "http://c");
    await r.delete("b");
    expect(await r.add("a", "http://other", { ifNotExists: true })).toBe(false);
    await expect(r.add("a", "http://other")).rejects.toThrow('Remote configuration for "a" already exists: (in config)');
    await r.add("c", "http://c2", { force: true });
    await expect(r.delete("zz")).rejects.toThrow('Remote "zz" not found');
    for (const args of [
      ["add", "a", "http://a/repo"],
      ["add", "--no-gpg-verify", "--contenturl=http://c", "--set=branches=z", "--set=tls-permissive=true", "--collection-id=org.ex.B", "b", "http://b", "main", "x"],
      ["add", "c", "http://c"],
      ["delete", "b"],
      ["add", "--if-not-exists", "a", "http://other"],
      ["add", "--force", "c", "http://c2"],
    ]) {
      ostree(["remote", ...args.slice(0, 1), `--repo=${theirs}`, ...args.slice(1)]);
    }
    expect(readFileSync(join(ours.path, "config"), "utf8")).toBe(readFileSync(join(theirs, "config"), "utf8"));
    expect(await r.list()).toEqual(["a", "c"]);
    expect((await r.get("a")).gpgVerify).toBe(true);
  });

  for (const mode of ["archive", "bare-user"] as const) {
    test(`pull into ${mode} from a static server hosting an ostree repo (no summary)`, async () => {
      const repo = await newRepo(mode, `${srv.url}/`);
      srv.log.length = 0;
      const res = await pull(repo, "origin", { refs: ["os/x86_64"], depth: -1 });
      expect(res.refs).toEqual([{ ref: "os/x86_64", checksum: c2, previous: null }]);
      expect(await readRef(repo, { kind: "remote", remote: "origin" }, "os/x86_64")).toBe(c2);
      // pull.md §2 A: summary.sig, summary, the ref file, then commitmeta before commit. A bare-user
      // client without a delta list first tries the scratch superblock (404), as ostree 2022.7 does.
      const paths = srv.log.map((l) => l.path);
      const probe = mode === "archive" ? [] : [superblockPath(null, c2)];
      expect(paths.slice(0, 5 + probe.length)).toEqual([
        "summary.sig",
        "summary",
        "refs/heads/os/x86_64",
        ...probe,
        `objects/${c2.slice(0, 2)}/${c2.slice(2)}.commitmeta`,
        `objects/${c2.slice(0, 2)}/${c2.slice(2)}.commit`,
      ]);
      expect(existsSync(join(repo.path, "state", `${c2}.commitpartial`))).toBe(false);
      expect(existsSync(join(repo.path, "state", `${c1}.commitpartial`))).toBe(false);
      await ourFsck(repo.path);
      ostreeFsck(repo.path);
      expect(ostree(["ls", `--repo=${repo.path}`, "-R", c1])).toBe(ostree(["ls", `--repo=${src}`, "-R", c1]));
      for (const f of ["/usr/big.bin", "/usr/mid.bin"]) expect(ostree(["cat", `--repo=${repo.path}`, c2, f])).toBe(ostree(["cat", `--repo=${src}`, c2, f]));
    });
  }

  test("progress events: spaced by updateFrequency, counters never go back, the last one is the result's", async () => {
    const events = async (updateFrequency: number) => {
      const seen: PullProgress[] = [];
      const repo = await newRepo("bare-user", `${srv.url}/`);
      const res = await pull(repo, "origin", { refs: ["os/x86_64"], depth: -1, updateFrequency, onProgress: (p) => seen.push({ ...p }) });
      return { seen, res };
    };
    const often = await events(1);
    expect(often.seen.length).toBeGreaterThan(2);
    for (let i = 1; i < often.seen.length; i++) {
      const [a, b] = [often.seen[i - 1]!, often.seen[i]!];
      for (const k of ["fetchedMetadata", "fetchedContent", "requestedContent", "bytesTransferred", "contentBytesWritten", "elapsedMs"] as const) {
        expect(b[k]).toBeGreaterThanOrEqual(a[k]);
      }
    }
    const last = often.seen[often.seen.length - 1]!;
    expect(last.phase).toBe("done");
    expect(last.fetchedContent).toBe(often.res.progress.fetchedContent);
    expect(last.fetchedMetadata).toBe(often.res.progress.fetchedMetadata);
    expect(last.contentBytesWritten).toBe(often.res.progress.contentBytesWritten);
    expect(often.res.progress.fetchedContent).toBeGreaterThan(20);
    // With an interval longer than the pull only the phase changes are reported.
    const rare = await events(3_600_000);
    expect(rare.seen.map((p) => p.phase)).toEqual(["fetching", "done"]);
    expect(rare.res.progress.fetchedContent).toBe(often.res.progress.fetchedContent);
  });

  test("gpg-verify defaults to true and unsigned commits fail as in ostree", async () => {
    const repo = await Repo.init(join(tmp.path, "gpg"), { mode: "archive" });
    await new Remotes(repo).add("origin", srv.url);
    await expect(pull(repo, "origin", { refs: ["other"] })).rejects.toThrow(/GPG verification enabled, but no signatures found \(use gpg-verify=false in remote config to disable\)/);
    expect(await listRefs(repo)).toEqual([]);
  });

  test("pull-local both ways, and file:// remotes", async () => {
    const ours = await Repo.init(join(tmp.path, "pl-ours"), { mode: "bare-user" });
    await pullLocal(ours, src, { refs: ["os/x86_64"], depth: 1, untrusted: true });
    expect(await readRef(ours, { kind: "heads" }, "os/x86_64")).toBe(c2);
    await ourFsck(ours.path);
    ostreeFsck(ours.path);
    const theirs = join(tmp.path, "pl-theirs");
    ostree(["init", `--repo=${theirs}`, "--mode=archive"]);
    ostree(["pull-local", `--repo=${theirs}`, "--depth=1", ours.path, "os/x86_64"]);
    ostreeFsck(theirs);
    expect(ostree(["rev-parse", `--repo=${theirs}`, "os/x86_64^"]).trim()).toBe(c1);

    const viaFile = await newRepo("archive", `file://${theirs}`);
    await pull(viaFile, "origin", { refs: ["os/x86_64"] });
    expect(await readRef(viaFile, { kind: "remote", remote: "origin" }, "os/x86_64")).toBe(c2);
    await ourFsck(viaFile.path);
  });

  test("mirror copies refs to heads and the summary; commit-metadata-only and subpath leave the commit partial", async () => {
    const withSummary = join(tmp.path, "withsum");
    cpSync(src, withSummary, { recursive: true });
    ostree(["summary", "-u", `--repo=${withSummary}`]);
    const s2 = await staticServer(withSummary);
    try {
      const m = await newRepo("archive", s2.url);
      await pull(m, "origin", { mirror: true, depth: -1 });
      expect((await listRefs(m)).map((r) => r.refspec)).toEqual(["os/x86_64", "other"]);
      expect(readFileSync(join(m.path, "summary"))).toEqual(readFileSync(join(withSummary, "summary")));
      // pull.md §2 B/F: summary.sig, summary, then config.
      expect(s2.log.slice(0, 3).map((l) => l.path)).toEqual(["summary.sig", "summary", "config"]);
      ostreeFsck(m.path);

      const cm = await newRepo("bare-user", s2.url);
      await pull(cm, "origin", { refs: ["os/x86_64"], commitMetadataOnly: true });
      expect(existsSync(join(cm.path, "state", `${c2}.commitpartial`))).toBe(true);
      expect(existsSync(cm.objectPath(c2, ObjectType.Commit))).toBe(true);

      const sp = await newRepo("bare-user", s2.url);
      await pull(sp, "origin", { refs: ["os/x86_64"], subpaths: ["/etc"] });
      expect(existsSync(join(sp.path, "state", `${c2}.commitpartial`))).toBe(true);
      expect(ostree(["cat", `--repo=${sp.path}`, c2, "/etc/hosts"])).toBe("127.0.0.1 v2\n");
      expect(runOstree(["cat", `--repo=${sp.path}`, c2, "/usr/bin/tool"]).status).not.toBe(0);
      ostreeFsck(sp.path);
      // Completing the pull later fetches the rest and clears the partial state.
      await pull(sp, "origin", { refs: ["os/x86_64"] });
      expect(existsSync(join(sp.path, "state", `${c2}.commitpartial`))).toBe(false);
      await ourFsck(sp.path);
    } finally {
      await s2.close();
    }
  });

  test("timestamp check refuses an older commit", async () => {
    const repo = await newRepo("archive", srv.url);
    await pull(repo, "origin", { refs: ["os/x86_64"] });
    await expect(pull(repo, "origin", { refs: [`os/x86_64@${c1}`], timestampCheck: true })).rejects.toThrow(
      `Upgrade target revision '${c1}' with timestamp '2020-01-01T00:00:00Z' is chronologically older than current revision '${c2}' with timestamp '2021-01-01T00:00:00Z'; use --allow-downgrade to permit`,
    );
    expect(await readRef(repo, { kind: "remote", remote: "origin" }, "os/x86_64")).toBe(c2);
    await pull(repo, "origin", { refs: [`os/x86_64@${c1}`] });
    expect(await readRef(repo, { kind: "remote", remote: "origin" }, "os/x86_64")).toBe(c1);
  });

  test("dropped connections and random 500/404 answers: the pull completes, resuming big objects by Range", async () => {
    const s = await staticServer(src);
    try {
      // Each object is hit by at most two faults (fewer than the retries), chosen by its name.
      const tries = new Map<string, number>();
      let i = 0;
      s.fault = (path) => {
        if (!path.startsWith("objects/")) return null;
        const t = tries.get(path) ?? 0;
        tries.set(path, t + 1);
        if (t >= 2) return null;
        i++;
        return path.endsWith(".filez") && path.length % 2 === 0 ? "drop" : i % 3 === 0 ? "500" : i % 5 === 0 ? "truncate" : null;
      };
      const repo = await newRepo("bare-user", s.url);
      await pull(repo, "origin", { refs: ["os/x86_64"], depth: -1, retries: 4 });
      expect(await readRef(repo, { kind: "remote", remote: "origin" }, "os/x86_64")).toBe(c2);
      expect(s.log.some((l) => l.status === 206)).toBe(true);
      await ourFsck(repo.path);
      ostreeFsck(repo.path);
    } finally {
      await s.close();
    }
  });

  test("corrupted objects fail clearly, leave no ref, keep fsck clean; a second pull resumes without re-downloading", async () => {
    const s = await staticServer(src);
    try {
      const bad = new Set<string>();
      s.fault = (path) => {
        if (!path.endsWith(".filez")) return null;
        if (bad.size < 3 && !bad.has(path)) bad.add(path);
        return bad.has(path) ? "corrupt" : null;
      };
      const repo = await newRepo("bare-user", s.url);
      const err = await pull(repo, "origin", { refs: ["os/x86_64"], retries: 1 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toMatch(/[0-9a-f]{64}/);
      expect(await listRefs(repo)).toEqual([]);
      expect(existsSync(join(repo.path, "state", `${c2}.commitpartial`))).toBe(true);
      await ourFsck(repo.path);
      ostreeFsck(repo.path);

      const fetchedBefore = new Set(s.log.filter((l) => l.status === 200 && l.path.endsWith(".filez")).map((l) => l.path));
      const stored = new Set(readdirSync(join(repo.path, "objects"), { recursive: true }).map(String).filter((f) => f.endsWith(".file")));
      s.fault = () => null;
      s.log.length = 0;
      await pull(repo, "origin", { refs: ["os/x86_64"] });
      const refetched = s.log.filter((l) => l.path.endsWith(".filez")).map((l) => l.path);
      // Only what was not stored is fetched again.
      expect(refetched.length).toBeLessThanOrEqual(fetchedBefore.size + bad.size - stored.size + bad.size);
      for (const p of refetched) expect(stored.has(p.slice("objects/".length).replace(".filez", ".file"))).toBe(false);
      expect(existsSync(join(repo.path, "state", `${c2}.commitpartial`))).toBe(false);
      expect(await readRef(repo, { kind: "remote", remote: "origin" }, "os/x86_64")).toBe(c2);
      await ourFsck(repo.path);
      ostreeFsck(repo.path);
    } finally {
      await s.close();
    }
  });

  test("a 404 for a needed object fails clearly; the next pull completes", async () => {
    const s = await staticServer(src);
    try {
      let hit = false;
      s.fault = (path) => (path.endsWith(".dirtree") && !hit ? ((hit = true), "404") : null);
      const repo = await newRepo("bare-user", s.url);
      await expect(pull(repo, "origin", { refs: ["os/x86_64"] })).rejects.toThrow(/No such metadata object [0-9a-f]{64}\.dirtree/);
      expect(await listRefs(repo)).toEqual([]);
      await ourFsck(repo.path);
      ostreeFsck(repo.path);
      await pull(repo, "origin", { refs: ["os/x86_64"] });
      expect(await readRef(repo, { kind: "remote", remote: "origin" }, "os/x86_64")).toBe(c2);
      await ourFsck(repo.path);
    } finally {
      await s.close();
    }
  });

  test("a stalled server times out with a clear error", async () => {
    const s = await staticServer(src);
    try {
      s.fault = (path) => (path.endsWith(".commit") ? "stall" : null);
      const repo = await newRepo("archive", s.url);
      // The timeout covers every request: 300 ms could also expire on a loaded machine for an answered one.
      const err = await pull(repo, "origin", { refs: ["other"], timeoutMs: 1500, retries: 1 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(FetchError);
      expect((err as Error).message).toMatch(/\.commit.*after 1 retries/);
      expect(await listRefs(repo)).toEqual([]);
      await ourFsck(repo.path);
    } finally {
      await s.close();
    }
  });

  test("a missing ref fails like ostree (HTTP 404), unknown summary ref too", async () => {
    const repo = await newRepo("archive", srv.url);
    await expect(pull(repo, "origin", { refs: ["nope"] })).rejects.toThrow("Server returned HTTP 404");
    const served = join(tmp.path, "sum2");
    cpSync(src, served, { recursive: true });
    await updateSummary(await Repo.open(served));
    const s = await staticServer(served);
    try {
      const r2 = await newRepo("archive", s.url);
      await expect(pull(r2, "origin", { refs: ["nope"] })).rejects.toThrow(PullError);
    } finally {
      await s.close();
    }
  });
});
