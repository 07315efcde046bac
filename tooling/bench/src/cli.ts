import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { cacheDir, writeJsonAtomic } from "@ostree-ts/test-images";
import { runBench, type BenchResults } from "./harness.js";
import { NOT_IMPLEMENTED_RE } from "./measure.js";
import type { InputSource } from "./inputs.js";
import { MergeError, mergeResults, type MergedRun } from "./merge.js";
import { OPS } from "./ops.js";
import { benchmarksMarkdown, deltaRows, deltaSvg } from "./report.js";

const USAGE = `usage: pnpm bench [options]    (node tooling/bench/run.mjs)
input (default: the test images if built, else --quick):
  --images             test-images cache os-v1/v2/v3-ostree (build: node test-images/bin/build.mjs)
  --quick              trees made from a subset of this machine's /usr, plus two derived versions
  --fixture N          generated fixture trees with N files (seconds; what the tests use)
  --repo PATH --ref R  a real repository: its commits R^ and R (or $OSTREE_TS_BENCH_REPO, $OSTREE_TS_BENCH_REF)
options:
  --reps N             repetitions per tool (default 3, or $OSTREE_TS_BENCH_REPS)
  --only a,b           only these operations (ids: ${OPS.map((o) => o.id).join(", ")})
  --cli PATH           ostree-ts CLI (default apps/cli/dist/ostree-ts.mjs)
  --out DIR            work/results folder (default bench-out/)
  --no-lower-bounds    skip the xz/zstd/changed-bytes reference sizes
  --no-report          write only <out>/results.json, not BENCHMARKS.md and the SVG
  --report-only        rewrite BENCHMARKS.md and the SVG from <out>/results.json without measuring
  --merge              put the measured rows in place of the same rows of <out>/results.json (same
                       inputs) and report all of them, each row with its own repetition count
`;

type SavedResults = BenchResults & { invocation?: string; merged?: MergedRun[] };

export async function main(argv: string[], rootDir: string): Promise<number> {
  const a = new Map<string, string>();
  const flags = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i] as string;
    if (["--reps", "--only", "--cli", "--out", "--fixture", "--repo", "--ref"].includes(k)) a.set(k, argv[++i] ?? "");
    else if (k.startsWith("--")) flags.add(k);
    else throw new Error(`unexpected argument ${k}\n${USAGE}`);
  }
  if (flags.has("--help")) {
    process.stdout.write(USAGE);
    return 0;
  }
  const log = (s: string) => process.stderr.write(`${s}\n`);
  const outDir = resolve(a.get("--out") ?? join(rootDir, "bench-out"));
  if (flags.has("--report-only")) {
    const res = JSON.parse(readFileSync(join(outDir, "results.json"), "utf8")) as SavedResults;
    writeReports(res, rootDir, res.invocation ?? "pnpm bench", log);
    return 0;
  }
  const repo = a.get("--repo") ?? process.env.OSTREE_TS_BENCH_REPO;
  const ref = a.get("--ref") ?? process.env.OSTREE_TS_BENCH_REF;
  let source: InputSource;
  if (repo) {
    if (!ref) throw new Error("a user repository needs --ref (or OSTREE_TS_BENCH_REF)");
    source = { kind: "repo", repo: resolve(repo), ref };
  } else if (a.has("--fixture")) source = { kind: "fixture", files: Number(a.get("--fixture")) };
  else if (flags.has("--quick")) source = { kind: "quick" };
  else if (flags.has("--images") || ["os-v1", "os-v2", "os-v3"].every((n) => existsSync(join(cacheDir(), `${n}-ostree`)))) source = { kind: "images" };
  else {
    log(`test images not built in ${cacheDir()}: using --quick (a /usr subset). \`pnpm bench --images\` builds them first`);
    source = { kind: "quick" };
  }
  const reps = Number(a.get("--reps") ?? process.env.OSTREE_TS_BENCH_REPS ?? 3);
  if (!Number.isInteger(reps) || reps < 1) throw new Error(`--reps must be a positive integer, got ${a.get("--reps")}`);
  const only = a.get("--only")?.split(",").filter(Boolean);
  for (const id of only ?? []) if (!OPS.some((o) => o.id === id)) throw new Error(`unknown operation ${id}`);
  const res = await runBench({
    source,
    outDir,
    reps,
    cli: resolve(a.get("--cli") ?? join(rootDir, "apps/cli/dist/ostree-ts.mjs")),
    ...(only ? { only } : {}),
    lowerBounds: !flags.has("--no-lower-bounds"),
    log,
  });
  const invocation = `pnpm bench ${argv.join(" ")}`.trim();
  mkdirSync(outDir, { recursive: true });
  const resultsPath = join(outDir, "results.json");
  if (flags.has("--merge")) {
    if (!existsSync(resultsPath)) throw new MergeError(`--merge: no earlier results in ${resultsPath}`);
    const base = JSON.parse(readFileSync(resultsPath, "utf8")) as SavedResults;
    const merged = { ...mergeResults(base, res, invocation), invocation: base.invocation ?? "pnpm bench" };
    writeJsonAtomic(resultsPath, merged);
    log(`merged ${res.ops.map((op) => op.id).join(", ")} into ${resultsPath}`);
    if (!flags.has("--no-report")) writeReports(merged, rootDir, merged.invocation, log);
    return 0;
  }
  writeJsonAtomic(resultsPath, { ...res, invocation });
  log(`wrote ${resultsPath}`);
  if (!flags.has("--no-report")) writeReports(res, rootDir, invocation, log);
  return 0;
}

function writeReports(res: SavedResults, rootDir: string, invocation: string, log: (s: string) => void): void {
  // Results saved by an older harness may hold errors that today's NOT_IMPLEMENTED_RE recognises.
  for (const op of res.ops) {
    const t = op.results["ostree-ts"];
    if (t.status === "error" && t.note && NOT_IMPLEMENTED_RE.test(t.note)) t.status = "not implemented";
  }
  const svg = join(rootDir, "docs/bench-delta-sizes.svg");
  const md = join(rootDir, "BENCHMARKS.md");
  mkdirSync(dirname(svg), { recursive: true });
  writeFileSync(svg, deltaSvg(deltaRows(res), `Static delta sizes per strategy (${res.source} trees, log scale)`));
  // Figures measured by other scripts (tooling/bench/load.mjs) live in docs/bench-appendix-*.md.
  const docs = join(rootDir, "docs");
  const appendices = readdirSync(docs).filter((f) => /^bench-appendix-.*\.md$/.test(f)).sort().map((f) => readFileSync(join(docs, f), "utf8"));
  writeFileSync(md, benchmarksMarkdown(res, { svgPath: relative(rootDir, svg), invocation, appendices }));
  log(`wrote ${md} and ${svg}`);
}
