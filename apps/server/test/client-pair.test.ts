import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer, request, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { describeInterop, listenOnLoopback, makeGnupgKey, tempDir, type GnupgKey } from "@ostree-ts/interop";
import { decodeSummarySig, Ed25519Engine, importRemoteKeys, Keyring, verifySummaryData } from "@ostree-ts/gpg";
import { listRefs, Repo } from "@ostree-ts/objstore";
import { parseSummary, pull, Remotes, SUMMARY_PAIR_ATTEMPTS, SUMMARY_PAIR_HEADER, SummaryPairError } from "@ostree-ts/fetch";
import { RepoServer } from "../src/server.js";
import { GENERATIONS_HELD, type SummaryKeeper } from "../src/summary-keeper.js";
import { oneFileRepo, type OneFileRepo } from "./helpers.js";

interface Logged {
  path: string;
  ifMatch: string | undefined;
  status: number;
  pair: string | undefined;
}

/**
 * A reverse proxy that opens a new upstream connection for every request, as
 * a client reconnecting (or a load balancer) does, so the server cannot pair
 * summary.sig and summary by connection; `beforeSummary` runs before a
 * summary request is forwarded (the test changes the summary there).
 */
async function reconnectingProxy(upstream: string) {
  const log: Logged[] = [];
  const hooks: { beforeSummary: (() => Promise<void>) | null } = { beforeSummary: null };
  const server = createServer((req, res) => {
    const path = req.url ?? "/";
    const forward = async () => {
      if (path === "/summary" && hooks.beforeSummary) await hooks.beforeSummary();
      const headers: IncomingHttpHeaders = { ...req.headers, connection: "close" };
      delete headers.host;
      const up = request(`${upstream}${path}`, { method: req.method, headers, agent: false }, (r) => {
        const pair = r.headers[SUMMARY_PAIR_HEADER];
        log.push({ path, ifMatch: req.headers["if-match"], status: r.statusCode ?? 0, pair: Array.isArray(pair) ? pair[0] : pair });
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      up.on("error", (e) => res.destroy(e));
      up.end();
    };
    forward().catch((e: Error) => res.destroy(e));
  });
  return {
    ...(await listenOnLoopback(server)),
    log,
    hooks,
    summaryRequests: () => log.filter((l) => l.path === "/summary" || l.path === "/summary.sig"),
  };
}

let tmp: { path: string; cleanup: () => void };
let key: GnupgKey;
let ed: { secret: string; public: string };
let src: OneFileRepo;
let server: RepoServer;
let keeper: SummaryKeeper;
let proxy: Awaited<ReturnType<typeof reconnectingProxy>>;
let generation = 0;

/** A new summary generation: one more ref, then the keeper rebuilds and signs (no polling runs in this test). */
async function newGeneration(): Promise<void> {
  writeFileSync(join(src.path, "refs", "heads", `g${generation++}`), `${src.first}\n`);
  await keeper.refresh("test");
}

async function client(name: string): Promise<Repo> {
  const repo = await Repo.init(join(tmp.path, name), { mode: "archive" });
  await new Remotes(repo).add("origin", proxy.url, {
    set: [
      ["gpg-verify", "false"],
      ["gpg-verify-summary", "true"],
      ["sign-verify-summary", "ed25519"],
      ["verification-ed25519-key", ed.public],
    ],
  });
  await importRemoteKeys(repo, "origin", key.publicKey);
  return repo;
}

describeInterop("ostree-ts pull: summary and summary.sig as one pair from ostree-ts-server across reconnects", () => {
  beforeAll(async () => {
    if (spawnSync("gpg", ["--version"]).status !== 0) throw new Error("gnupg (gpg) is required: apt-get install gnupg");
    tmp = tempDir("server-client-pair-");
    key = makeGnupgKey(tmp.path, "Pair Client <pair@example.com>");
    ed = await Ed25519Engine.generate();
    src = oneFileRepo(tmp.path, "src", "x\n");
    server = new RepoServer({
      repos: [{ name: "", path: src.path }],
      port: 0,
      summaryPollMs: 0,
      log: null,
      events: null,
      sign: { gpg: { keyIds: [key.keyId], homedir: key.homedir }, ed25519: { secretKeys: [ed.secret] } },
    });
    keeper = (await server.start(), server.keepers.get("")!);
    proxy = await reconnectingProxy(`http://127.0.0.1:${(server.server.address() as AddressInfo).port}`);
  }, 120_000);
  afterAll(async () => {
    await proxy?.close();
    await server?.stop();
    key?.cleanup();
    tmp?.cleanup();
  });

  test("the summary changes between the two requests: plain GETs get a mismatched pair, ours asks for the sig's generation with If-Match", async () => {
    // Without If-Match the server has nothing to pair by on a new connection: the signature does not verify.
    const sig = Buffer.from(await (await fetch(`${proxy.url}/summary.sig`)).arrayBuffer());
    proxy.hooks.beforeSummary = newGeneration;
    const summary = Buffer.from(await (await fetch(`${proxy.url}/summary`)).arrayBuffer());
    const keyring = new Keyring();
    writeFileSync(join(tmp.path, "key.gpg"), key.publicKey);
    await keyring.addFile(join(tmp.path, "key.gpg"));
    expect((await verifySummaryData(new Uint8Array(summary), decodeSummarySig(new Uint8Array(sig)), keyring)).countValid).toBe(0);

    const repo = await client("ours");
    for (let i = 0; i < 5; i++) {
      proxy.log.length = 0;
      const moved = `g${generation}`;
      let fired = false;
      proxy.hooks.beforeSummary = async () => {
        if (fired) return;
        fired = true;
        await newGeneration();
      };
      await pull(repo, "origin", { refs: ["main"] });
      const [s, m] = proxy.summaryRequests();
      expect(s).toMatchObject({ path: "/summary.sig", status: 200, ifMatch: undefined });
      expect(s!.pair).toMatch(/^"sum-[0-9a-f]+"$/);
      expect(m).toEqual({ path: "/summary", ifMatch: s!.pair, status: 200, pair: s!.pair });
      // What was verified and cached is the generation summary.sig came from, not the newer one the server now has.
      const cached = parseSummary(new Uint8Array(readFileSync(join(repo.path, "tmp", "cache", "summaries", "origin"))));
      expect([...cached.refs.keys()]).not.toContain(moved);
      expect([...parseSummary(keeper.current!.summary).refs.keys()]).toContain(moved);
    }
    expect((await listRefs(repo)).map((r) => r.checksum)).toEqual([src.first]);
  }, 120_000);

  test("the generation is dropped between the two requests (412): the pair is fetched again; when that keeps happening, SummaryPairError", async () => {
    const burst = async () => {
      for (let i = 0; i <= GENERATIONS_HELD; i++) await newGeneration();
    };
    let fired = false;
    proxy.hooks.beforeSummary = async () => {
      if (fired) return;
      fired = true;
      await burst();
    };
    proxy.log.length = 0;
    const once = await client("once");
    await pull(once, "origin", { refs: ["main"] });
    expect(proxy.summaryRequests().map((l) => `${l.path} ${l.status}`)).toEqual(["/summary.sig 200", "/summary 412", "/summary.sig 200", "/summary 200"]);
    expect((await listRefs(once)).map((r) => r.checksum)).toEqual([src.first]);

    proxy.hooks.beforeSummary = burst;
    proxy.log.length = 0;
    const always = await client("always");
    const err = await pull(always, "origin", { refs: ["main"] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SummaryPairError);
    expect((err as Error).message).toBe(`Fetching summary and summary.sig from ${proxy.url}: the summary changed between the two requests ${SUMMARY_PAIR_ATTEMPTS} times in a row`);
    expect(proxy.summaryRequests().map((l) => `${l.path} ${l.status}`)).toEqual(Array.from({ length: SUMMARY_PAIR_ATTEMPTS }, () => ["/summary.sig 200", "/summary 412"]).flat());
    expect(await listRefs(always)).toEqual([]);
    proxy.hooks.beforeSummary = null;
  }, 180_000);
});
