import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { cacheDir, packageDir, compareBytes, deriveTree, makeFixtureTree, setTreeMtimes, treeDigest, writeJsonAtomic } from "@ostree-ts/test-images";

/** One version of the benchmarked OS tree. */
export interface Version {
  name: string;
  tree: string;
  digest: string;
  bytes: number;
  files: number;
}

/** Everything the operations read, prepared once per run with the real ostree. */
export interface Inputs {
  source: string;
  dir: string;
  versions: Version[];
  /** Archive repo holding every version (ref os-vN each, parent-chained; "os" = newest), with static deltas and a summary. */
  repo: string;
  commits: string[];
}

export class BenchInputError extends Error {
  override name = "BenchInputError";
}

export const OSTREE_BIN = process.env.OSTREE_BIN ?? "ostree";

/** Runs the real ostree for preparation steps (never measured); throws with its stderr. */
export function ostree(args: string[]): string {
  const r = spawnSync(OSTREE_BIN, args, { encoding: "utf8", maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new BenchInputError(`ostree ${args.join(" ")} exited ${r.status}: ${r.error?.message ?? r.stderr.trim()}`);
  return r.stdout;
}

export type InputSource =
  | { kind: "images"; images?: string[] }
  | { kind: "quick"; budgetBytes?: number }
  | { kind: "fixture"; files: number; seed?: number }
  | { kind: "repo"; repo: string; ref: string };

/** The commit timestamp every prepared commit gets, so input repos are the same from run to run. */
const TIMESTAMP = "2023-06-10T00:00:00Z";

/** Copies up to `budget` bytes of regular files (and every symlink met) from some /usr directories, in byte order. */
function copyUsrSubset(dst: string, budget: number): void {
  let used = 0;
  const visit = (src: string, rel: string) => {
    for (const name of readdirSync(src).sort(compareBytes)) {
      const s = join(src, name);
      const d = join(dst, rel, name);
      const st = lstatSync(s);
      if (st.isDirectory()) {
        mkdirSync(d, { recursive: true });
        chmodSync(d, 0o755);
        visit(s, join(rel, name));
      } else if (st.isSymbolicLink()) {
        symlinkSync(readlinkSync(s), d);
      } else if (st.isFile() && st.size <= 8 << 20 && used + st.size <= budget) {
        copyFileSync(s, d);
        chmodSync(d, st.mode & 0o7777);
        used += st.size;
      }
    }
  };
  for (const top of ["usr/bin", "usr/sbin", "usr/lib/x86_64-linux-gnu"]) {
    if (!existsSync(`/${top}`)) continue;
    mkdirSync(join(dst, top), { recursive: true });
    visit(`/${top}`, top);
  }
}

function describeTree(name: string, tree: string): Version {
  const d = treeDigest(tree);
  return { name, tree, digest: d.digest, bytes: d.bytes, files: d.files };
}

/** The trees to benchmark, in version order. */
export function prepareTrees(src: InputSource, dir: string, log: (s: string) => void): Version[] {
  mkdirSync(dir, { recursive: true });
  if (src.kind === "images") {
    const names = src.images ?? ["os-v1", "os-v2", "os-v3"];
    const missing = names.filter((n) => !existsSync(join(cacheDir(), `${n}-ostree`)));
    if (missing.length) {
      // One command gives a fresh machine both the images and the figures.
      log(`building test images ${missing.join(", ")} (cached for later runs)`);
      spawnSync(process.execPath, [join(packageDir(), "bin", "build.mjs"), ...missing], { stdio: "inherit" });
    }
    return names.map((n) => {
      const tree = join(cacheDir(), `${n}-ostree`);
      if (!existsSync(tree)) throw new BenchInputError(`${tree} is not built: run \`node test-images/bin/build.mjs\` first, or pass --quick`);
      return describeTree(n, tree);
    });
  }
  if (src.kind === "repo") {
    const parent = ostree(["rev-parse", `--repo=${src.repo}`, `${src.ref}^`]).trim();
    const head = ostree(["rev-parse", `--repo=${src.repo}`, src.ref]).trim();
    return [
      ["user-prev", parent],
      ["user-head", head],
    ].map(([name, rev]) => {
      const tree = join(dir, name as string);
      if (!existsSync(join(dir, `${name}.${rev}`))) {
        rmSync(tree, { recursive: true, force: true });
        log(`checking out ${src.repo} ${rev} into ${tree}`);
        ostree(["checkout", `--repo=${src.repo}`, "-U", rev as string, tree]);
        mkdirSync(join(dir, `${name}.${rev}`));
      }
      return describeTree(name as string, tree);
    });
  }
  const base = join(dir, src.kind);
  const marker = join(base, ".complete");
  const names = ["v1", "v2", "v3"].map((v) => join(base, v));
  if (!existsSync(marker)) {
    rmSync(base, { recursive: true, force: true });
    mkdirSync(base, { recursive: true });
    if (src.kind === "quick") {
      log(`copying a ${((src.budgetBytes ?? 80e6) / 1e6).toFixed(0)} MB subset of /usr into ${names[0]}`);
      copyUsrSubset(names[0] as string, src.budgetBytes ?? 80e6);
      setTreeMtimes(names[0] as string, 1686355200);
    } else {
      makeFixtureTree(names[0] as string, { files: src.files, seed: src.seed ?? 1 });
    }
    deriveTree(names[0] as string, names[1] as string, { seed: 2, modify: 0.05, remove: 0.01, add: 20 });
    deriveTree(names[1] as string, names[2] as string, { seed: 3, modify: 0.01, remove: 0, add: 2 });
    mkdirSync(marker);
  }
  return names.map((t, i) => describeTree(`${src.kind}-v${i + 1}`, t));
}

/** ostree's modified base64 of a checksum (no padding, "/" → "_"), as used in delta names. */
export function mbase64(checksum: string): string {
  return Buffer.from(checksum, "hex").toString("base64").replace(/=+$/, "").replace(/\//g, "_");
}

/** Path of a static delta inside a repo (`--from` empty for a from-scratch delta). */
export function deltaDir(repo: string, from: string | undefined, to: string): string {
  const name = from ? `${mbase64(from)}-${mbase64(to)}` : mbase64(to);
  return join(repo, "deltas", name.slice(0, 2), name.slice(2));
}

/**
 * The shared archive repo: every version committed on "os" (and on its own
 * ref os-vN), static deltas between consecutive versions and from scratch to
 * the newest, and a summary, all made by the real ostree. Reused while the
 * tree digests are unchanged.
 */
export function prepareRepo(versions: Version[], dir: string, log: (s: string) => void): { repo: string; commits: string[] } {
  const repo = join(dir, "archive");
  const stamp = join(dir, "archive.json");
  // Bump the prefix when the preparation steps change, so old input repos are rebuilt.
  const key = `layout2:${versions.map((v) => v.digest).join(",")}`;
  if (existsSync(stamp) && existsSync(repo)) {
    const s = JSON.parse(readFileSync(stamp, "utf8")) as { key: string; commits: string[] };
    if (s.key === key) return { repo, commits: s.commits };
  }
  rmSync(repo, { recursive: true, force: true });
  rmSync(stamp, { force: true });
  ostree(["init", `--repo=${repo}`, "--mode=archive"]);
  const commits: string[] = [];
  versions.forEach((v, i) => {
    log(`input repo: committing ${v.name}`);
    // Each version on its own ref (so the commit's ref binding matches what clients pull), chained by parent like one branch's history.
    const parent = commits.length ? [`--parent=${commits[commits.length - 1]}`] : [];
    const c = ostree(["commit", `--repo=${repo}`, `--branch=os-v${i + 1}`, ...parent, `--subject=${v.name}`, `--timestamp=${TIMESTAMP}`, `--tree=dir=${v.tree}`]).trim();
    commits.push(c);
  });
  ostree(["refs", `--repo=${repo}`, "--create=os", commits[commits.length - 1] as string]);
  for (let i = 1; i < commits.length; i++) {
    log(`input repo: static delta ${versions[i - 1]?.name} → ${versions[i]?.name}`);
    ostree(["static-delta", "generate", `--repo=${repo}`, `--from=${commits[i - 1]}`, `--to=${commits[i]}`]);
  }
  log(`input repo: static delta from scratch → ${versions[versions.length - 1]?.name}`);
  ostree(["static-delta", "generate", `--repo=${repo}`, "--empty", `--to=${commits[commits.length - 1]}`]);
  ostree(["summary", "-u", `--repo=${repo}`]);
  writeJsonAtomic(stamp, { key, commits });
  return { repo, commits };
}
