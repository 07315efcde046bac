import { lstatSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeInterop, ostree, runOstree, tempDir } from "@ostree-ts/interop";
import { Repo, type RepoMode } from "@ostree-ts/objstore";
import { checkout } from "../src/index.js";
import { optionsFromFlags, snapshot } from "./helpers.js";

/** Every path under `root` with its inode and ctime: touching a path (replacing, relinking, chmod) changes one of them. */
function identities(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string) => {
    const st = lstatSync(join(root, rel), { bigint: true });
    out.set(`/${rel}`, `${st.ino}:${st.ctimeNs}`);
    if (st.isDirectory()) for (const n of readdirSync(join(root, rel))) walk(rel ? `${rel}/${n}` : n);
  };
  walk("");
  return out;
}

describeInterop("union checkout over a checkout of the parent commit", () => {
  const tmp = tempDir("ostree-ts-union-");
  const v1 = join(tmp.path, "v1");
  const v2 = join(tmp.path, "v2");
  // What v2 changes relative to v1; everything else must be left exactly as it was.
  const CHANGED = ["/etc/changed", "/etc/added", "/usr/bin/moved-link", "/usr/new-dir", "/usr/new-dir/f"];

  beforeAll(() => {
    for (const d of [v1, v2]) {
      mkdirSync(join(d, "etc"), { recursive: true });
      mkdirSync(join(d, "usr/bin"), { recursive: true });
      writeFileSync(join(d, "etc/same"), "same\n");
      writeFileSync(join(d, "etc/changed"), d === v1 ? "old\n" : "new\n");
      writeFileSync(join(d, "usr/bin/tool"), "#!/bin/sh\n", { mode: 0o755 });
      symlinkSync("tool", join(d, "usr/bin/same-link"));
      // Not "tool": in bare repos same-link would share its inode, and its ctime, with this one.
      symlinkSync(d === v1 ? "./tool" : "../bin/tool", join(d, "usr/bin/moved-link"));
    }
    writeFileSync(join(v2, "etc/added"), "added\n");
    mkdirSync(join(v2, "usr/new-dir"));
    writeFileSync(join(v2, "usr/new-dir/f"), "f\n");
    for (const mode of ["bare", "bare-user", "archive"] as RepoMode[]) {
      const repo = join(tmp.path, `repo-${mode}`);
      ostree(["init", `--repo=${repo}`, `--mode=${mode}`]);
      ostree(["commit", `--repo=${repo}`, "-b", "v1", "--no-xattrs", v1]);
      ostree(["commit", `--repo=${repo}`, "-b", "v2", "--no-xattrs", v2]);
    }
  });
  afterAll(() => tmp.cleanup());

  for (const [mode, flags] of [
    ["bare", []],
    ["bare-user", ["-U"]],
    ["archive", ["-U"]],
  ] as Array<[RepoMode, string[]]>) {
    it(`${mode} ${flags.join(" ")}: only the changed paths are touched, and the result is ostree's`, async () => {
      const repoPath = join(tmp.path, `repo-${mode}`);
      const repo = await Repo.open(repoPath);
      const ours = join(tmp.path, `ours-${mode}`);
      const theirs = join(tmp.path, `theirs-${mode}`);
      await checkout(repo, "v1", ours, optionsFromFlags(flags));
      ostree(["checkout", `--repo=${repoPath}`, ...flags, "v1", theirs]);
      const before = identities(ours);
      // ctime has jiffy granularity: make sure a touch now would show.
      await new Promise((r) => setTimeout(r, 30));

      const stats = await checkout(repo, "v2", ours, optionsFromFlags([...flags, "--union"]));
      // Taken before ostree runs: its checkout links the same objects, which changes their ctime.
      const after = identities(ours);
      const touched = [...after].filter(([p, id]) => before.get(p) !== id).map(([p]) => p);
      // The parents of added entries change too (a new name in them), as with any tool.
      expect(touched.sort()).toEqual([...CHANGED, "/etc", "/usr", "/usr/bin"].sort());
      expect(stats.hardlinked + stats.copied).toBe(4);

      const r = runOstree(["checkout", `--repo=${repoPath}`, ...flags, "--union", "v2", theirs]);
      expect(r.status, r.stderr).toBe(0);
      expect(snapshot(ours, repoPath)).toEqual(snapshot(theirs, repoPath));

      rmSync(ours, { recursive: true });
      rmSync(theirs, { recursive: true });
    });
  }
});
