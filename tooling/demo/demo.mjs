#!/usr/bin/env node
// End-to-end demo: real Debian OS trees (test-images os-v1 → os-v2) committed,
// diffed into a static delta, served over HTTP and pulled by delta — all by
// ostree-ts, with real `ostree` beside it on the same trees when installed.
//
//   node tooling/demo/demo.mjs            # real Debian images (built and cached on first run)
//   node tooling/demo/demo.mjs --quick    # small generated trees, no downloads
import { spawn, spawnSync } from "node:child_process";
import { existsSync, lstatSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { join, resolve } from "node:path";

const root = resolve(new URL("../..", import.meta.url).pathname);
const quick = process.argv.includes("--quick");
const work = resolve(process.env.OSTREE_TS_DEMO_DIR ?? join(root, ".cache", "demo"));
const cli = join(root, "apps/cli/dist/ostree-ts.mjs");
const serverBin = join(root, "apps/server/dist/ostree-ts-server.mjs");
const haveOstree = spawnSync("ostree", ["--version"]).status === 0;
const results = [];

function log(msg) {
  process.stdout.write(`\n\x1b[1m== ${msg}\x1b[0m\n`);
}

function run(cmd, args, { capture = false, quiet = false } = {}) {
  const shown = cmd === process.execPath ? `ostree-ts ${args.slice(1).join(" ")}` : `${cmd} ${args.join(" ")}`;
  if (!quiet) process.stdout.write(`$ ${shown.replaceAll(work + "/", "")}\n`);
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { encoding: "utf8", stdio: capture ? ["ignore", "pipe", "inherit"] : "inherit", maxBuffer: 1 << 28 });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${shown} failed with exit code ${r.status}`);
  return { out: (r.stdout ?? "").trim(), ms };
}

const ours = (args, opts) => run(process.execPath, [cli, ...args], opts);
const theirs = (args, opts) => run("ostree", args, opts);

function duSize(path) {
  let total = 0;
  const walk = (p) => {
    const st = lstatSync(p);
    if (st.isDirectory()) for (const e of readdirSync(p)) walk(join(p, e));
    else total += st.size;
  };
  walk(path);
  return total;
}

async function freePort() {
  return new Promise((res) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

function prepareTrees() {
  if (quick) {
    log("Generating small OS-like trees (--quick)");
    const dir = join(work, "trees");
    for (const [name, seed] of [["v1", 1], ["v2", 2]]) {
      run(process.execPath, [join(root, "test-images/bin/build.mjs"), "fixture", join(dir, name), "--files", "400", "--seed", String(seed)], { quiet: true });
    }
    return { v1: join(dir, "v1"), v2: join(dir, "v2") };
  }
  log("Building the Debian 12 test images os-v1 and os-v2 (cached after the first run)");
  run(process.execPath, [join(root, "test-images/bin/build.mjs"), "os-v1", "os-v2"], { quiet: true });
  const cache = process.env.OSTREE_TS_IMAGES_CACHE ?? join(root, "test-images/cache");
  return { v1: join(cache, "os-v1-ostree"), v2: join(cache, "os-v2-ostree") };
}

async function main() {
  if (!existsSync(cli) || !existsSync(serverBin)) throw new Error("build first: npx pnpm@10.34.9 build");
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const trees = prepareTrees();
  const repo = join(work, "server-repo");
  const ref = "debian/bookworm/x86_64";
  const commitArgs = (r, tree, n) => ["commit", `--repo=${r}`, "-b", ref, `--timestamp=2023-06-1${n}T00:00:00Z`, "-s", `os-v${n}`, "--add-metadata-string=version=" + n, tree];

  log("Commit both versions into an archive repository with ostree-ts");
  ours(["init", `--repo=${repo}`, "--mode=archive"]);
  const c1 = ours(commitArgs(repo, trees.v1, 1), { capture: true });
  const c2 = ours(commitArgs(repo, trees.v2, 2), { capture: true });
  console.log(`v1 ${c1.out}  (${(c1.ms / 1000).toFixed(1)} s)\nv2 ${c2.out}  (${(c2.ms / 1000).toFixed(1)} s)`);
  results.push(["commit v1 (archive)", c1.ms]);
  ours(["log", `--repo=${repo}`, ref]);

  if (haveOstree) {
    log("Same trees, same flags, committed by real ostree: the checksums must be identical");
    const ref2 = join(work, "ostree-repo");
    theirs(["init", `--repo=${ref2}`, "--mode=archive"]);
    const o1 = theirs(commitArgs(ref2, trees.v1, 1), { capture: true });
    const o2 = theirs(commitArgs(ref2, trees.v2, 2), { capture: true });
    results.push(["commit v1 (archive), real ostree", o1.ms]);
    const same = o1.out === c1.out && o2.out === c2.out;
    console.log(`ostree: v1 ${o1.out}\n        v2 ${o2.out}\n${same ? "identical ✔" : "DIFFERENT ✘"}`);
    if (!same) throw new Error("commit checksums differ from real ostree");
    log("Real ostree checks the repository ostree-ts wrote");
    theirs(["fsck", `--repo=${repo}`]);
  }
  ours(["fsck", `--repo=${repo}`]);

  log("Static delta v1 → v2");
  const g = ours(["static-delta", "generate", `--repo=${repo}`, `--from=${c1.out}`, `--to=${c2.out}`]);
  results.push(["static-delta generate", g.ms]);
  const deltaBytes = duSize(join(repo, "deltas"));
  console.log(`delta size: ${(deltaBytes / 1e6).toFixed(2)} MB for a ${(duSize(trees.v2) / 1e6).toFixed(0)} MB tree`);
  if (haveOstree) {
    const t = theirs(["static-delta", "generate", `--repo=${join(work, "ostree-repo")}`, `--from=${c1.out}`, `--to=${c2.out}`]);
    results.push(["static-delta generate, real ostree", t.ms]);
    const theirBytes = duSize(join(work, "ostree-repo", "deltas"));
    console.log(`real ostree's delta: ${(theirBytes / 1e6).toFixed(2)} MB (ours is ${((deltaBytes / theirBytes) * 100).toFixed(0)}% of it)`);
  }
  ours(["summary", "-u", `--repo=${repo}`]);

  log("Serve the repository over HTTP with ostree-ts-server");
  const port = await freePort();
  const server = spawn(process.execPath, [serverBin, "--repo", repo, "--port", String(port), "--quiet"], { stdio: "inherit" });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 50; i++) {
    try {
      if ((await fetch(`${url}/config`)).ok) break;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  try {
    log("A device (bare-user repo) pulls v1 object by object, then updates to v2 by delta");
    const device = join(work, "device-repo");
    ours(["init", `--repo=${device}`, "--mode=bare-user"]);
    ours(["remote", "add", `--repo=${device}`, "--no-gpg-verify", "origin", url]);
    const p1 = ours(["pull", `--repo=${device}`, "origin", `${ref}@${c1.out}`]);
    results.push(["pull v1 (objects)", p1.ms]);
    const p2 = ours(["pull", `--repo=${device}`, "--require-static-deltas", "origin", ref]);
    results.push(["pull v1→v2 (delta)", p2.ms]);
    ours(["fsck", `--repo=${device}`]);
    if (haveOstree) theirs(["fsck", `--repo=${device}`]);

    log("Check out v2 and compare it with the commit");
    const co = join(work, "checkout-v2");
    const c = ours(["checkout", `--repo=${device}`, `origin:${ref}`, co]);
    results.push(["checkout v2", c.ms]);
    const diff = ours(["diff", `--repo=${device}`, `origin:${ref}`, co], { capture: true });
    console.log(diff.out === "" ? "checkout matches the commit ✔" : diff.out);
    if (diff.out !== "") throw new Error("checkout differs from the commit");

    if (haveOstree) {
      log("Real ostree pulls the same update from ostree-ts-server");
      const other = join(work, "ostree-client");
      theirs(["init", `--repo=${other}`, "--mode=bare-user"]);
      theirs(["remote", "add", `--repo=${other}`, "--no-gpg-verify", "origin", url]);
      const tp = theirs(["pull", `--repo=${other}`, "origin", ref]);
      results.push(["pull v2, real ostree client", tp.ms]);
      theirs(["fsck", `--repo=${other}`]);
    }
  } finally {
    server.kill("SIGTERM");
  }

  log("Timings");
  for (const [what, ms] of results) console.log(`${what.padEnd(40)} ${(ms / 1000).toFixed(2).padStart(8)} s`);
  console.log(`\nDemo finished. Everything is in ${work}`);
}

main().catch((e) => {
  console.error(`\ndemo failed: ${e.message}`);
  process.exit(1);
});
