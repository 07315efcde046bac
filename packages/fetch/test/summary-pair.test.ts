import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import { join, normalize } from "node:path";
import { importRemoteKeys } from "@ostree-ts/gpg";
import { describeInterop, listenOnLoopback, makeGnupgKey, ostree, tempDir, type GnupgKey } from "@ostree-ts/interop";
import { listRefs, Repo } from "@ostree-ts/objstore";
import { afterAll, beforeAll, expect, test } from "vitest";
import { pull, Remotes } from "../src/index.js";

/**
 * A static file server as nginx is one: with `etags`, each file has its own
 * ETag (size and mtime) and `If-Match` with any other value is 412; without,
 * no validators at all. Logs each request's path and If-Match.
 */
async function strictStaticServer(root: string, etags: boolean): Promise<{ url: string; log: Array<{ path: string; ifMatch?: string; status: number }>; close: () => Promise<void> }> {
  const log: Array<{ path: string; ifMatch?: string; status: number }> = [];
  const server: Server = createServer((req: IncomingMessage, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname).slice(1);
    const answer = (status: number, body?: Buffer, headers: Record<string, string> = {}) => {
      log.push({ path, status, ...(req.headers["if-match"] ? { ifMatch: req.headers["if-match"] } : {}) });
      res.writeHead(status, { "content-length": String(body?.length ?? 0), ...headers });
      res.end(body);
    };
    let st;
    try {
      st = statSync(join(root, normalize(path)));
    } catch {
      return answer(404);
    }
    if (!st.isFile()) return answer(404);
    const etag = `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
    if (etags && req.headers["if-match"] && req.headers["if-match"] !== etag) return answer(412);
    answer(200, readFileSync(join(root, normalize(path))), etags ? { etag } : {});
  });
  return {
    ...(await listenOnLoopback(server)),
    log,
  };
}

let tmp: { path: string; cleanup: () => void };
let key: GnupgKey;
let src: string;
let commit: string;

describeInterop("summary pair from plain static servers (no pair header): no If-Match, as before", () => {
  beforeAll(() => {
    if (spawnSync("gpg", ["--version"]).status !== 0) throw new Error("gnupg (gpg) is required: apt-get install gnupg");
    tmp = tempDir("fetch-summary-pair-");
    key = makeGnupgKey(tmp.path, "Static Key <static@example.com>");
    src = join(tmp.path, "src");
    ostree(["init", `--repo=${src}`, "--mode=archive"]);
    mkdirSync(join(tmp.path, "t"));
    writeFileSync(join(tmp.path, "t", "f"), "static\n");
    commit = ostree(["commit", `--repo=${src}`, "-b", "main", "--no-xattrs", join(tmp.path, "t")]).trim();
    ostree(["summary", "-u", `--repo=${src}`, `--gpg-sign=${key.keyId}`, `--gpg-homedir=${key.homedir}`]);
  }, 120_000);
  afterAll(() => {
    key?.cleanup();
    tmp?.cleanup();
  });

  for (const etags of [true, false]) {
    test(`${etags ? "per-file ETags, If-Match enforced (nginx-like)" : "no ETags"}: summary.sig then summary, verified, pulled`, async () => {
      const srv = await strictStaticServer(src, etags);
      try {
        if (etags) {
          // The server does enforce If-Match: the summary asked for with summary.sig's ETag would be refused.
          const sigTag = (await fetch(`${srv.url}/summary.sig`)).headers.get("etag")!;
          expect((await fetch(`${srv.url}/summary`, { headers: { "if-match": sigTag } })).status).toBe(412);
          srv.log.length = 0;
        }
        const repo = await Repo.init(join(tmp.path, `ours-${etags}`), { mode: "archive" });
        await new Remotes(repo).add("origin", srv.url, { set: [["gpg-verify", "false"], ["gpg-verify-summary", "true"]] });
        await importRemoteKeys(repo, "origin", key.publicKey);
        await pull(repo, "origin", { refs: ["main"] });
        expect((await listRefs(repo)).map((r) => r.checksum)).toEqual([commit]);
        expect(srv.log.slice(0, 2)).toEqual([
          { path: "summary.sig", status: 200 },
          { path: "summary", status: 200 },
        ]);
        expect(srv.log.filter((l) => l.ifMatch !== undefined)).toEqual([]);
      } finally {
        await srv.close();
      }
    });
  }
});
