import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeInterop, ostree, runOstree, sh, SPEC_DIR, tempDir } from "@ostree-ts/interop";
import { exportCommit, exportTar, Repo, resolveRev, type RepoMode } from "../src/index.js";

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of it) parts.push(c);
  return Buffer.concat(parts);
}

describeInterop("export against real ostree", () => {
  const tmp = tempDir();
  beforeAll(() => {
    sh(join(SPEC_DIR, "vectors/mktree.sh"), ["tree"], tmp.path);
    const deep = join(tmp.path, "tree", "d".repeat(60), "e".repeat(60));
    mkdirSync(deep, { recursive: true });
    writeFileSync(join(deep, "long-name-file.txt"), "deep\n".repeat(300));
  });
  afterAll(() => tmp.cleanup());

  for (const mode of ["archive", "bare-user"] as RepoMode[]) {
    it(`writes the same tar bytes as ostree export (${mode})`, async () => {
      const path = join(tmp.path, `repo-${mode}`);
      ostree(["init", `--repo=${path}`, `--mode=${mode}`]);
      ostree(["commit", `--repo=${path}`, "-b", "x", "--timestamp=2020-01-01T00:00:00Z", "--no-xattrs", join(tmp.path, "tree")]);
      const repo = await Repo.open(path);
      const commit = (await resolveRev(repo, "x"))!;
      for (const [flags, options] of [
        [[], {}],
        [["--subpath=/sub", "--prefix=pre/"], { subpath: "/sub", prefix: "pre/" }],
        [["--prefix=p"], { prefix: "p" }],
      ] as const) {
        const file = join(tmp.path, `${mode}-theirs.tar`);
        ostree(["export", `--repo=${path}`, "x", `--output=${file}`, ...flags]);
        const ours = join(tmp.path, `${mode}-ours.tar`);
        await exportCommit(repo, commit, ours, options);
        expect(readFileSync(ours).equals(readFileSync(file))).toBe(true);
      }
      // To stdout libarchive pads to a 10240-byte record.
      const r = runOstree(["export", `--repo=${path}`, "x"]);
      expect(r.status).toBe(0);
      const piped = await collect(exportTar(repo, commit, { padToRecord: true }));
      expect(piped.length % 10240).toBe(0);
      // The test tree is ASCII, so the captured text is the exact bytes.
      expect(piped.equals(Buffer.from(r.stdout, "utf8"))).toBe(true);
      const pt = new PassThrough();
      const done = collect(pt);
      await exportCommit(repo, commit, pt, { padToRecord: true });
      pt.end();
      expect((await done).equals(piped)).toBe(true);
    });
  }
});
