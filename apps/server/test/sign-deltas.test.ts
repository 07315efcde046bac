import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { describeInterop, expectOstreeFsckClean, makeDeltaTestTree, makeGnupgKey, ostree, runOstreeAsync, tempDir, until } from "@ostree-ts/interop";
import { superblockPath } from "@ostree-ts/deltas";
import { decodeSummarySig, Ed25519Engine, signaturesOf, verifyDataWith } from "@ostree-ts/gpg";
import { readRef, Repo } from "@ostree-ts/objstore";
import { parseSummary, pull, Remotes } from "@ostree-ts/fetch";
import { ConfigError, loadConfig } from "../src/config.js";
import { RepoServer, type AccessLogEntry, type ServerEvent } from "../src/server.js";
import { oneFileRepo, summaryDeltas } from "./helpers.js";

const summaryRefs = (repo: string) => [...parseSummary(new Uint8Array(readFileSync(join(repo, "summary")))).refs].map(([ref, r]) => `${ref}=${r.checksum}`);

let tmp: { path: string; cleanup: () => void };
const servers: RepoServer[] = [];
let gpgHome: string;
let keyId: string;

describeInterop("ostree-ts-server: summary.sig signing and background deltas", () => {
  beforeAll(() => {
    tmp = tempDir("server-sign-");
    if (spawnSync("gpg", ["--version"]).status !== 0) throw new Error("gnupg (gpg) is required: apt-get install gnupg");
    const key = makeGnupgKey(tmp.path, "Server Key <srv@example.com>");
    gpgHome = key.homedir;
    keyId = key.keyId;
    writeFileSync(join(tmp.path, "key.gpg"), key.publicKey);
  });
  afterAll(async () => {
    for (const s of servers) await s.stop();
    spawnSync("gpgconf", ["--homedir", gpgHome, "--kill", "gpg-agent"]);
    tmp?.cleanup();
  });

  test("GPG: summary.sig kept valid across new commits and an outside `summary -u`; real ostree pulls with gpg-verify-summary=true", async () => {
    const repo = oneFileRepo(tmp.path, "gsrc", "one\n");
    const src = repo.path;
    const c1 = repo.first;
    const events: ServerEvent[] = [];
    const server = new RepoServer({ repos: [{ name: "", path: src }], port: 0, summaryPollMs: 50, log: null, events: (e) => events.push(e), sign: { gpg: { keyIds: [keyId], homedir: gpgHome } } });
    servers.push(server);
    const url = `http://127.0.0.1:${await server.start()}`;
    expect(existsSync(join(src, "summary.sig"))).toBe(true);

    const dest = join(tmp.path, "gdest");
    ostree(["init", `--repo=${dest}`, "--mode=bare-user"]);
    ostree(["remote", "add", `--repo=${dest}`, "--set=gpg-verify-summary=true", "--set=gpg-verify=false", `--gpg-import=${join(tmp.path, "key.gpg")}`, "origin", url]);
    let r = await runOstreeAsync(["pull", `--repo=${dest}`, "origin", "main"]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(ostree(["rev-parse", `--repo=${dest}`, "origin:main"]).trim()).toBe(c1);

    // A new commit: the keeper rebuilds and re-signs the summary.
    const c2 = repo.commit("two\n");
    await until("summary with the new commit", () => summaryRefs(src).includes(`main=${c2}`) && existsSync(join(src, "summary.sig")));
    await server.keepers.get("")!.idle();
    r = await runOstreeAsync(["pull", `--repo=${dest}`, "origin", "main"]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(ostree(["rev-parse", `--repo=${dest}`, "origin:main"]).trim()).toBe(c2);

    // `ostree summary -u` outside the server deletes summary.sig: it is signed again.
    ostree(["summary", "-u", `--repo=${src}`]);
    expect(existsSync(join(src, "summary.sig"))).toBe(false);
    await until("summary.sig re-made", () => existsSync(join(src, "summary.sig")));
    await server.keepers.get("")!.idle();
    const v = spawnSync("ostree", ["summary", "--view", `--repo=${src}`]);
    expect(v.status).toBe(0);
    const remoteSummary = await runOstreeAsync(["remote", "summary", `--repo=${dest}`, "origin"]);
    expect(remoteSummary.stderr).toBe("");
    expect(remoteSummary.stdout).toContain("GPG: Verification enabled, found 1 signature");
    expect(remoteSummary.stdout).toContain("Good signature from \"Server Key <srv@example.com>\"");
    expect(events.map((e) => e.event)).toEqual(expect.arrayContaining(["summary-updated", "summary-signed"]));
    expectOstreeFsckClean(dest);
  }, 120_000);

  test("ed25519: summary.sig carries ostree.sign.ed25519 signatures that verify with the public key", async () => {
    const src = oneFileRepo(tmp.path, "esrc", "e\n").path;
    const kp = await Ed25519Engine.generate();
    writeFileSync(join(tmp.path, "ed.key"), `# server key\n${kp.secret}\n`);
    const server = new RepoServer({ repos: [{ name: "", path: src, sign: { ed25519: { secretKeyFiles: [join(tmp.path, "ed.key")] } } }], port: 0, summaryPollMs: 0, log: null, events: null });
    servers.push(server);
    await server.start();
    const summary = new Uint8Array(readFileSync(join(src, "summary")));
    const sig = decodeSummarySig(new Uint8Array(readFileSync(join(src, "summary.sig"))));
    expect(signaturesOf(sig, "ostree.sign.ed25519")).toHaveLength(1);
    const engine = new Ed25519Engine();
    engine.publicKeys.push(new Uint8Array(Buffer.from(kp.public, "base64")));
    await expect(verifyDataWith(summary, sig, engine)).resolves.toMatch(/ed25519: Signature verified successfully/);
    const other = new Ed25519Engine();
    other.publicKeys.push(new Uint8Array(Buffer.from((await Ed25519Engine.generate()).public, "base64")));
    await expect(verifyDataWith(summary, sig, other)).rejects.toThrow();
  });

  test("background deltas: made from the parent (and scratch) after a new commit; real ostree and ours pull by delta", async () => {
    const src = join(tmp.path, "dsrc");
    ostree(["init", `--repo=${src}`, "--mode=archive"]);
    makeDeltaTestTree(join(tmp.path, "d1"), 1);
    makeDeltaTestTree(join(tmp.path, "d2"), 2);
    const c1 = ostree(["commit", `--repo=${src}`, "-b", "os", "--no-xattrs", join(tmp.path, "d1")]).trim();
    const log: AccessLogEntry[] = [];
    const events: ServerEvent[] = [];
    const server = new RepoServer({ repos: [{ name: "os", path: src }], port: 0, summaryPollMs: 50, log: (e) => log.push(e), events: (e) => events.push(e), deltas: { enabled: true, empty: true } });
    servers.push(server);
    const url = `http://127.0.0.1:${await server.start()}/os`;
    await until("scratch delta for c1 in the summary", () => summaryDeltas(src).includes(c1));

    const dest = join(tmp.path, "ddest");
    ostree(["init", `--repo=${dest}`, "--mode=bare-user"]);
    ostree(["remote", "add", `--repo=${dest}`, "--no-gpg-verify", "origin", url]);
    let r = await runOstreeAsync(["pull", "--require-static-deltas", `--repo=${dest}`, "origin", "os"]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);

    const c2 = ostree(["commit", `--repo=${src}`, "-b", "os", "--no-xattrs", join(tmp.path, "d2")]).trim();
    await until("FROM delta c1-c2 in the summary", () => summaryDeltas(src).includes(`${c1}-${c2}`) && summaryDeltas(src).includes(c2));
    await server.deltaWorkers.get("os")!.idle();
    await server.keepers.get("os")!.idle();
    expect(events.filter((e) => e.event === "delta-generated").map((e) => e.delta)).toEqual([c1, `${c1}-${c2}`, c2]);
    expect(existsSync(join(src, "delta-indexes"))).toBe(true);

    log.length = 0;
    r = await runOstreeAsync(["pull", "--require-static-deltas", `--repo=${dest}`, "origin", "os"]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(ostree(["rev-parse", `--repo=${dest}`, "origin:os"]).trim()).toBe(c2);
    expect(log.map((l) => l.path)).toContain(`/os/${superblockPath(c1, c2)}`);
    expectOstreeFsckClean(dest);

    // Ours: c1 by its scratch delta, then c2 by the FROM delta.
    const ours = await Repo.init(join(tmp.path, "dours"), { mode: "bare-user" });
    await new Remotes(ours).add("origin", url, { noGpgVerify: true });
    await pull(ours, "origin", { refs: [`os@${c1}`], requireStaticDeltas: true });
    log.length = 0;
    await pull(ours, "origin", { refs: ["os"], requireStaticDeltas: true });
    expect(await readRef(ours, { kind: "remote", remote: "origin" }, "os")).toBe(c2);
    expect(log.map((l) => l.path)).toContain(`/os/${superblockPath(c1, c2)}`);
    expectOstreeFsckClean(ours.path);
  }, 180_000);
});

describe("config file", () => {
  test("repos, listen address, signing, deltas, logging; relative paths from the file's directory", async () => {
    const t = tempDir("server-config-");
    try {
      const path = join(t.path, "server.json");
      writeFileSync(
        path,
        JSON.stringify({
          host: "0.0.0.0",
          port: 9000,
          repos: [
            { name: "os", path: "repos/os", deltas: { enabled: true, empty: true, fromDepth: 3, pruneAfterSeconds: 600 } },
            { name: "apps", path: "/srv/apps", sign: { ed25519: { secretKeyFiles: ["keys/ed"] } } },
          ],
          sign: { gpg: { keyIds: ["ABCD"], homedir: "gnupg" } },
          summaryPollMs: 500,
          log: { access: "off", events: "stderr" },
        }),
      );
      const o = await loadConfig(path);
      expect(o.host).toBe("0.0.0.0");
      expect(o.port).toBe(9000);
      expect(o.repos).toEqual([
        { name: "os", path: join(t.path, "repos/os"), deltas: { enabled: true, empty: true, fromDepth: 3, pruneAfterSeconds: 600 } },
        { name: "apps", path: "/srv/apps", sign: { ed25519: { secretKeyFiles: [join(t.path, "keys/ed")] } } },
      ]);
      expect(o.sign).toEqual({ gpg: { keyIds: ["ABCD"], homedir: join(t.path, "gnupg") } });
      expect(o.log).toBeNull();
      expect(typeof o.events).toBe("function");
      expect(o.summaryPollMs).toBe(500);

      writeFileSync(path, JSON.stringify({ repos: { os: "r" }, delta: {} }));
      await expect(loadConfig(path)).rejects.toThrow(new ConfigError(`${path}: unknown key "delta" (allowed: host, port, tls, repos, updateSummary, summaryPollMs, shutdownGraceMs, sign, deltas, log)`));
      writeFileSync(path, JSON.stringify({ repos: [{ path: "a" }, { name: "b", path: "b" }] }));
      await expect(loadConfig(path)).rejects.toThrow(/every one needs a name/);
      writeFileSync(path, JSON.stringify({ repos: { os: "r" }, deltas: { enabled: "yes" } }));
      await expect(loadConfig(path)).rejects.toThrow(/deltas.enabled: expected true or false/);
      writeFileSync(path, JSON.stringify({ repos: { os: "r" }, deltas: { fromDepth: 1.5 } }));
      await expect(loadConfig(path)).rejects.toThrow(/deltas.fromDepth: expected a non-negative integer/);
    } finally {
      t.cleanup();
    }
  });
});
