import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { get } from "node:http";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, expect, test } from "vitest";
import { describeInterop, ostree, tempDir, xorshiftBytes } from "@ostree-ts/interop";

const appDir = fileURLToPath(new URL("..", import.meta.url));
let tmp: { path: string; cleanup: () => void };
let child: ChildProcess | undefined;

describeInterop("ostree-ts-server executable: --config, JSON logs to files, graceful SIGTERM", () => {
  beforeAll(() => {
    execFileSync(process.execPath, [join(appDir, "scripts/build.mjs")]);
    tmp = tempDir("server-main-");
  });
  afterAll(() => {
    child?.kill("SIGKILL");
    tmp?.cleanup();
  });

  test("an in-flight response finishes after SIGTERM; new connections are refused; exit status 0", async () => {
    const repo = join(tmp.path, "repo");
    ostree(["init", `--repo=${repo}`, "--mode=archive"]);
    mkdirSync(join(tmp.path, "t"));
    writeFileSync(join(tmp.path, "t", "f"), "x\n");
    ostree(["commit", `--repo=${repo}`, "-b", "main", "--no-xattrs", join(tmp.path, "t")]);
    // A large file the client reads slowly: still being sent when SIGTERM arrives.
    const big = xorshiftBytes(16 << 20, 3);
    mkdirSync(join(repo, "deltas/aa"), { recursive: true });
    writeFileSync(join(repo, "deltas/aa/big"), big);
    writeFileSync(
      join(tmp.path, "server.json"),
      JSON.stringify({ repos: [{ name: "os", path: "repo" }], port: 0, summaryPollMs: 100, shutdownGraceMs: 60_000, log: { access: "access.log", events: "events.log" } }),
    );
    child = spawn(process.execPath, [join(appDir, "dist/ostree-ts-server.mjs"), "--config", join(tmp.path, "server.json")], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    const port = await new Promise<number>((ok, fail) => {
      child!.stderr!.on("data", (d: Buffer) => {
        stderr += d.toString();
        const m = /"event":"listening".*"port":(\d+)/.exec(stderr);
        if (m) ok(Number(m[1]));
      });
      child!.on("exit", (c) => fail(new Error(`server exited ${c}: ${stderr}`)));
    });
    const base = `http://127.0.0.1:${port}`;
    expect((await fetch(`${base}/os/config`)).status).toBe(200);
    expect((await fetch(`${base}/os/summary`)).status).toBe(200); // written by the keeper at start

    const received = await new Promise<number>((ok, fail) => {
      get(`${base}/os/deltas/aa/big`, (res) => {
        let n = 0;
        res.once("data", (c: Buffer) => {
          n += c.length;
          res.pause();
          child!.kill("SIGTERM");
          setTimeout(() => {
            res.on("data", (d: Buffer) => (n += d.length));
            res.on("end", () => ok(n));
            res.resume();
          }, 500);
        });
        res.on("error", fail);
      }).on("error", fail);
    });
    expect(received).toBe(big.length);
    const code = await new Promise<number | null>((ok) => (child!.exitCode !== null ? ok(child!.exitCode) : child!.on("exit", (c) => ok(c))));
    expect(code).toBe(0);
    await expect(fetch(`${base}/healthz`)).rejects.toThrow();
    expect(stderr).toContain('"event":"shutdown","signal":"SIGTERM"');

    const access = readFileSync(join(tmp.path, "access.log"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(access.map((e) => [e.method, e.path, e.status])).toEqual([
      ["GET", "/os/config", 200],
      ["GET", "/os/summary", 200],
      ["GET", "/os/deltas/aa/big", 200],
    ]);
    expect(access[2]!.bytes).toBe(big.length);
    const events = readFileSync(join(tmp.path, "events.log"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(events[0]).toMatchObject({ event: "summary-updated", reason: "refs-changed", signed: false });
  }, 60_000);
});
