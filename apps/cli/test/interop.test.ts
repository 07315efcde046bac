/**
 * The built CLI beside the real ostree: same stdout, stderr and exit code for
 * every command line below, on repositories written by ostree.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeInterop, ostree, runOstree, tempDir, type RunResult } from "@ostree-ts/interop";

const CLI = fileURLToPath(new URL("../dist/ostree-ts.mjs", import.meta.url));

function ours(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): RunResult {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, env: { ...process.env, OSTREE_TS_PRGNAME: "ostree", ...env }, encoding: "utf8" });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

describeInterop("ostree-ts CLI matches ostree 2022.7", () => {
  let dir: { path: string; cleanup: () => void };
  const repos: Record<string, string> = {};

  beforeAll(() => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx pnpm@10.34.9 --filter ostree-ts build\` (the root \`pnpm test\` builds first)`);
    dir = tempDir("ostree-ts-cli-");
    const tree = join(dir.path, "tree");
    mkdirSync(join(tree, "sub/deeper"), { recursive: true });
    writeFileSync(join(tree, "hello.txt"), "hello world\n");
    writeFileSync(join(tree, "empty"), "");
    writeFileSync(join(tree, "sub/nested.txt"), "nested\n");
    writeFileSync(join(tree, "sub/deeper/x"), "x".repeat(5000));
    symlinkSync("hello.txt", join(tree, "link"));
    for (const mode of ["archive", "bare-user", "bare"]) {
      const repo = join(dir.path, `repo-${mode}`);
      repos[mode] = repo;
      ostree(["init", `--repo=${repo}`, `--mode=${mode}`]);
      ostree(["commit", `--repo=${repo}`, "-b", "main", "--timestamp=2020-01-01T00:00:00Z", "-s", "First", "--no-xattrs", tree]);
      ostree([
        "commit", `--repo=${repo}`, "-b", "main", "--timestamp=2021-06-01T12:34:56Z", "-s", "Second subject",
        "-m", "Body line 1\nBody line 2\n\nBody 4", "--add-metadata-string=version=2.0", "--add-metadata=answer=uint32 42",
        "--add-detached-metadata-string=note=hi", "--generate-sizes", "--no-xattrs", tree,
      ]);
      for (let i = 0; i < 12; i++) ostree(["refs", `--repo=${repo}`, "main", `--create=app/branch${i}`]);
      ostree(["refs", `--repo=${repo}`, "main", "--create=origin:remote/ref"]);
      ostree(["refs", `--repo=${repo}`, "--alias", "main", "--create=stable"]);
      ostree(["commit", `--repo=${repo}`, "--orphan", "--timestamp=2022-01-01T00:00:00Z", "--no-xattrs", tree]);
    }
  });
  afterAll(() => dir?.cleanup());

  const cases: string[][] = [
    [],
    ["--version"],
    ["-h"],
    ["frob"],
    ["refs"],
    ["refs", "--list"],
    ["refs", "app"],
    ["refs", "app", "--list"],
    ["refs", "origin:"],
    ["refs", "-A"],
    ["refs", "--bogus"],
    ["refs", "-Ax"],
    ["refs", "--create"],
    ["refs", "--delete"],
    ["refs", "--", "--list"],
    ["rev-parse", "main"],
    ["rev-parse", "main^"],
    ["rev-parse", "main^^"],
    ["rev-parse", "stable"],
    ["rev-parse", "origin:remote/ref"],
    ["rev-parse", "remote/ref"],
    ["rev-parse", "nope"],
    ["rev-parse", "bad..ref"],
    ["rev-parse"],
    ["rev-parse", "--single"],
    ["log", "main"],
    ["log", "--raw", "main"],
    ["log"],
    ["show", "main"],
    ["show", "--raw", "main"],
    ["show", "--print-metadata-key=version", "main"],
    ["show", "--print-metadata-key=answer", "main"],
    ["show", "--print-metadata-key=answer", "-B", "main"],
    ["show", "--print-metadata-key=nope", "main"],
    ["show", "--print-detached-metadata-key=note", "main"],
    ["show", "--print-detached-metadata-key=note", "main^"],
    ["show", "--print-sizes", "main"],
    ["show", "--print-sizes", "main^"],
    ["show", "--print-related", "main"],
    ["ls", "main"],
    ["ls", "-R", "main"],
    ["ls", "-RC", "main"],
    ["ls", "-X", "main", "/hello.txt"],
    ["ls", "-d", "main", "/sub", "/link"],
    ["ls", "--nul-filenames-only", "-R", "main"],
    ["ls", "main", "/nonexistent"],
    ["ls", "main", "sub/deeper"],
    ["cat", "main", "/hello.txt", "/sub/deeper/x"],
    ["cat", "main", "/sub"],
    ["cat", "main", "/nope"],
    ["cat", "main"],
    ["config", "get", "core.mode"],
    ["config", "get", "core.nope"],
    ["config", "get", "nosuch.key"],
    ["config", "get", "--group=core", "repo_version"],
    ["config", "get", "nodot"],
    ["config"],
    ["config", "frob", "x"],
    ["reset", "main"],
    ["reset", "nosuch", "main"],
    ["init", "--help"],
    ["config", "--help"],
    ["refs", "--help"],
    ["rev-parse", "--help"],
    ["log", "--help"],
    ["show", "--help"],
    ["ls", "--help"],
    ["cat", "--help"],
    ["checksum", "--help"],
    ["reset", "--help"],
  ];

  for (const mode of ["archive", "bare-user", "bare"]) {
    it(`read-only commands on a ${mode} repo`, () => {
      for (const args of cases) {
        const full = [`--repo=${repos[mode]}`, ...args];
        const theirs = runOstree(full, { cwd: dir.path });
        const mine = ours(full, dir.path);
        expect({ args, ...mine }).toEqual({ args, ...theirs });
      }
    });
  }

  it("missing repo, default repo, checksum of files on disk", () => {
    const empty = join(dir.path, "emptydir");
    mkdirSync(empty, { recursive: true });
    const env = { OSTREE_REPO: "", OSTREE_SYSROOT: join(dir.path, "nosysroot") };
    for (const args of [["refs"], ["--repo=/nonexistent/x", "refs"], [`--repo=${empty}`, "refs"], ["log", "main"]]) {
      expect({ args, ...ours(args, empty, env) }).toEqual({ args, ...runOstree(args, { cwd: empty, env }) });
    }
    // cwd that is a repo, and OSTREE_REPO
    expect(ours(["rev-parse", "main"], repos.archive!, env)).toEqual(runOstree(["rev-parse", "main"], { cwd: repos.archive!, env }));
    expect(ours(["rev-parse", "main"], empty, { OSTREE_REPO: repos.bare })).toEqual(runOstree(["rev-parse", "main"], { cwd: empty, env: { OSTREE_REPO: repos.bare } }));
    for (const p of ["tree/hello.txt", "tree/link", "tree/sub", "tree/empty", "nope"]) {
      for (const extra of [[], ["--ignore-xattrs"]]) {
        const args = ["checksum", ...extra, p];
        expect({ args, ...ours(args, dir.path) }).toEqual({ args, ...runOstree(args, { cwd: dir.path }) });
      }
    }
  });

  it("writes: init, config set/unset, refs --create/--delete/--alias, reset — then both tools read the result", () => {
    const steps: string[][] = [
      ["init", "--mode=archive"],
      ["config", "set", "core.foo", "bar baz"],
      ["config", "get", "core.foo"],
      ["config", "set", "--group=remote \"x\"", "url", "http://example.com"],
      ["config", "get", "--group=remote \"x\"", "url"],
      ["config", "unset", "core.foo"],
      ["config", "unset", "core.foo"],
      ["config", "get", "core.foo"],
      ["init", "--mode=nonsense"],
    ];
    const a = join(dir.path, "w-theirs");
    const b = join(dir.path, "w-ours");
    for (const s of steps) {
      const t = runOstree([`--repo=${a}`, ...s]);
      const o = ours([`--repo=${b}`, ...s], dir.path);
      expect({ s, ...o }).toEqual({ s, ...t });
    }
    // refs and reset on copies of a repo with history
    const src = repos.archive!;
    const c1 = join(dir.path, "r-theirs");
    const c2 = join(dir.path, "r-ours");
    spawnSync("cp", ["-a", src, c1]);
    spawnSync("cp", ["-a", src, c2]);
    const writes: string[][] = [
      ["refs", "main", "--create=new/one"],
      ["refs", "main", "--create=new/one"],
      ["refs", "main^", "--create=new/one", "--force"],
      ["refs", "--alias", "--create=alias2", "nosuch"],
      ["refs", "--alias", "--create=alias2", "new/one"],
      ["refs", "--delete", "main"],
      ["refs", "--delete", "app"],
      ["reset", "main", "main^"],
      ["reset", "main", "nosuchref"],
      ["refs", "--delete", "origin:"],
    ];
    for (const s of writes) {
      const t = runOstree([`--repo=${c1}`, ...s]);
      const o = ours([`--repo=${c2}`, ...s], dir.path);
      expect({ s, ...o }).toEqual({ s, ...t });
      for (const check of [["refs", "--list"], ["refs", "-A"], ["rev-parse", "main"]]) {
        const sorted = (r: RunResult) => ({ ...r, stdout: r.stdout.split("\n").sort().join("\n") });
        expect({ s, check, ...sorted(runOstree([`--repo=${c2}`, ...check])) }).toEqual({ s, check, ...sorted(runOstree([`--repo=${c1}`, ...check])) });
      }
    }
  });

  it("a junk ref file gives ostree's error", () => {
    const repo = join(dir.path, "junk");
    spawnSync("cp", ["-a", repos.bare!, repo]);
    writeFileSync(join(repo, "refs/heads/junk"), "not a checksum\n");
    for (const args of [["rev-parse", "junk"], ["log", "junk"], ["refs"], ["ls", "junk"]]) {
      const full = [`--repo=${repo}`, ...args];
      expect({ args, ...ours(full, dir.path) }).toEqual({ args, ...runOstree(full) });
    }
  });
});
