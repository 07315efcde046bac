import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { Agent, request } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { describeInterop, expectOstreeFsckClean, makeGnupgKey, ostree, runOstreeAsync, tempDir, until } from "@ostree-ts/interop";
import { decodeSummarySig, Ed25519Engine, Keyring, verifyDataWith, verifySummaryData } from "@ostree-ts/gpg";
import { parseSummary } from "@ostree-ts/fetch";
import { RepoServer } from "../src/server.js";
import { oneFileRepo } from "./helpers.js";

type Got = { status: number; etag: string; body: Buffer };
function get(url: string, agent: Agent, headers: Record<string, string> = {}): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, etag: String(res.headers.etag ?? ""), body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

let tmp: { path: string; cleanup: () => void };
const servers: RepoServer[] = [];
let gpgHome: string;
let keyId: string;
let keyring: Keyring;
let ed: { secret: string; public: string };

describeInterop("ostree-ts-server: summary and summary.sig served as one pair; collection IDs", () => {
  beforeAll(async () => {
    tmp = tempDir("server-pair-");
    if (spawnSync("gpg", ["--version"]).status !== 0) throw new Error("gnupg (gpg) is required: apt-get install gnupg");
    const key = makeGnupgKey(tmp.path, "Pair Key <pair@example.com>");
    gpgHome = key.homedir;
    keyId = key.keyId;
    writeFileSync(join(tmp.path, "key.gpg"), key.publicKey);
    keyring = new Keyring();
    await keyring.addFile(join(tmp.path, "key.gpg"));
    ed = await Ed25519Engine.generate();
  });
  afterAll(async () => {
    for (const s of servers) await s.stop();
    spawnSync("gpgconf", ["--homedir", gpgHome, "--kill", "gpg-agent"]);
    tmp?.cleanup();
  });

  test("readers hammering summary.sig + summary while refs change only ever get pairs that verify (GPG and ed25519)", async () => {
    const { path: src, first: c1 } = oneFileRepo(tmp.path, "src", "x\n");
    const server = new RepoServer({
      repos: [{ name: "", path: src }],
      port: 0,
      summaryPollMs: 20,
      log: null,
      events: null,
      sign: { gpg: { keyIds: [keyId], homedir: gpgHome }, ed25519: { secretKeys: [ed.secret] } },
    });
    servers.push(server);
    const url = `http://127.0.0.1:${await server.start()}`;
    const keeper = server.keepers.get("")!;

    // Deterministic: a connection that took summary.sig gets the summary of that generation, even after a change.
    const pinned = new Agent({ keepAlive: true, maxSockets: 1 });
    const sig0 = await get(`${url}/summary.sig`, pinned);
    const before = keeper.updates;
    writeFileSync(join(src, "refs", "heads", "pinned"), `${c1}\n`);
    await until("a new generation", () => keeper.updates > before);
    const sum0 = await get(`${url}/summary`, pinned);
    expect(sum0.etag).toBe(sig0.etag);
    expect([...parseSummary(new Uint8Array(sum0.body)).refs.keys()]).not.toContain("pinned");
    // The pair is complete: the next request starts from the newest generation.
    const sum1 = await get(`${url}/summary`, pinned);
    expect(sum1.etag).toBe(keeper.current!.etag);
    expect([...parseSummary(new Uint8Array(sum1.body)).refs.keys()]).toContain("pinned");
    // If-Match names a generation; the old one is still held, an unknown one is 412.
    const fresh = new Agent({ keepAlive: false });
    const old = await get(`${url}/summary.sig`, fresh, { "if-match": sig0.etag });
    expect(old.status).toBe(200);
    expect(old.body.equals(sig0.body)).toBe(true);
    expect((await get(`${url}/summary`, fresh, { "if-match": '"sum-gone"' })).status).toBe(412);

    // Hammering: one reader on a keep-alive connection (as ostree: sig, then summary), one pairing by If-Match.
    const pairs = new Map<string, { summary: Buffer; sig: Buffer }>();
    let done = false;
    let fetched = 0;
    const readers = [
      (async () => {
        const a = new Agent({ keepAlive: true, maxSockets: 1 });
        while (!done) {
          const sig = await get(`${url}/summary.sig`, a);
          const summary = await get(`${url}/summary`, a);
          pairs.set(`${summary.body.toString("hex")}/${sig.body.toString("hex")}`, { summary: summary.body, sig: sig.body });
          fetched++;
        }
        a.destroy();
      })(),
      (async () => {
        const a = new Agent({ keepAlive: false });
        while (!done) {
          const summary = await get(`${url}/summary`, a);
          const sig = await get(`${url}/summary.sig`, a, { "if-match": summary.etag });
          expect(sig.status).toBe(200);
          pairs.set(`${summary.body.toString("hex")}/${sig.body.toString("hex")}`, { summary: summary.body, sig: sig.body });
          fetched++;
        }
        a.destroy();
      })(),
    ];
    for (let i = 0; i < 12; i++) {
      const n = keeper.updates;
      writeFileSync(join(src, "refs", "heads", `r${i}`), `${c1}\n`);
      await until(`generation ${i}`, () => keeper.updates > n);
    }
    done = true;
    await Promise.all(readers);
    pinned.destroy();
    expect(fetched).toBeGreaterThan(24);
    const summaries = new Set([...pairs.values()].map((p) => p.summary.toString("hex")));
    expect(summaries.size).toBeGreaterThanOrEqual(4);
    const engine = new Ed25519Engine();
    engine.publicKeys.push(new Uint8Array(Buffer.from(ed.public, "base64")));
    for (const { summary, sig } of pairs.values()) {
      const dict = decodeSummarySig(new Uint8Array(sig));
      (await verifySummaryData(new Uint8Array(summary), dict, keyring)).requireValidSignature();
      await expect(verifyDataWith(new Uint8Array(summary), dict, engine)).resolves.toMatch(/verified successfully/);
    }
  }, 180_000);

  test("collection ID: the keeper commits a signed ostree-metadata as `summary -u` does; real ostree pulls the collection ref after a change", async () => {
    const repo = oneFileRepo(tmp.path, "csrc", "one\n", { collectionId: "org.example.Served" });
    const src = repo.path;
    const c1 = repo.first;
    const server = new RepoServer({ repos: [{ name: "c", path: src }], port: 0, summaryPollMs: 50, log: null, events: null, sign: { gpg: { keyIds: [keyId], homedir: gpgHome } } });
    servers.push(server);
    const url = `http://127.0.0.1:${await server.start()}/c`;
    const meta1 = ostree(["rev-parse", `--repo=${src}`, "ostree-metadata"]).trim();
    const bindings = ostree(["show", `--repo=${src}`, "--print-metadata-key=ostree.collection-binding", "ostree-metadata"]).trim();
    expect(bindings).toBe("'org.example.Served'");
    expect((await runOstreeAsync(["show", `--repo=${src}`, "--gpg-verify-remote=x", "ostree-metadata"])).status).not.toBe(0);

    const dest = join(tmp.path, "cdest");
    ostree(["init", `--repo=${dest}`, "--mode=bare-user"]);
    ostree(["remote", "add", `--repo=${dest}`, "--collection-id=org.example.Served", "--set=gpg-verify-summary=true", "--set=gpg-verify=false", `--gpg-import=${join(tmp.path, "key.gpg")}`, "origin", url]);
    let r = await runOstreeAsync(["pull", `--repo=${dest}`, "origin", "main"]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(ostree(["rev-parse", `--repo=${dest}`, "origin:main"]).trim()).toBe(c1);

    const c2 = repo.commit("two\n");
    const keeper = server.keepers.get("c")!;
    await until("summary with c2", () => keeper.current !== null && parseSummary(keeper.current.summary).refs.get("main")?.checksum === c2);
    const meta2 = ostree(["rev-parse", `--repo=${src}`, "ostree-metadata"]).trim();
    expect(meta2).not.toBe(meta1);
    expect(ostree(["rev-parse", `--repo=${src}`, "ostree-metadata^"]).trim()).toBe(meta1);

    r = await runOstreeAsync(["pull", `--repo=${dest}`, "origin", "main"]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(ostree(["rev-parse", `--repo=${dest}`, "origin:main"]).trim()).toBe(c2);
    expect(ostree(["refs", `--repo=${dest}`, "--collections"])).toContain("(org.example.Served, main)");
    // The metadata commit is GPG-signed: a remote that verifies commits pulls it.
    ostree(["remote", "add", `--repo=${dest}`, "--collection-id=org.example.Served", `--gpg-import=${join(tmp.path, "key.gpg")}`, "meta", url]);
    r = await runOstreeAsync(["pull", `--repo=${dest}`, "meta", "ostree-metadata"]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(ostree(["rev-parse", `--repo=${dest}`, "meta:ostree-metadata"]).trim()).toBe(meta2);
    expectOstreeFsckClean(dest);
    // Real `ostree find-remotes` finds the collection ref at our server with the new commit.
    const found = await runOstreeAsync(["find-remotes", `--repo=${dest}`, "--finders=config", "org.example.Served", "main"]);
    expect(found.status).toBe(0);
    expect(found.stdout).toContain(`Result 0: ${url}\n - Finder: OstreeRepoFinderConfig\n`);
    expect(found.stdout).toContain(`    - (org.example.Served, main) = ${c2}\n`);
    expect(found.stdout).toContain("1/1 refs were found.\n");

    // `ostree summary --view` of the bytes served.
    const view = join(tmp.path, "view");
    ostree(["init", `--repo=${view}`, "--mode=archive"]);
    const served = await get(`${url}/summary`, new Agent({ keepAlive: false }));
    writeFileSync(join(view, "summary"), served.body);
    const out = ostree(["summary", "--view", `--repo=${view}`]);
    expect(out).toMatch(new RegExp(`^\\* \\(org\\.example\\.Served, main\\)\\n    Latest Commit \\(\\d+ bytes\\):\\n      ${c2}$`, "m"));
    expect(out).toMatch(new RegExp(`^\\* \\(org\\.example\\.Served, ostree-metadata\\)\\n    Latest Commit \\(\\d+ bytes\\):\\n      ${meta2}$`, "m"));
    expect(out).toContain("Collection ID (ostree.summary.collection-id): org.example.Served");
    expect(readFileSync(join(src, "summary")).equals(served.body)).toBe(true);

    // Up to date means no new ostree-metadata commit per poll; a mirrored collection ref is picked up once.
    let n = keeper.updates;
    await new Promise((ok) => setTimeout(ok, 400));
    expect(keeper.updates).toBe(n);
    mkdirSync(join(src, "refs", "mirrors", "org.example.Other"), { recursive: true });
    writeFileSync(join(src, "refs", "mirrors", "org.example.Other", "mirrored"), `${c1}\n`);
    await until("mirror in the collection map", () => parseSummary(keeper.current!.summary).collections.get("org.example.Other")?.get("mirrored")?.checksum === c1);
    await keeper.idle();
    n = keeper.updates;
    await new Promise((ok) => setTimeout(ok, 400));
    expect(keeper.updates).toBe(n);
  }, 180_000);
});
