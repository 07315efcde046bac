// Runs the generator outside the CLI (for benchmarks):
//   node packages/deltas/bench/run.mjs generate REPO FROM TO OUTFILE [--ostree-matching]
//   node packages/deltas/bench/run.mjs apply REPO DELTA_PATH [--wasm]
import { Repo } from "@ostree-ts/objstore";
import { applyOffline, generateDelta } from "../src/index.js";

const [cmd, repoPath, a, b, out] = process.argv.slice(2);
const repo = await Repo.open(repoPath!);
if (cmd === "generate") {
  const r = await generateDelta(repo, {
    from: a === "empty" ? null : a!,
    to: b!,
    filename: out,
    matching: process.argv.includes("--ostree-matching") ? "ostree" : "extended",
    minFallbackSize: process.argv.includes("--no-fallbacks") ? 0 : undefined,
    log: (l) => process.stderr.write(`${(performance.now() / 1000).toFixed(1)} ${l}\n`),
  });
  const total = r.parts.reduce((s, p) => s + p.size, 0) + r.fallbacks.reduce((s, f) => s + f.size, 0) + r.superblockSize;
  console.log(JSON.stringify({ total, parts: r.parts.length, fallbacks: r.fallbacks.length, stats: r.stats }));
} else if (cmd === "apply") {
  console.log(JSON.stringify(await applyOffline(repo, a!, { decoder: process.argv.includes("--wasm") ? "wasm" : undefined })));
}
