/**
 * `--process-passthrough-whiteouts`: `.ostree-wh.NAME` files are checked out as
 * overlayfs whiteouts NAME (character devices 0:0), exactly as ostree does.
 * Needs mknod (root, outside most containers): skipped where the device cannot be made, as upstream's test does.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, lstatSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { describeInterop, ostree, tempDir } from "@ostree-ts/interop";
import { Repo } from "@ostree-ts/objstore";
import { checkout } from "../src/index.js";

const tmp = tempDir("ostree-ts-wh-");
afterAll(() => tmp.cleanup());

function canMakeWhiteouts(): boolean {
  const probe = join(tmp.path, ".probe");
  const ok = spawnSync("mknod", ["-m", "000", probe, "c", "0", "0"]).status === 0;
  if (ok) spawnSync("rm", ["-f", probe]);
  return ok;
}

function describeTree(root: string): string[] {
  return readdirSync(root)
    .sort()
    .map((n) => {
      const st = lstatSync(join(root, n));
      return `${n} chr=${st.isCharacterDevice()} rdev=${st.rdev} mode=${(st.mode & 0o7777).toString(8)} owner=${st.uid}:${st.gid}`;
    });
}

describeInterop("checkout --process-passthrough-whiteouts", () => {
  it.skipIf(!canMakeWhiteouts())("makes the same 0:0 devices as ostree, and honours the overwrite mode", async () => {
    const src = join(tmp.path, "tree");
    mkdirSync(join(src, "whiteouts"), { recursive: true });
    writeFileSync(join(src, "whiteouts/.ostree-wh.whiteout"), "");
    writeFileSync(join(src, "whiteouts/.ostree-wh.whiteout2"), "");
    chmodSync(join(src, "whiteouts/.ostree-wh.whiteout2"), 0o755);
    writeFileSync(join(src, "whiteouts/plain"), "x\n");
    const repoPath = join(tmp.path, "repo");
    ostree(["init", `--repo=${repoPath}`, "--mode=bare-user"]);
    ostree(["commit", `--repo=${repoPath}`, "-b", "w", src]);
    const theirs = join(tmp.path, "theirs");
    const ours = join(tmp.path, "ours");
    ostree(["checkout", `--repo=${repoPath}`, "--process-passthrough-whiteouts", "w", theirs]);
    const repo = await Repo.open(repoPath);
    await checkout(repo, "w", ours, { processPassthroughWhiteouts: true });
    const expected = describeTree(join(theirs, "whiteouts"));
    expect(expected.filter((l) => l.includes("chr=true rdev=0"))).toHaveLength(2);
    expect(describeTree(join(ours, "whiteouts"))).toEqual(expected);

    // Without the flag they stay files; over an existing device, plain mode fails and union replaces it.
    await checkout(repo, "w", join(tmp.path, "plain"));
    expect(readdirSync(join(tmp.path, "plain/whiteouts")).sort()).toEqual([".ostree-wh.whiteout", ".ostree-wh.whiteout2", "plain"]);
    await expect(checkout(repo, "w", ours, { processPassthroughWhiteouts: true, union: true })).resolves.toBeDefined();
    expect(describeTree(join(ours, "whiteouts"))).toEqual(expected);
  });
});
