import { writeFileSync } from "node:fs";
import { fsck, Repo } from "@ostree-ts/objstore";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { describeInterop, ostree, ostreeAsync, tempDir, until } from "@ostree-ts/interop";
import { parseSummary } from "@ostree-ts/fetch";
import { RepoServer, type AccessLogEntry } from "../src/server.js";
import { oneFileRepo } from "./helpers.js";

let tmp: { path: string; cleanup: () => void };
let server: RepoServer;
let base: string;
let commit: string;
const logs: AccessLogEntry[] = [];

describeInterop("ostree-ts-server", () => {
  beforeAll(async () => {
    tmp = tempDir("server-test-");
    const made = oneFileRepo(tmp.path, "repo", "x".repeat(5000));
    const repo = made.path;
    commit = made.first;
    writeFileSync(join(tmp.path, "secret"), "no");
    server = new RepoServer({ repos: [{ name: "", path: repo }], port: 0, summaryPollMs: 50, log: (e) => logs.push(e) });
    base = `http://127.0.0.1:${await server.start()}`;
  });
  afterAll(async () => {
    await server?.stop();
    tmp?.cleanup();
  });

  test("objects: length, validators, immutable caching, HEAD, Range, 304", async () => {
    const url = `${base}/objects/${commit.slice(0, 2)}/${commit.slice(2)}.commit`;
    const r = await fetch(url);
    const body = new Uint8Array(await r.arrayBuffer());
    expect(r.status).toBe(200);
    expect(Number(r.headers.get("content-length"))).toBe(body.length);
    expect(r.headers.get("cache-control")).toContain("immutable");
    const etag = r.headers.get("etag")!;
    expect(r.headers.get("last-modified")).toBeTruthy();
    const head = await fetch(url, { method: "HEAD" });
    expect(head.headers.get("content-length")).toBe(String(body.length));
    const part = await fetch(url, { headers: { range: "bytes=10-" } });
    expect(part.status).toBe(206);
    expect(part.headers.get("content-range")).toBe(`bytes 10-${body.length - 1}/${body.length}`);
    expect(new Uint8Array(await part.arrayBuffer())).toEqual(body.subarray(10));
    const suffix = await fetch(url, { headers: { range: "bytes=-5" } });
    expect(new Uint8Array(await suffix.arrayBuffer())).toEqual(body.subarray(body.length - 5));
    expect((await fetch(url, { headers: { range: `bytes=${body.length}-` } })).status).toBe(416);
    expect((await fetch(url, { headers: { "if-none-match": etag } })).status).toBe(304);
    expect((await fetch(`${base}/refs/heads/main`)).headers.get("cache-control")).toBe("no-cache");
    expect((await fetch(url, { method: "POST" })).status).toBe(405);
  });

  test("path traversal and non-repo files are rejected; /healthz answers", async () => {
    for (const p of ["/../secret", "/%2e%2e/secret", "/objects/../../secret", "/tmp/x", "/.lock", "/state/x", "/objects/..%2f..%2fsecret"]) {
      const { request } = await import("node:http");
      const status = await new Promise<number>((ok) => request(`${base}${p}`, { method: "GET" }, (res) => ok(res.statusCode!)).end());
      expect(status, p).toBe(404);
    }
    expect(await (await fetch(`${base}/healthz`)).text()).toBe("ok\n");
    expect(logs.some((l) => l.path === "/healthz" && l.status === 200)).toBe(true);
  });

  test("summary follows ref changes", async () => {
    ostree(["refs", `--repo=${join(tmp.path, "repo")}`, "--create=second", commit]);
    // Polled until it shows (not a fixed 5 s budget, which a loaded machine can exceed).
    await until("the served summary lists the new ref", async () => parseSummary(new Uint8Array(await (await fetch(`${base}/summary`)).arrayBuffer())).refs.has("second"));
    const view = ostree(["summary", "--view", `--repo=${join(tmp.path, "repo")}`]);
    expect(view).toContain("* second");
  });

  // ostreeAsync: this process keeps serving while ostree runs.
  test("real ostree pulls from it into archive and bare-user repos; fsck passes", async () => {
    for (const mode of ["archive", "bare-user"]) {
      const dest = join(tmp.path, `real-${mode}`);
      await ostreeAsync(["init", `--repo=${dest}`, `--mode=${mode}`]);
      await ostreeAsync(["remote", "add", `--repo=${dest}`, "--no-gpg-verify", "s", base]);
      await ostreeAsync(["pull", `--repo=${dest}`, "s", "main"]);
      expect((await ostreeAsync(["rev-parse", `--repo=${dest}`, "s:main"])).trim()).toBe(commit);
      expect(await ostreeAsync(["fsck", `--repo=${dest}`])).toContain("no errors found");
      await fsck(await Repo.open(dest), { quiet: true });
    }
  });
});
