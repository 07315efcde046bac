#!/usr/bin/env node
// Micro-benchmark: SA-IS, bsdiff, bspatch, rollsum and xz decoding on real
// binaries of this machine. Each case runs in its own process so its peak RSS
// is its own. Usage: node bench/bsdiff.mjs [old new]   (default cmake → cpack)
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const caseArg = process.argv.find((a) => a.startsWith("--case="))?.slice(7);

if (!caseArg) {
  const [oldPath = "/usr/bin/cmake", newPath = "/usr/bin/cpack"] = process.argv.slice(2);
  const bigPath = ["/usr/bin/node", "/usr/lib/gcc/x86_64-linux-gnu/12/cc1plus"].find(existsSync);
  // Built inside the package so the bundle resolves xz-decompress from its node_modules.
  const out = mkdtempSync(join(here, "../node_modules/.deltas-bench-"));
  const lib = join(out, "deltas.mjs");
  await build({ entryPoints: [join(here, "../src/index.ts")], bundle: true, platform: "node", format: "esm", packages: "external", outfile: lib, logLevel: "warning" });
  const run = (name, ...args) => {
    const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), `--case=${name}`, lib, ...args], { encoding: "utf8", maxBuffer: 1 << 26 });
    if (r.status !== 0) throw new Error(`${name}: ${r.stderr}`);
    return JSON.parse(r.stdout);
  };
  const mb = (n) => (n / 1e6).toFixed(1);
  console.log(`node ${process.version}, ${(await import("node:os")).cpus()[0].model}, load ${(await import("node:os")).loadavg()[0].toFixed(1)}`);
  console.log(`pair: ${oldPath} (${mb(readFileSync(oldPath).length)} MB) → ${newPath} (${mb(readFileSync(newPath).length)} MB)`);
  const rows = [];
  rows.push(run("sais", oldPath, String(Infinity)));
  if (bigPath) rows.push(run("sais", bigPath, String(50e6)));
  rows.push(run("bsdiff", oldPath, newPath));
  rows.push(run("bspatch", oldPath, newPath));
  rows.push(run("rollsum", oldPath, newPath));
  rows.push(run("xzdecode", newPath));
  if (spawnSync("ostree", ["--version"]).status === 0) rows.push(run("ostree", oldPath, newPath, out));
  for (const r of rows) console.log(`${r.name.padEnd(34)} ${String(r.ms.toFixed(0)).padStart(7)} ms  ${r.mbps.toFixed(1).padStart(6)} MB/s  peak RSS ${String(Math.round(r.rssMB)).padStart(5)} MB  ${r.note ?? ""}`);
  rmSync(out, { recursive: true, force: true });
} else {
  const lib = await import(process.argv[3]);
  const [a, b, c] = process.argv.slice(4);
  const time = (fn) => {
    const t = performance.now();
    const r = fn();
    return [performance.now() - t, r];
  };
  const report = (name, ms, bytes, note) => {
    const rssMB = process.resourceUsage().maxRSS / 1024;
    process.stdout.write(JSON.stringify({ name, ms, mbps: bytes / 1e6 / (ms / 1000), rssMB, note }));
  };
  const load = (p, cap = Infinity) => {
    const buf = readFileSync(p);
    return new Uint8Array(buf.buffer, buf.byteOffset, Math.min(buf.length, cap));
  };
  if (caseArg === "sais") {
    const text = load(a, Number(b));
    const [ms] = time(() => lib.suffixArray(text));
    report(`SA-IS ${(text.length / 1e6).toFixed(1)} MB (${a.split("/").pop()})`, ms, text.length);
  } else if (caseArg === "bsdiff") {
    const [o, n] = [load(a), load(b)];
    const [ms, patch] = time(() => lib.bsdiff(o, n));
    const xz = execFileSync("xz", ["-8", "-T1", "-c"], { input: patch, maxBuffer: 1 << 30 });
    report("bsdiff (new bytes/s)", ms, n.length, `patch ${(patch.length / 1e6).toFixed(2)} MB, xz -8 ${(xz.length / 1e6).toFixed(2)} MB`);
  } else if (caseArg === "bspatch") {
    const [o, n] = [load(a), load(b)];
    const patch = lib.bsdiff(o, n);
    const [ms] = time(() => lib.bspatch(o, patch, n.length));
    report("bspatch (new bytes/s)", ms, n.length);
  } else if (caseArg === "rollsum") {
    const [o, n] = [load(a), load(b)];
    const [ms, r] = time(() => lib.computeRollsumMatches(o, n));
    report("rollsum matching (old+new bytes/s)", ms, o.length + n.length, `${r.bufMatches}/${r.total} chunks, ${(r.matchSize / 1e6).toFixed(2)} MB matched`);
  } else if (caseArg === "ostree") {
    // Whole `ostree static-delta generate` on trees differing only in this file: its bsdiff dominates.
    const { copyFileSync, mkdirSync } = await import("node:fs");
    const repo = join(c, "repo");
    const ost = (...args) => execFileSync("ostree", [`--repo=${repo}`, ...args], { encoding: "utf8" }).trim();
    execFileSync("ostree", ["init", `--repo=${repo}`, "--mode=archive"]);
    const commits = [a, b].map((src, i) => {
      const tree = join(c, `v${i}`);
      mkdirSync(join(tree, "usr/bin"), { recursive: true });
      copyFileSync(src, join(tree, "usr/bin/tool"));
      return ost("commit", "-b", "t", "--no-xattrs", `--tree=dir=${tree}`);
    });
    const t = performance.now();
    ost("static-delta", "generate", `--from=${commits[0]}`, `--to=${commits[1]}`);
    const ms = performance.now() - t;
    report("ostree static-delta generate (ref.)", ms, load(b).length, "ostree 2022.7, C bsdiff + xz of the part; RSS not measured");
  } else if (caseArg === "xzdecode") {
    const raw = load(a);
    const packed = execFileSync("xz", ["-8", "-T1", "-c"], { input: raw, maxBuffer: 1 << 30 });
    const t = performance.now();
    await lib.decompress(packed, "xz", raw.length, { decoder: "wasm" });
    const wasm = performance.now() - t;
    const t2 = performance.now();
    await lib.decompress(packed, "xz", raw.length, { decoder: "xz" });
    const bin = performance.now() - t2;
    report("xz decode, WASM (out bytes/s)", wasm, raw.length, `xz -dc: ${bin.toFixed(0)} ms (${(raw.length / 1e6 / (bin / 1000)).toFixed(1)} MB/s)`);
  }
}
