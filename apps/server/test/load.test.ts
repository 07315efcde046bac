import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { describeInterop, ostree, runOstree, tempDir } from "@ostree-ts/interop";
import { pull, Remotes } from "@ostree-ts/fetch";
import { readRef, Repo } from "@ostree-ts/objstore";
import { RepoServer } from "../src/server.js";

const CLIENTS = 50;
// 1000+ for a real load run (OSTREE_TS_LOAD_FILES=1000: ≈ 2 min on 2 busy cores); the default keeps CI short.
const FILES = Number(process.env.OSTREE_TS_LOAD_FILES ?? 300);

let tmp: { path: string; cleanup: () => void };
let server: RepoServer;
let url: string;
let commit: string;
let requests = 0;

describeInterop("load: concurrent pulls from one ostree-ts-server", () => {
  beforeAll(() => {
    tmp = tempDir("server-load-");
    const tree = join(tmp.path, "tree");
    for (let d = 0; d < 40; d++) {
      mkdirSync(join(tree, `d${d}`), { recursive: true });
      for (let f = 0; f < FILES / 40; f++) writeFileSync(join(tree, `d${d}`, `f${f}`), `dir ${d} file ${f}\n${"payload ".repeat((d * 7 + f) % 200)}`);
    }
    const repo = join(tmp.path, "repo");
    ostree(["init", `--repo=${repo}`, "--mode=archive"]);
    commit = ostree(["commit", `--repo=${repo}`, "-b", "main", "--no-xattrs", tree]).trim();
    ostree(["summary", "-u", `--repo=${repo}`]);
    server = new RepoServer({ repos: [{ name: "", path: repo }], port: 0, log: () => requests++, updateSummary: false });
  });
  afterAll(async () => {
    await server?.stop();
    tmp?.cleanup();
  });

  test(`${CLIENTS} concurrent pulls of a ${FILES}-file tree complete correctly`, async () => {
    url = `http://127.0.0.1:${await server.start()}`;
    const repos = await Promise.all(
      Array.from({ length: CLIENTS }, async (_, i) => {
        const r = await Repo.init(join(tmp.path, `c${i}`), { mode: i % 2 ? "archive" : "bare-user" });
        await new Remotes(r).add("origin", url, { noGpgVerify: true });
        return r;
      }),
    );
    const t0 = performance.now();
    const results = await Promise.all(repos.map((r) => pull(r, "origin", { refs: ["main"] })));
    const secs = (performance.now() - t0) / 1000;
    console.log(`${CLIENTS} pulls × ${FILES} files: ${secs.toFixed(1)} s, ${requests} requests served (${Math.round(requests / secs)} req/s)`);
    for (const [i, r] of repos.entries()) {
      expect(results[i]!.refs[0]!.checksum).toBe(commit);
      expect(await readRef(r, { kind: "remote", remote: "origin" }, "main")).toBe(commit);
    }
    for (const i of [0, 1, CLIENTS - 1]) {
      const f = runOstree(["fsck", `--repo=${repos[i]!.path}`]);
      expect(f.status, f.stderr).toBe(0);
    }
  }, 300_000);
});
