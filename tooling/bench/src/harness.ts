import { spawnSync } from "node:child_process";
import { createReadStream, existsSync, mkdirSync, rmSync, statSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { cpus, loadavg, totalmem } from "node:os";
import { join, normalize, resolve } from "node:path";
import { walkTree } from "@ostree-ts/test-images";
import { OSTREE_BIN, prepareRepo, prepareTrees, type InputSource, type Inputs } from "./inputs.js";
import { lowerBounds, type LowerBounds } from "./lower.js";
import { NOT_IMPLEMENTED_RE, runTimed, type Sample } from "./measure.js";
import { OPS, type Op, type OpContext } from "./ops.js";
import { snapshotCli } from "./snapshot.js";
import { median, ratio } from "./stats.js";

export type ToolName = "ostree" | "ostree-ts";
export const TOOLS: ToolName[] = ["ostree", "ostree-ts"];

export type Status = "ok" | "not implemented" | "error" | "skipped";

export interface ToolResult {
  status: Status;
  /** Why it is not "ok". */
  note?: string;
  samples: Sample[];
  median?: Sample;
  /** Sizes reported by the op (bytes; "requests" is a count), from the last repetition. */
  sizes: Record<string, number>;
}

export interface OpResult {
  id: string;
  title: string;
  /** The measured command lines, with $IN for the inputs dir and $W for the run's scratch dir. */
  commands: string[];
  results: Record<ToolName, ToolResult>;
  ratio: { wall?: number; cpu?: number; maxRss?: number };
  deltaPair?: [number, number];
  /** Repetitions of this row when it differs from the run's (a row re-measured with --merge). */
  reps?: number;
}

export interface BenchResults {
  date: string;
  machine: { nproc: number; memoryBytes: number; cpuModel: string; kernel: string; loadAverage?: number[] };
  ostreeVersion: string;
  ostreeTsCli: string;
  ostreeTsAvailable: boolean;
  reps: number;
  source: string;
  versions: Array<{ name: string; digest: string; bytes: number; files: number; commit: string }>;
  ops: OpResult[];
  lowerBounds: LowerBounds[];
}

export interface BenchOptions {
  source: InputSource;
  /** Where inputs, scratch dirs and caches go (bench-out/). */
  outDir: string;
  reps: number;
  /** Path of the ostree-ts CLI (apps/cli/dist/ostree-ts.mjs). */
  cli: string;
  /** Only these op ids (default all). */
  only?: string[];
  /** Compute xz/zstd lower bounds (slow on big trees). */
  lowerBounds?: boolean;
  log?: (s: string) => void;
}

export interface RepoServer {
  server: Server;
  url: string;
  /** Body bytes sent since the last reset. */
  sent: () => number;
  /** Requests answered (any status) since the last reset. */
  requests: () => number;
  reset: () => void;
}

/** A static file server for the input repo that counts the requests it answers and the bytes it sends. */
export function startRepoServer(root: string): Promise<RepoServer> {
  let sent = 0;
  let requests = 0;
  const base = resolve(root);
  const server = createServer((req, res) => {
    requests++;
    const path = normalize(join(base, decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname)));
    if (!path.startsWith(base) || !existsSync(path) || !statSync(path).isFile()) {
      res.writeHead(404).end();
      return;
    }
    const size = statSync(path).size;
    res.writeHead(200, { "Content-Length": size });
    const s = createReadStream(path);
    s.on("data", (b) => (sent += b.length));
    s.pipe(res);
  });
  return new Promise((ok) =>
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as AddressInfo).port;
      ok({
        server,
        url: `http://127.0.0.1:${port}/`,
        sent: () => sent,
        requests: () => requests,
        reset: () => {
          sent = 0;
          requests = 0;
        },
      });
    }),
  );
}

/** Apparent size of a file or tree in bytes (hardlinked files counted once). */
export function pathBytes(p: string): number {
  if (!existsSync(p)) return 0;
  const st = statSync(p);
  if (!st.isDirectory()) return st.size;
  const seen = new Set<string>();
  let n = 0;
  for (const e of walkTree(p)) {
    if (e.type !== "file") continue;
    const k = `${e.dev}:${e.ino}`;
    if (seen.has(k)) continue;
    seen.add(k);
    n += e.size;
  }
  return n;
}

function machineInfo(): BenchResults["machine"] {
  return {
    nproc: cpus().length,
    memoryBytes: totalmem(),
    cpuModel: cpus()[0]?.model ?? "unknown",
    kernel: spawnSync("uname", ["-sr"], { encoding: "utf8" }).stdout.trim(),
  };
}

function toolArgv(tool: ToolName, cli: string, args: string[]): string[] {
  return tool === "ostree" ? [OSTREE_BIN, ...args] : [process.execPath, cli, ...args];
}

function medianSample(samples: Sample[]): Sample | undefined {
  if (samples.length === 0) return undefined;
  return { wall: median(samples.map((s) => s.wall)), cpu: median(samples.map((s) => s.cpu)), maxRssKiB: median(samples.map((s) => s.maxRssKiB)) };
}

/** Shows a command with the run-specific paths replaced by $IN / $W, for the report. */
function displayCommand(args: string[], inputsDir: string, work: string, url: string): string {
  return `ostree ${args.join(" ")}`.split(work).join("$W").split(inputsDir).join("$IN").split(url).join("http://127.0.0.1:$PORT/");
}

/** Runs the benchmark and returns the results (the caller writes the reports). */
export async function runBench(o: BenchOptions): Promise<BenchResults> {
  const log = o.log ?? ((s: string) => process.stderr.write(`${s}\n`));
  // Other work on the machine inflates wall times (CPU time and RSS much less); the report shows the load.
  const loadStart = loadavg()[0] ?? 0;
  const inputsDir = join(o.outDir, "inputs");
  const versions = prepareTrees(o.source, inputsDir, log);
  const { repo, commits } = prepareRepo(versions, inputsDir, log);
  const inputs: Inputs = { source: o.source.kind, dir: inputsDir, versions, repo, commits };
  const ostreeVersion = /Version: '([^']+)'/.exec(spawnSync(OSTREE_BIN, ["--version"], { encoding: "utf8" }).stdout)?.[1] ?? "unknown";
  const tsAvailable = existsSync(o.cli);
  // Measure a private copy of the (code-split) bundle: others may rebuild dist/ during the run.
  const measured = tsAvailable ? { ...o, cli: snapshotCli(o.cli, join(o.outDir, "cli")) } : o;
  const srv = await startRepoServer(repo);
  const results: OpResult[] = [];
  try {
    for (const op of OPS) {
      if (o.only && !o.only.includes(op.id)) continue;
      results.push(await runOp(op, measured, inputs, srv, tsAvailable, log));
    }
  } finally {
    await new Promise((ok) => srv.server.close(ok));
  }
  const lb: LowerBounds[] = [];
  if (o.lowerBounds !== false) {
    const cache = join(o.outDir, "cache", "lower-bounds");
    for (let i = 1; i < versions.length; i++) lb.push(lowerBounds(versions[i - 1], versions[i] as (typeof versions)[number], cache, log));
    lb.push(lowerBounds(undefined, versions[versions.length - 1] as (typeof versions)[number], cache, log));
  }
  return {
    date: new Date().toISOString(),
    machine: { ...machineInfo(), loadAverage: [loadStart, loadavg()[0] ?? 0] },
    ostreeVersion,
    ostreeTsCli: o.cli,
    ostreeTsAvailable: tsAvailable,
    reps: o.reps,
    source: o.source.kind,
    versions: versions.map((v, i) => ({ name: v.name, digest: v.digest, bytes: v.bytes, files: v.files, commit: commits[i] as string })),
    ops: results,
    lowerBounds: lb,
  };
}

async function runOp(
  op: Op,
  o: BenchOptions,
  inputs: Inputs,
  srv: RepoServer,
  tsAvailable: boolean,
  log: (s: string) => void,
): Promise<OpResult> {
  const fresh = (): ToolResult => ({ status: "ok", samples: [], sizes: {} });
  const res: Record<ToolName, ToolResult> = { ostree: fresh(), "ostree-ts": fresh() };
  const skip = (why: string) => {
    for (const t of TOOLS) Object.assign(res[t], { status: "skipped", note: why });
  };
  const scratchRoot = join(o.outDir, "work");
  const mkCtx = (work: string): OpContext => ({
    inputs,
    work,
    url: srv.url,
    tree: (i) => (inputs.versions[i] as { tree: string }).tree,
    commit: (i) => inputs.commits[i] as string,
    ref: (i) => `os-v${i + 1}`,
  });
  let commands: string[] = [];
  {
    const probe = mkCtx(join(scratchRoot, "probe"));
    if ((op.needs ?? 1) <= inputs.versions.length) commands = op.run(probe).map((a) => displayCommand(a, inputs.dir, probe.work, srv.url));
  }
  if ((op.needs ?? 1) > inputs.versions.length) skip(`needs ${op.needs} versions, input has ${inputs.versions.length}`);
  else if (op.rootOnly && process.getuid?.() !== 0) skip("needs root");
  if (!tsAvailable && res["ostree-ts"].status === "ok") Object.assign(res["ostree-ts"], { status: "not implemented", note: `${o.cli} is not built` });

  for (let rep = 0; rep < o.reps; rep++) {
    const order: ToolName[] = rep % 2 === 0 ? ["ostree", "ostree-ts"] : ["ostree-ts", "ostree"];
    for (const tool of order) {
      const r = res[tool];
      if (r.status !== "ok") continue;
      const work = join(scratchRoot, `${op.id}-${tool}-${rep}`);
      rmSync(work, { recursive: true, force: true });
      mkdirSync(work, { recursive: true });
      const ctx = mkCtx(work);
      try {
        op.setup?.(ctx);
        srv.reset();
        const total: Sample = { wall: 0, cpu: 0, maxRssKiB: 0 };
        for (const args of op.run(ctx)) {
          const c = await runTimed(toolArgv(tool, o.cli, args), work);
          if (c.status !== 0) {
            const ni = tool === "ostree-ts" && NOT_IMPLEMENTED_RE.test(c.stderrTail);
            throw Object.assign(new Error(`${args.slice(0, 2).join(" ")} exited ${c.status}: ${c.stderrTail.trim().split("\n").slice(-3).join(" / ")}`), {
              notImplemented: ni,
            });
          }
          total.wall += c.wall;
          total.cpu += c.cpu;
          total.maxRssKiB = Math.max(total.maxRssKiB, c.maxRssKiB);
        }
        r.samples.push(total);
        const sizes: Record<string, number> = {};
        for (const [k, p] of Object.entries(op.sizes?.(ctx) ?? {})) sizes[k] = p === "http" ? srv.sent() : p === "http-requests" ? srv.requests() : pathBytes(p);
        r.sizes = sizes;
        log(`${op.id} ${tool} #${rep + 1}: ${total.wall.toFixed(2)} s wall, ${total.cpu.toFixed(2)} s cpu, ${(total.maxRssKiB / 1024).toFixed(0)} MiB`);
      } catch (e) {
        const err = e as Error & { notImplemented?: boolean };
        r.status = err.notImplemented ? "not implemented" : "error";
        r.note = err.message.slice(0, 300);
        r.samples = [];
        log(`${op.id} ${tool}: ${r.status}: ${r.note}`);
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    }
  }
  for (const t of TOOLS) {
    const m = medianSample(res[t].samples);
    if (m && res[t].status === "ok") res[t].median = m;
  }
  const a = res["ostree-ts"].median;
  const b = res.ostree.median;
  return {
    id: op.id,
    title: op.title,
    commands,
    results: res,
    ratio: { wall: ratio(a?.wall, b?.wall), cpu: ratio(a?.cpu, b?.cpu), maxRss: ratio(a?.maxRssKiB, b?.maxRssKiB) },
    ...(op.deltaPair ? { deltaPair: op.deltaPair } : {}),
  };
}
