/**
 * `commit` and `diff` of the built CLI beside the real ostree: the same flags
 * give the same commit checksum in every repo mode, errors match (text and
 * exit code), and `diff` / `diff --stats` print the same.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeInterop, ostree, runOstree, tempDir, type RunResult } from "@ostree-ts/interop";

const CLI = fileURLToPath(new URL("../dist/ostree-ts.mjs", import.meta.url));

function ours(args: string[], cwd: string): RunResult {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, env: { ...process.env, OSTREE_TS_PRGNAME: "ostree" }, encoding: "utf8" });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const MODES = ["archive", "bare", "bare-user", "bare-user-only"] as const;

describeInterop("ostree-ts commit/diff match ostree 2022.7", () => {
  let dir: { path: string; cleanup: () => void };
  let tree: string;
  let tree2: string;

  beforeAll(() => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx pnpm@10.34.9 --filter ostree-ts build\``);
    dir = tempDir("ostree-ts-commit-");
    tree = join(dir.path, "tree");
    mkdirSync(join(tree, "sub/deeper"), { recursive: true });
    writeFileSync(join(tree, "a.txt"), "hello\n");
    writeFileSync(join(tree, "exec"), "#!/bin/sh\n");
    chmodSync(join(tree, "exec"), 0o755);
    writeFileSync(join(tree, "sub/deeper/big"), "x".repeat(70_000));
    symlinkSync("a.txt", join(tree, "link"));
    tree2 = join(dir.path, "tree2");
    mkdirSync(join(tree2, "sub/new"), { recursive: true });
    writeFileSync(join(tree2, "a.txt"), "changed\n");
    writeFileSync(join(tree2, "sub/new/f"), "f\n");
    writeFileSync(join(dir.path, "statoverride"), "=384 /a.txt\n");
    writeFileSync(join(dir.path, "skiplist"), "/exec\n");
    writeFileSync(join(dir.path, "body"), "Body from a file\n\nwith two paragraphs\n");
  });
  afterAll(() => dir?.cleanup());

  /** Runs the same `commit` in a fresh repo of each tool; returns both results. */
  function both(mode: string, name: string, args: string[], setup: string[][] = []): { theirs: RunResult; mine: RunResult } {
    const out = {} as { theirs: RunResult; mine: RunResult };
    for (const who of ["theirs", "mine"] as const) {
      const repo = join(dir.path, `${who}-${mode}-${name}`);
      ostree(["init", `--repo=${repo}`, `--mode=${mode}`]);
      for (const s of setup) ostree([...s, `--repo=${repo}`]);
      out[who] = who === "theirs" ? runOstree(["commit", `--repo=${repo}`, ...args], { cwd: dir.path }) : ours(["commit", `--repo=${repo}`, ...args], dir.path);
    }
    return out;
  }

  const TS = "--timestamp=2021-03-04T05:06:07Z";
  const flagSets: Array<[string, string[]]> = [
    ["plain", ["-b", "main", TS, "-s", "Subject", "-m", "Body"]],
    ["metadata", ["-b", "main", TS, "--add-metadata-string=version=1.2", "--add-metadata=n=uint64 42", "--add-metadata=l=['a', 'b']", "--add-detached-metadata-string=sig=x"]],
    ["bindings", ["-b", "main", TS, "--bind-ref=zzz", "--bind-ref=aaa"]],
    ["no-bindings", ["-b", "main", TS, "--no-bindings"]],
    ["orphan", ["--orphan", TS, "-s", "orphan"]],
    ["owner", ["-b", "main", TS, "--owner-uid=1234", "--owner-gid=5678"]],
    ["canonical", ["-b", "main", TS, "--canonical-permissions", "--mode-ro-executables"]],
    ["statoverride-skiplist", ["-b", "main", TS, "--statoverride=statoverride", "--skip-list=skiplist"]],
    ["body-file", ["-b", "main", TS, "-F", "body", "--no-xattrs"]],
    ["sizes", ["-b", "main", TS, "--generate-sizes"]],
    ["remote-branch", ["--branch=origin:main", TS]],
    ["fsync-off", ["-b", "main", TS, "--fsync=false"]],
  ];

  for (const mode of MODES) {
    for (const [name, flags] of flagSets) {
      it(`${mode}: ${name} gives ostree's commit checksum`, () => {
        const { theirs, mine } = both(mode, name, [...flags, "--tree=dir=tree"]);
        expect(theirs.status).toBe(0);
        expect(mine).toEqual(theirs);
      });
    }
  }

  it("parent chains, --parent, --skip-if-unchanged and --tree=ref= agree", () => {
    const setup = [["commit", "-b", "main", TS, "tree"]];
    for (const [name, args] of [
      ["parent-auto", ["-b", "main", TS, "tree2"]],
      ["parent-none", ["-b", "main", TS, "--parent=none", "tree2"]],
      ["skip-unchanged", ["-b", "main", TS, "--skip-if-unchanged", "tree"]],
      ["tree-ref", ["-b", "other", TS, "--tree=ref=main", "--tree=dir=tree2"]],
      ["keep-metadata", ["-b", "main", TS, "--tree=ref=main", "--keep-metadata=ostree.ref-binding"]],
    ] as Array<[string, string[]]>) {
      const { theirs, mine } = both("archive", name, args, setup.map((s) => [...s.slice(0, -1), join(dir.path, s.at(-1)!)]));
      expect(theirs.status, name).toBe(0);
      expect(mine, name).toEqual(theirs);
    }
  });

  it("errors: same text on stderr and exit code 1", () => {
    for (const args of [
      ["tree"],
      ["-b", "x", "--parent=abc", "tree"],
      ["-b", "x", "--timestamp=soon", "tree"],
      ["-b", "x", "--fsync=maybe", "tree"],
      ["-b", "x", "--add-metadata-string=novalue", "tree"],
      ["-b", "x", "--add-metadata=k=bar", "tree"],
      ["-b", "x", "--tree=foo"],
      ["-b", "x", "--tree=foo=bar"],
      ["-b", "a b", "tree"],
      ["-b", "x", "-F", "/nonexistent/body", "tree"],
      ["--orphan", "--keep-metadata=k", "tree"],
    ]) {
      const { theirs, mine } = both("archive", `err-${args.join("_").replace(/[^a-z0-9]/gi, "")}`, args);
      expect(theirs.status, args.join(" ")).toBe(1);
      expect(mine, args.join(" ")).toEqual(theirs);
    }
  });

  it("diff REV REV, diff REV (against its parent), --stats, --fs-diff --stats", () => {
    const repo = join(dir.path, "diff-repo");
    ostree(["init", `--repo=${repo}`, "--mode=archive"]);
    ostree(["commit", `--repo=${repo}`, "-b", "main", TS, tree]);
    ostree(["commit", `--repo=${repo}`, "-b", "main", TS, tree2]);
    for (const args of [["main^", "main"], ["main", "main^"], ["main"], ["--stats", "main^", "main"], ["--fs-diff", "--stats", "main^", "main"], ["--stats", "main", "./tree"]]) {
      const theirs = runOstree(["diff", `--repo=${repo}`, ...args], { cwd: dir.path });
      expect(ours(["diff", `--repo=${repo}`, ...args], dir.path), args.join(" ")).toEqual(theirs);
    }
  });
});
