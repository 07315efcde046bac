import { execFile, execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { get } from "node:http";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, expect, test } from "vitest";
import { describeInterop, expectOstreeFsckClean, ostree, tempDir, xorshiftBytes } from "@ostree-ts/interop";
import { readRef, Repo } from "@ostree-ts/objstore";
import { pull, Remotes } from "@ostree-ts/fetch";
import { oneFileRepo } from "./helpers.js";

/** Start the bundled server with a config file; resolves with its port once it prints the listening event. */
function startServer(config: string, onStderr: (s: string) => void = () => {}): Promise<{ child: ChildProcess; port: number }> {
  const c = spawn(process.execPath, [join(appDir, "dist/ostree-ts-server.mjs"), "--config", config], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  return new Promise((ok, fail) => {
    c.stderr!.on("data", (d: Buffer) => {
      stderr += d.toString();
      onStderr(stderr);
      const m = /"event":"listening".*"port":(\d+)/.exec(stderr);
      if (m) ok({ child: c, port: Number(m[1]) });
    });
    c.on("exit", (code) => fail(new Error(`server exited ${code}: ${stderr}`)));
  });
}

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
    const repo = oneFileRepo(tmp.path, "repo", "x\n").path;
    // A large file the client reads slowly: still being sent when SIGTERM arrives.
    const big = xorshiftBytes(16 << 20, 3);
    mkdirSync(join(repo, "deltas/aa"), { recursive: true });
    writeFileSync(join(repo, "deltas/aa/big"), big);
    writeFileSync(
      join(tmp.path, "server.json"),
      JSON.stringify({ repos: [{ name: "os", path: "repo" }], port: 0, summaryPollMs: 100, shutdownGraceMs: 60_000, log: { access: "access.log", events: "events.log" } }),
    );
    let stderr = "";
    const started = await startServer(join(tmp.path, "server.json"), (e) => (stderr = e));
    child = started.child;
    const port = started.port;
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

  test("TLS from the config file: real ostree and ours (tls-ca-path) pull over https", async () => {
    const commit = oneFileRepo(tmp.path, "tls-repo", "over tls\n").first;
    execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", join(tmp.path, "key.pem"), "-out", join(tmp.path, "cert.pem")], { stdio: "ignore" });
    writeFileSync(join(tmp.path, "tls.json"), JSON.stringify({ repos: { "": "tls-repo" }, port: 0, tls: { cert: "cert.pem", key: "key.pem" }, log: { access: "off", events: "off" } }));
    const s = await startServer(join(tmp.path, "tls.json"));
    child = s.child;
    const url = `https://127.0.0.1:${s.port}`;
    const real = join(tmp.path, "tls-real");
    ostree(["init", `--repo=${real}`, "--mode=bare-user"]);
    ostree(["remote", "add", `--repo=${real}`, "--no-gpg-verify", `--set=tls-ca-path=${join(tmp.path, "cert.pem")}`, "origin", url]);
    const r = await new Promise<{ code: number; stderr: string }>((ok) =>
      execFile("ostree", ["pull", `--repo=${real}`, "origin", "main"], { timeout: 60_000 }, (err, _o, stderr) => ok({ code: err ? 1 : 0, stderr })),
    );
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(ostree(["rev-parse", `--repo=${real}`, "origin:main"]).trim()).toBe(commit);
    expectOstreeFsckClean(real);
    const ours = await Repo.init(join(tmp.path, "tls-ours"), { mode: "archive" });
    await new Remotes(ours).add("origin", url, { noGpgVerify: true, set: [["tls-ca-path", join(tmp.path, "cert.pem")]] });
    await pull(ours, "origin", { refs: ["main"] });
    expect(await readRef(ours, { kind: "remote", remote: "origin" }, "main")).toBe(commit);
    child.kill("SIGTERM");
    await new Promise((ok) => child!.on("exit", ok));
  }, 60_000);
});
