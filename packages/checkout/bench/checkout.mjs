#!/usr/bin/env node
// Checkout benchmark: ostree-ts (the built CLI) vs the real `ostree checkout`
// on a ~20k-file tree sampled deterministically from this machine's /usr.
//
//   npx pnpm@10.34.9 --filter ostree-ts build
//   node packages/checkout/bench/checkout.mjs [--reps 3] [--work DIR] [--only a,b] [--ours-only]
//
// The tree is committed by the real ostree into a bare-user and an archive
// repo (reused while the tree's manifest is unchanged). Each case runs both
// tools alternately (ostree first on even reps), each run into a fresh
// destination, under /usr/bin/time; the table shows medians of wall, CPU
// (user+sys) and peak RSS.
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../../..");
const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const reps = Number(opt("reps", "3"));
const work = resolve(opt("work", "/tmp/ostree-ts-checkout-bench"));
const only = opt("only", "")?.split(",").filter(Boolean) ?? [];
const oursOnly = args.includes("--ours-only");
const cli = resolve(opt("cli", join(root, "apps/cli/dist/ostree-ts.mjs")));
const OSTREE = process.env.OSTREE_BIN ?? "/usr/bin/ostree";

// Sampling: a path is taken when the first 16 bits of sha256(path) mod 1000 < 166,
// files over 8 MiB are left out, and the walk (sorted) stops at 20000 entries.
const TOPS = ["bin", "include", "lib", "libexec", "sbin", "share"];
const PERMILLE = 166;
const MAX_FILE = 8 << 20;
const MAX_ENTRIES = 20000;

function sample() {
  const out = [];
  const walk = (dir, rel) => {
    let ents;
    try {
      ents = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    ents.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of ents) {
      if (out.length >= MAX_ENTRIES) return;
      const p = `${dir}/${e.name}`;
      const r = `${rel}/${e.name}`;
      if (e.isDirectory()) {
        walk(p, r);
        continue;
      }
      if (!e.isFile() && !e.isSymbolicLink()) continue;
      if (createHash("sha256").update(r).digest().readUInt16BE(0) % 1000 >= PERMILLE) continue;
      const st = lstatSync(p);
      if (st.isFile() && st.size > MAX_FILE) continue;
      out.push({ src: p, rel: r, symlink: e.isSymbolicLink(), size: st.isFile() ? st.size : 0 });
    }
  };
  for (const t of TOPS) walk(`/usr/${t}`, t);
  return out;
}

function run(cmd, argv, opts = {}) {
  return execFileSync(cmd, argv, { stdio: ["ignore", "pipe", "inherit"], ...opts }).toString();
}

function prepare() {
  mkdirSync(work, { recursive: true });
  const entries = sample();
  const manifest = createHash("sha256").update(entries.map((e) => `${e.rel}\0${e.size}\0${e.symlink}`).join("\n")).digest("hex");
  const stamp = join(work, "manifest");
  if (existsSync(stamp) && readFileSync(stamp, "utf8") === manifest) return { entries, reused: true };
  rmSync(join(work, "tree"), { recursive: true, force: true });
  for (const e of entries) {
    const dest = join(work, "tree", e.rel);
    mkdirSync(dirname(dest), { recursive: true });
    if (e.symlink) symlinkSync(readlinkSync(e.src), dest);
    else copyFileSync(e.src, dest);
  }
  // The tree's own permissions are those of the copies; make every file readable so both tools see the same input.
  run("chmod", ["-R", "u+rwX", join(work, "tree")]);
  for (const mode of ["bare-user", "archive"]) {
    const repo = join(work, `repo-${mode}`);
    rmSync(repo, { recursive: true, force: true });
    run(OSTREE, ["init", `--repo=${repo}`, `--mode=${mode}`]);
    run(OSTREE, ["commit", `--repo=${repo}`, "-b", "bench", "--tree=dir=" + join(work, "tree"), "-s", "bench", "--timestamp=2020-01-01T00:00:00Z"]);
  }
  writeFileSync(stamp, manifest);
  return { entries, reused: false };
}

// id, repo mode, checkout flags, and whether the uncompressed cache is cleared first.
const CASES = [
  { id: "bare-user -U (hardlinks)", mode: "bare-user", flags: ["-U"] },
  { id: "bare-user -U -H (hardlinks)", mode: "bare-user", flags: ["-U", "-H"] },
  { id: "bare-user (copies, chown, xattrs)", mode: "bare-user", flags: [] },
  { id: "bare-user -U -C (copies)", mode: "bare-user", flags: ["-U", "-C"] },
  { id: "archive -U --disable-cache (copies)", mode: "archive", flags: ["-U", "--disable-cache"] },
  { id: "archive -U (fresh uncompressed cache)", mode: "archive", flags: ["-U"], clearCache: true },
  { id: "archive (copies, chown)", mode: "archive", flags: [] },
];

function timed(argv, dest, c) {
  rmSync(dest, { recursive: true, force: true });
  if (c.clearCache) rmSync(join(work, `repo-${c.mode}`, "uncompressed-objects-cache"), { recursive: true, force: true });
  const t0 = process.hrtime.bigint();
  const r = spawnSync("/usr/bin/time", ["-f", "%e %U %S %M", ...argv], { stdio: ["ignore", "ignore", "pipe"] });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const lines = r.stderr.toString().trim().split("\n");
  if (r.status !== 0) throw new Error(`${argv.join(" ")} failed:\n${lines.join("\n")}`);
  const [, u, s, m] = lines[lines.length - 1].split(" ").map(Number);
  return { wall, cpu: u + s, rss: m / 1024 };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function main() {
  if (!existsSync(cli)) throw new Error(`${cli} not built: npx pnpm@10.34.9 --filter ostree-ts build`);
  const { entries, reused } = prepare();
  const bytes = entries.reduce((a, e) => a + e.size, 0);
  const desc = `${entries.length} entries, ${(bytes / 1e6).toFixed(0)} MB from /usr${reused ? " (repos reused)" : ""}`;
  console.error(`tree: ${desc}`);
  const dest = join(work, "co");
  const rows = [];
  for (const c of CASES) {
    if (only.length && !only.some((o) => c.id.includes(o))) continue;
    const repo = join(work, `repo-${c.mode}`);
    const tools = {
      ostree: [OSTREE, "checkout", `--repo=${repo}`, ...c.flags, "bench", dest],
      "ostree-ts": [process.execPath, cli, "checkout", `--repo=${repo}`, ...c.flags, "bench", dest],
    };
    if (oursOnly) delete tools.ostree;
    const res = Object.fromEntries(Object.keys(tools).map((k) => [k, []]));
    // One unmeasured run of each warms the page cache.
    for (const k of Object.keys(tools)) timed(tools[k], dest, c);
    for (let i = 0; i < reps; i++) {
      const order = i % 2 === 0 ? Object.keys(tools) : Object.keys(tools).reverse();
      for (const k of order) res[k].push(timed(tools[k], dest, c));
    }
    const med = (k, f) => median(res[k].map((r) => r[f]));
    const row = { id: c.id };
    for (const k of Object.keys(tools)) row[k] = { wall: med(k, "wall"), cpu: med(k, "cpu"), rss: med(k, "rss") };
    rows.push(row);
    console.error(`${c.id}: ${Object.keys(tools).map((k) => `${k} ${row[k].wall.toFixed(2)}s ${row[k].cpu.toFixed(2)}s ${row[k].rss.toFixed(0)}MB`).join(" | ")}`);
  }
  rmSync(dest, { recursive: true, force: true });
  const f = (x, d = 2) => x.toFixed(d);
  const out = [
    `Tree: ${desc}; ${reps} reps, medians; Node ${process.version}.`,
    "",
    oursOnly
      ? "| case | wall s | CPU s | RSS MB |\n|---|---:|---:|---:|"
      : "| case | ostree wall s | ostree-ts wall s | ratio | ostree CPU s | ostree-ts CPU s | ostree RSS MB | ostree-ts RSS MB |\n|---|---:|---:|---:|---:|---:|---:|---:|",
    ...rows.map((r) => {
      const t = r["ostree-ts"];
      if (oursOnly) return `| ${r.id} | ${f(t.wall)} | ${f(t.cpu)} | ${f(t.rss, 0)} |`;
      const o = r.ostree;
      return `| ${r.id} | ${f(o.wall)} | ${f(t.wall)} | ${f(t.wall / o.wall)} | ${f(o.cpu)} | ${f(t.cpu)} | ${f(o.rss, 0)} | ${f(t.rss, 0)} |`;
    }),
  ];
  console.log(out.join("\n"));
}

main();
