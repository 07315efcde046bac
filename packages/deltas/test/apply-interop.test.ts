// Both directions against the real ostree 2022.7: we apply ostree's deltas,
// ostree applies ours, and `ostree fsck` / our object store agree.
import { cpSync, createReadStream, readdirSync, readFileSync, writeFileSync, mkdirSync, statSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join, normalize } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeInterop, ostree, runOstree, runOstreeAsync, sh, SPEC_DIR, tempDir } from "@ostree-ts/interop";
import { ObjectType, Repo } from "@ostree-ts/objstore";
import {
  applyOffline,
  deltaDirPath,
  generateDelta,
  listDeltas,
  listDeltaIndexes,
  loadDelta,
  openPart,
  parseOps,
  opStats,
  readRepoSuperblock,
  reindexDeltas,
  showDelta,
} from "../src/index.js";
import { noise, text } from "./tree.js";

/** A static file server for a repo (ostree's pull runs as a child process, so this must not block). */
async function serve(root: string): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const path = join(root, normalize(decodeURIComponent(new URL(req.url!, "http://x").pathname)));
    try {
      if (!statSync(path).isFile()) throw new Error("not a file");
    } catch {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200);
    createReadStream(path).pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

function repoWithFrom(dir: string, src: string, from: string, mode: string): string {
  ostree(["init", `--repo=${dir}`, `--mode=${mode}`]);
  ostree(["pull-local", `--repo=${dir}`, src, from]);
  return dir;
}

describeInterop("real ostree ↔ ostree-ts on the spec worked example (mktree2.sh)", () => {
  let tmp: ReturnType<typeof tempDir>;
  let repo: string;
  let c1: string;
  let c2: string;
  beforeAll(() => {
    tmp = tempDir("deltas-x-");
    sh(join(SPEC_DIR, "vectors/mktree2.sh"), [], tmp.path);
    repo = join(tmp.path, "drepo");
    ostree(["init", `--repo=${repo}`, "--mode=archive"]);
    c1 = ostree(["commit", `--repo=${repo}`, "-b", "os/x86_64", "--timestamp=2021-01-01T00:00:00Z", "-s", "v1", "--no-xattrs", join(tmp.path, "v1")]).trim();
    c2 = ostree(["commit", `--repo=${repo}`, "-b", "os/x86_64", "--timestamp=2021-02-01T00:00:00Z", "-s", "v2", "--no-xattrs", join(tmp.path, "v2")]).trim();
    ostree(["static-delta", "generate", `--repo=${repo}`, `--from=${c1}`, `--to=${c2}`]);
    ostree(["static-delta", "generate", `--repo=${repo}`, "--empty", `--to=${c2}`]);
  });
  afterAll(() => tmp.cleanup());

  it("decodes ostree's superblock and part exactly as deltas.md §9 describes", async () => {
    const { superblock: sb, bytes } = await readRepoSuperblock(await Repo.open(repo), `${c1}-${c2}`);
    expect(bytes.length).toBe(572);
    expect(sb.metadata.map(([k]) => k)).toEqual(["ostree.endianness"]);
    expect(sb.parts).toHaveLength(1);
    expect(sb.parts[0]).toMatchObject({ version: 0, size: 4981, usize: 268498 });
    expect(sb.parts[0]!.objects.map((o) => o.type).sort()).toEqual([1, 1, 1, 2, 2, 2, 2]);
    const part = new Uint8Array(readFileSync(join(repo, deltaDirPath(c1, c2), "0")));
    const payload = await openPart(part, { expectedChecksum: sb.parts[0]!.checksum, maxPayloadSize: 1 << 20 });
    expect([payload.modes.length, payload.xattrs.length, payload.blob.length, payload.ops.length]).toEqual([2, 1, 10585, 332]);
    expect(opStats(parseOps(payload.ops, sb.parts[0]!.objects))).toEqual([4, 3, 46, 4, 4, 3, 2]);
  });

  it("`show` output equals ostree's byte for byte (FROM→TO and scratch)", async () => {
    const r = await Repo.open(repo);
    for (const name of [`${c1}-${c2}`, c2]) {
      const lines: string[] = [];
      await showDelta(r, name, (l) => lines.push(l));
      expect(lines.join("")).toBe(ostree(["static-delta", "show", `--repo=${repo}`, name]));
    }
    expect((await listDeltas(r)).join("\n") + "\n").toBe(ostree(["static-delta", "list", `--repo=${repo}`]));
  });

  it("reindex writes the same delta-indexes file as ostree", async () => {
    const copy = join(tmp.path, "reidx");
    cpSync(repo, copy, { recursive: true });
    ostree(["static-delta", "reindex", `--repo=${repo}`]);
    const r = await Repo.open(copy);
    await reindexDeltas(r);
    expect(await listDeltaIndexes(r)).toEqual([c2]);
    const rel = readdirSync(join(repo, "delta-indexes"))[0]!;
    const f = readdirSync(join(repo, "delta-indexes", rel))[0]!;
    expect(readFileSync(join(copy, "delta-indexes", rel, f))).toEqual(readFileSync(join(repo, "delta-indexes", rel, f)));
  });

  for (const mode of ["bare-user", "archive"]) {
    it(`we apply ostree's FROM→TO delta into ${mode}; ostree fsck passes`, async () => {
      const dst = repoWithFrom(join(tmp.path, `we-${mode}`), repo, c1, mode);
      await applyOffline(await Repo.open(dst), join(repo, deltaDirPath(c1, c2)));
      ostree(["fsck", `--repo=${dst}`]);
      expect(ostree(["ls", `--repo=${dst}`, "-R", c2])).toBe(ostree(["ls", `--repo=${repo}`, "-R", c2]));
    });
  }

  it("ostree applies our FROM→TO delta (ostree matching and extended); fsck passes; same structure as ostree's", async () => {
    for (const matching of ["ostree", "extended"] as const) {
      const src = join(tmp.path, `ours-${matching}`);
      cpSync(repo, src, { recursive: true });
      const r = await Repo.open(src);
      await generateDelta(r, { from: c1, to: c2, matching });
      const delta = await loadDelta(join(src, deltaDirPath(c1, c2)));
      const part = await delta.readPart(0);
      const payload = await openPart(part.bytes, { expectedChecksum: delta.superblock.parts[0]!.checksum, maxPayloadSize: 1 << 20 });
      if (matching === "ostree") {
        // Same strategies as ostree, only the order of objects differs.
        expect(opStats(parseOps(payload.ops, delta.superblock.parts[0]!.objects))).toEqual([4, 3, 46, 4, 4, 3, 2]);
        expect([payload.blob.length, payload.ops.length]).toEqual([10585, 332]);
      }
      const dst = repoWithFrom(join(tmp.path, `they-${matching}`), repo, c1, "bare-user");
      ostree(["static-delta", "apply-offline", `--repo=${dst}`, join(src, deltaDirPath(c1, c2))]);
      ostree(["fsck", `--repo=${dst}`]);
      expect(ostree(["refs", `--repo=${dst}`])).toBe("");
      expect(ostree(["ls", `--repo=${dst}`, "-R", c2])).toBe(ostree(["ls", `--repo=${repo}`, "-R", c2]));
    }
  });

  it("ostree reads our --inline --swap-endianness scratch superblock and applies it", async () => {
    const src = join(tmp.path, "ours-inline");
    cpSync(repo, src, { recursive: true });
    const file = join(tmp.path, "inline.bin");
    await generateDelta(await Repo.open(src), { from: null, to: c2, inline: true, endianness: "B", filename: file });
    const dst = join(tmp.path, "they-inline");
    ostree(["init", `--repo=${dst}`, "--mode=bare-user"]);
    ostree(["static-delta", "apply-offline", `--repo=${dst}`, file]);
    ostree(["fsck", `--repo=${dst}`]);
  });

  it("we apply ostree's --inline, --swap-endianness, --disable-bsdiff and --empty deltas", async () => {
    const cases: Array<[string, string[], string | null]> = [
      ["inline", ["--inline", `--from=${c1}`], c1],
      ["swap", ["--swap-endianness", `--from=${c1}`], c1],
      ["nobsdiff", ["--disable-bsdiff", `--from=${c1}`], c1],
      ["empty", ["--empty", "--inline", "--set-endianness=B"], null],
    ];
    for (const [name, args, from] of cases) {
      const file = join(tmp.path, `o-${name}`, "sb");
      mkdirSync(join(tmp.path, `o-${name}`));
      ostree(["static-delta", "generate", `--repo=${repo}`, `--to=${c2}`, `--filename=${file}`, ...args]);
      const dst = from ? repoWithFrom(join(tmp.path, `w-${name}`), repo, from, "archive") : join(tmp.path, `w-${name}`);
      if (!from) ostree(["init", `--repo=${dst}`, "--mode=archive"]);
      const d = await loadDelta(file);
      if (name === "swap" || name === "empty") expect(d.superblock.endianness).toBe("B");
      await applyOffline(await Repo.open(dst), file);
      ostree(["fsck", `--repo=${dst}`]);
    }
  });
});

describeInterop("real ostree ↔ ostree-ts on a larger generated tree (fallbacks, several parts)", () => {
  let tmp: ReturnType<typeof tempDir>;
  let repo: string;
  let c1: string;
  let c2: string;
  beforeAll(() => {
    tmp = tempDir("deltas-xl-");
    const mk = (dir: string, version: number) => {
      for (let d = 0; d < 4; d++) {
        const sub = join(dir, "usr", `d${d}`);
        mkdirSync(sub, { recursive: true });
        for (let f = 0; f < 8; f++) {
          const base = f % 3 === 0 ? noise(20_000 + f * 3000, d * 100 + f + 1) : text(10_000 + f * 5000, d * 100 + f + 1);
          if (version === 2 && (f + d) % 4 === 0) base.set(text(200, 7 + f), Math.floor(base.length / 2));
          writeFileSync(join(sub, `file${f}.bin`), base);
        }
      }
      mkdirSync(join(dir, "usr/lib/modules", version === 1 ? "6.1.0-50-amd64" : "6.1.0-56-amd64"), { recursive: true });
      const ko = text(90_000, 4242);
      if (version === 2) ko[10] = ko[10]! ^ 1;
      writeFileSync(join(dir, "usr/lib/modules", version === 1 ? "6.1.0-50-amd64" : "6.1.0-56-amd64", "mod.ko"), ko);
      writeFileSync(join(dir, "usr/huge.img"), noise(1_100_000, version));
    };
    mk(join(tmp.path, "v1"), 1);
    mk(join(tmp.path, "v2"), 2);
    repo = join(tmp.path, "repo");
    ostree(["init", `--repo=${repo}`, "--mode=archive"]);
    c1 = ostree(["commit", `--repo=${repo}`, "-b", "b", "--no-xattrs", "--timestamp=2021-01-01T00:00:00Z", join(tmp.path, "v1")]).trim();
    c2 = ostree(["commit", `--repo=${repo}`, "-b", "b", "--no-xattrs", "--timestamp=2021-02-01T00:00:00Z", join(tmp.path, "v2")]).trim();
  });
  afterAll(() => tmp.cleanup());

  it("ostree applies our multi-part delta (no fallbacks); ours is not larger than ostree's", async () => {
    const r = await Repo.open(repo);
    const res = await generateDelta(r, { from: c1, to: c2, maxChunkSize: 1, minFallbackSize: 0 });
    expect(res.parts.length).toBeGreaterThan(1);
    const ours = res.parts.reduce((s, p) => s + p.size, 0);
    const dst = repoWithFrom(join(tmp.path, "they"), repo, c1, "bare-user");
    ostree(["static-delta", "apply-offline", `--repo=${dst}`, join(repo, deltaDirPath(c1, c2))]);
    ostree(["fsck", `--repo=${dst}`]);
    const theirsFile = join(tmp.path, "ostree-delta", "sb");
    mkdirSync(join(tmp.path, "ostree-delta"));
    ostree(["static-delta", "generate", `--repo=${repo}`, `--from=${c1}`, `--to=${c2}`, "--max-chunk-size=1", "--min-fallback-size=0", `--filename=${theirsFile}`]);
    const theirs = (await loadDelta(theirsFile)).superblock.parts.reduce((s, p) => s + p.size, 0);
    expect(ours).toBeLessThanOrEqual(theirs);
  });

  it("ostree pulls over HTTP with --require-static-deltas using our delta with a fallback entry", async () => {
    const served = join(tmp.path, "served");
    cpSync(repo, served, { recursive: true });
    const r = await generateDelta(await Repo.open(served), { from: c1, to: c2, minFallbackSize: 1, maxChunkSize: 1 });
    expect(r.fallbacks).toHaveLength(1);
    ostree(["summary", "-u", `--repo=${served}`]);
    const { url, server } = await serve(served);
    try {
      const dst = repoWithFrom(join(tmp.path, "pulled"), repo, c1, "bare-user");
      ostree(["remote", "add", `--repo=${dst}`, "--no-gpg-verify", "origin", url]);
      const pull = await runOstreeAsync(["pull", `--repo=${dst}`, "--require-static-deltas", "origin", "b"]);
      expect(pull.stderr).toBe("");
      expect(pull.status).toBe(0);
      expect(ostree(["rev-parse", `--repo=${dst}`, "origin:b"]).trim()).toBe(c2);
      ostree(["fsck", `--repo=${dst}`]);
    } finally {
      server.close();
    }
  });

  it("we apply ostree's delta with a fallback entry once the fallback object is fetched", async () => {
    const file = join(tmp.path, "fb", "sb");
    mkdirSync(join(tmp.path, "fb"));
    ostree(["static-delta", "generate", `--repo=${repo}`, "--empty", `--to=${c2}`, "--min-fallback-size=1", `--filename=${file}`]);
    const d = await loadDelta(file);
    expect(d.superblock.fallbacks).toHaveLength(1);
    const dst = await Repo.init(join(tmp.path, "wfb"), { mode: "archive" });
    await expect(applyOffline(dst, file)).rejects.toThrow(/nonempty http fallback entries/);
    // A fetcher fetches the fallback object, then drives the parts itself.
    const { applyPart } = await import("../src/index.js");
    const src = await Repo.open(repo);
    const fb = d.superblock.fallbacks[0]!;
    const { meta, data } = await src.readContentBytes(fb.checksum);
    await dst.writeContent(meta, { data }, fb.checksum);
    for (let i = 0; i < d.superblock.parts.length; i++) await applyPart(dst, d.superblock, i, (await d.readPart(i)).bytes);
    await dst.writeMetadata(ObjectType.Commit, d.superblock.commit, c2);
    ostree(["fsck", `--repo=${dst.path}`]);
    expect(runOstree(["static-delta", "show", `--repo=${repo}`, c2]).status).not.toBe(0); // --filename: not in the repo
  });
});
