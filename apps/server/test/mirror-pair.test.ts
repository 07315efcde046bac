import { spawnSync } from "node:child_process";
import { cpSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join, normalize } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { describeInterop, listenOnLoopback, makeGnupgKey, ostree, tempDir, type GnupgKey } from "@ostree-ts/interop";
import { importRemoteKeys } from "@ostree-ts/gpg";
import { listRefs, Repo } from "@ostree-ts/objstore";
import { parseSummary, pull, Remotes, SUMMARY_PAIR_HEADER } from "@ostree-ts/fetch";
import { RepoServer } from "../src/server.js";
import { oneFileRepo, type OneFileRepo } from "./helpers.js";

interface Logged {
  path: string;
  status: number;
  ifMatch: string | undefined;
}

/** A plain static server (no ETags, If-Match ignored, as many are) that logs each request. */
async function plainServer(root: string) {
  const log: Logged[] = [];
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname).slice(1);
    let body: Buffer | undefined;
    try {
      if (statSync(join(root, normalize(path))).isFile()) body = readFileSync(join(root, normalize(path)));
    } catch {
      body = undefined;
    }
    log.push({ path, status: body ? 200 : 404, ifMatch: req.headers["if-match"] });
    res.writeHead(body ? 200 : 404, { "content-length": String(body?.length ?? 0) });
    res.end(body);
  });
  return { ...(await listenOnLoopback(server)), log };
}

let tmp: { path: string; cleanup: () => void };
let key: GnupgKey;
let src: OneFileRepo;
let newer: string;
let server: RepoServer;
let ours: string;
let plain: Awaited<ReturnType<typeof plainServer>>;
let list: { url: string; close: () => Promise<void> };

describeInterop("a mirrorlist of a plain static mirror and ostree-ts-server: summary and summary.sig from one mirror", () => {
  beforeAll(async () => {
    if (spawnSync("gpg", ["--version"]).status !== 0) throw new Error("gnupg (gpg) is required: apt-get install gnupg");
    tmp = tempDir("server-mirror-pair-");
    key = makeGnupgKey(tmp.path, "Mirror Pair <mirror@example.com>");
    src = oneFileRepo(tmp.path, "src", "old\n");
    // The plain mirror is a sync from before the last commit, with an unsigned summary of its own.
    ostree(["summary", "-u", `--repo=${src.path}`]);
    cpSync(src.path, join(tmp.path, "stale"), { recursive: true });
    newer = src.commit("new\n");
    rmSync(join(src.path, "summary"));
    server = new RepoServer({ repos: [{ name: "", path: src.path }], port: 0, summaryPollMs: 0, log: null, events: null, sign: { gpg: { keyIds: [key.keyId], homedir: key.homedir } } });
    await server.start();
    ours = `http://127.0.0.1:${(server.server.address() as AddressInfo).port}`;
    plain = await plainServer(join(tmp.path, "stale"));
    list = await listenOnLoopback(
      createServer((_req, res) => {
        const body = `${plain.url}/\n${ours}/\n`;
        res.writeHead(200, { "content-length": String(body.length) });
        res.end(body);
      }),
    );
  }, 120_000);
  afterAll(async () => {
    await list?.close();
    await plain?.close();
    await server?.stop();
    key?.cleanup();
    tmp?.cleanup();
  });

  test("summary.sig only on the second mirror: the summary is that mirror's (If-Match pair), not the first mirror's older one", async () => {
    const sigAnswer = await fetch(`${ours}/summary.sig`);
    expect(sigAnswer.headers.get(SUMMARY_PAIR_HEADER)).toMatch(/.+/);
    const repo = await Repo.init(join(tmp.path, "client"), { mode: "archive" });
    await new Remotes(repo).add("origin", `mirrorlist=${list.url}/mirrors`, { set: [["gpg-verify", "false"], ["gpg-verify-summary", "true"]] });
    await importRemoteKeys(repo, "origin", key.publicKey);
    plain.log.length = 0;
    await pull(repo, "origin", { refs: ["main"] });
    expect((await listRefs(repo)).map((r) => r.checksum)).toEqual([newer]);
    // The plain mirror was asked for summary.sig (it has none), never for the summary.
    expect(plain.log.filter((l) => l.path.startsWith("summary"))).toEqual([{ path: "summary.sig", status: 404, ifMatch: undefined }]);
    const cached = parseSummary(new Uint8Array(readFileSync(join(repo.path, "tmp", "cache", "summaries", "origin"))));
    expect(cached.refs.get("main")?.checksum).toBe(newer);
  });
});
