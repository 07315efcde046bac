import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { deltaDir, ostree, type Inputs } from "./inputs.js";

/** What an operation's functions get: the shared inputs and this run's private scratch dir. */
export interface OpContext {
  inputs: Inputs;
  /** Fresh, empty directory for this (operation, tool, repetition). */
  work: string;
  /** Base URL of the loopback HTTP server serving inputs.repo. */
  url: string;
  /** Tree of version i (0-based). */
  tree(i: number): string;
  /** Commit of version i. */
  commit(i: number): string;
  /** Ref of version i in inputs.repo. */
  ref(i: number): string;
}

/**
 * One benchmarked operation. `run` returns ostree argument lists (without the
 * program name); the harness runs them with `ostree` and with
 * `node apps/cli/dist/ostree-ts.mjs`, measured. `setup` prepares this run's
 * scratch dir with the real ostree, unmeasured, so both tools start from the
 * same bytes. `sizes` names outputs whose byte size is reported.
 */
export interface Op {
  id: string;
  title: string;
  /** Number of versions the op needs (2 = v1,v2; 3 = v1..v3). */
  needs?: number;
  rootOnly?: boolean;
  setup?: (c: OpContext) => void;
  run: (c: OpContext) => string[][];
  /**
   * What is reported after the run: a path (its total size), "http" (bytes the HTTP server sent) or
   * "http-requests" (requests it answered).
   */
  sizes?: (c: OpContext) => Record<string, string>;
  /** Which pair of versions (for delta-size tables), e.g. [0,1]; from = -1 for "from scratch". */
  deltaPair?: [number, number];
}

const hardlinkCopy = (src: string, dst: string) => {
  const r = spawnSync("cp", ["-al", src, dst], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`cp -al ${src} ${dst}: ${r.stderr}`);
};

/** A bare-user repo in `<work>/repo` holding version i (pulled locally from the input repo), with `origin` pointing at the HTTP server. */
function clientRepo(c: OpContext, have?: number, trackRef?: string): string {
  const repo = join(c.work, "repo");
  ostree(["init", `--repo=${repo}`, "--mode=bare-user"]);
  ostree(["remote", "add", `--repo=${repo}`, "--no-gpg-verify", "origin", c.url]);
  if (have !== undefined) {
    ostree(["pull-local", `--repo=${repo}`, c.inputs.repo, c.commit(have)]);
    // A client that is on version `have` of the tracked ref: pull picks the delta from it.
    if (trackRef) ostree(["refs", `--repo=${repo}`, `--create=origin:${trackRef}`, c.commit(have)]);
  }
  return repo;
}

const commitArgs = (repo: string, tree: string) => ["commit", `--repo=${repo}`, "--branch=os", "--timestamp=2023-06-10T00:00:00Z", `--tree=dir=${tree}`];

const commitOp = (mode: string): Op => ({
  id: `commit-${mode}`,
  title: `init + commit v1 (${mode})`,
  rootOnly: mode === "bare",
  run: (c) => [
    ["init", `--repo=${join(c.work, "repo")}`, `--mode=${mode}`],
    commitArgs(join(c.work, "repo"), c.tree(0)),
  ],
  sizes: (c) => ({ repo: join(c.work, "repo") }),
});

const deltaGenerateOp = (from: number, to: number): Op => ({
  id: from < 0 ? `delta-generate-empty-v${to + 1}` : `delta-generate-v${from + 1}-v${to + 1}`,
  title: from < 0 ? `static-delta generate --empty → v${to + 1}` : `static-delta generate v${from + 1} → v${to + 1}`,
  needs: to + 1,
  deltaPair: [from, to],
  setup: (c) => mkdirSync(join(c.work, "delta")),
  run: (c) => [
    [
      "static-delta",
      "generate",
      `--repo=${c.inputs.repo}`,
      ...(from < 0 ? ["--empty"] : [`--from=${c.commit(from)}`]),
      `--to=${c.commit(to)}`,
      `--filename=${join(c.work, "delta", "superblock")}`,
    ],
  ],
  sizes: (c) => ({ delta: join(c.work, "delta") }),
});

const pullSizes = (c: OpContext): Record<string, string> => ({ transferred: "http", requests: "http-requests", repo: join(c.work, "repo") });

const pullDeltaOp = (from: number, to: number): Op => ({
  id: from < 0 ? `pull-delta-empty-v${to + 1}` : `pull-delta-v${from + 1}-v${to + 1}`,
  title: from < 0 ? `pull over HTTP by from-scratch delta → v${to + 1}` : `pull over HTTP by delta v${from + 1} → v${to + 1}`,
  needs: to + 1,
  setup: (c) => {
    clientRepo(c, from < 0 ? undefined : from, c.ref(to));
  },
  run: (c) => [["pull", `--repo=${join(c.work, "repo")}`, "--require-static-deltas", "origin", c.ref(to)]],
  sizes: pullSizes,
});

/** Object-by-object pull of version `to` into a client holding nothing or version `from`. */
const pullObjectsOp = (from: number | undefined, to: number): Op => ({
  id: from === undefined ? "pull-objects" : `pull-objects-v${from + 1}-v${to + 1}`,
  title: from === undefined ? `pull v${to + 1} over HTTP object by object (bare-user)` : `pull over HTTP object by object v${from + 1} → v${to + 1} (bare-user)`,
  needs: to + 1,
  setup: (c) => {
    clientRepo(c, from, c.ref(to));
  },
  run: (c) => [["pull", `--repo=${join(c.work, "repo")}`, "--disable-static-deltas", "origin", c.ref(to)]],
  sizes: pullSizes,
});

/** The benchmark table: adding an operation is adding an entry. */
export const OPS: Op[] = [
  {
    id: "startup",
    title: "CLI start-up: rev-parse of a ref",
    run: (c) => [["rev-parse", `--repo=${c.inputs.repo}`, "os"]],
  },
  commitOp("archive"),
  commitOp("bare-user"),
  commitOp("bare-user-only"),
  commitOp("bare"),
  {
    id: "commit-incremental",
    title: "commit v2 onto v1 (archive)",
    needs: 2,
    setup: (c) => {
      const repo = join(c.work, "repo");
      ostree(["init", `--repo=${repo}`, "--mode=archive"]);
      ostree(commitArgs(repo, c.tree(0)));
    },
    run: (c) => [commitArgs(join(c.work, "repo"), c.tree(1))],
    sizes: (c) => ({ repo: join(c.work, "repo") }),
  },
  {
    id: "checkout-archive",
    title: "checkout v1 from archive repo (-U)",
    run: (c) => [["checkout", `--repo=${c.inputs.repo}`, "-U", c.ref(0), join(c.work, "co")]],
  },
  {
    id: "checkout-bare-user-hardlink",
    title: "checkout v1 from bare-user repo (-U -H, hardlinks)",
    setup: (c) => {
      const repo = join(c.work, "repo");
      ostree(["init", `--repo=${repo}`, "--mode=bare-user"]);
      ostree(["pull-local", `--repo=${repo}`, c.inputs.repo, c.ref(0)]);
    },
    run: (c) => [["checkout", `--repo=${join(c.work, "repo")}`, "-U", "-H", c.ref(0), join(c.work, "co")]],
  },
  {
    id: "fsck",
    title: "fsck of the input repo (all versions)",
    run: (c) => [["fsck", `--repo=${c.inputs.repo}`]],
  },
  {
    id: "prune",
    title: "prune --refs-only --depth=0 after dropping all refs but the newest",
    needs: 2,
    setup: (c) => {
      const repo = join(c.work, "repo");
      // Hardlink copy: prune only unlinks objects, so the input repo is untouched.
      hardlinkCopy(c.inputs.repo, repo);
      for (let i = 0; i < c.inputs.commits.length - 1; i++) ostree(["refs", `--repo=${repo}`, "--delete", c.ref(i)]);
    },
    run: (c) => [["prune", `--repo=${join(c.work, "repo")}`, "--refs-only", "--depth=0"]],
    sizes: (c) => ({ repo: join(c.work, "repo") }),
  },
  deltaGenerateOp(0, 1),
  deltaGenerateOp(1, 2),
  deltaGenerateOp(-1, 2),
  {
    id: "delta-apply-v1-v2",
    title: "static-delta apply-offline v1 → v2 (bare-user)",
    needs: 2,
    setup: (c) => {
      clientRepo(c, 0);
    },
    run: (c) => [["static-delta", "apply-offline", `--repo=${join(c.work, "repo")}`, deltaDir(c.inputs.repo, c.commit(0), c.commit(1))]],
    sizes: (c) => ({ repo: join(c.work, "repo") }),
  },
  pullObjectsOp(undefined, 1),
  pullObjectsOp(0, 1),
  pullDeltaOp(0, 1),
  pullDeltaOp(1, 2),
  pullDeltaOp(-1, 2),
];
