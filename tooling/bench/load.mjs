#!/usr/bin/env node
// Load figures for ostree-ts-server (see tooling/bench/README.md, "Server load"):
// N concurrent pulls of one ref by separate client processes, then wrk against object GETs.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";

const root = resolve(import.meta.dirname, "../..");
const { values: a } = parseArgs({
  options: {
    repo: { type: "string", default: join(root, "bench-out/inputs/archive") },
    ref: { type: "string", default: "os-v2" },
    clients: { type: "string", default: "50" },
    client: { type: "string", default: "ostree-ts" },
    mode: { type: "string", default: "archive" },
    out: { type: "string", default: join(root, "bench-out/load") },
    "wrk-seconds": { type: "string", default: "15" },
    "skip-pulls": { type: "boolean" },
    "skip-wrk": { type: "boolean" },
    "fsck-clients": { type: "string", default: "2" },
    // Clients and server share this machine's cores: niced clients keep the server from being starved.
    "client-nice": { type: "string", default: "10" },
  },
});
const N = Number(a.clients);
const cli = join(root, "apps/cli/dist/ostree-ts.mjs");
const serverBin = join(root, "apps/server/dist/ostree-ts-server.mjs");
for (const f of [serverBin, ...(a.client === "ostree-ts" ? [cli] : [])]) if (!existsSync(f)) throw new Error(`${f} missing: build it first (node scripts/build.mjs in its app)`);
if (!existsSync(join(a.repo, "objects"))) throw new Error(`${a.repo} is not a repo: run \`node tooling/bench/run.mjs --images --only pull-objects --reps 1\` once to build bench-out/inputs/archive`);
rmSync(a.out, { recursive: true, force: true });
mkdirSync(a.out, { recursive: true });
const expected = execFileSync("ostree", ["rev-parse", `--repo=${a.repo}`, a.ref], { encoding: "utf8" }).trim();

/** Run under /usr/bin/time: wall (ms, Node clock), CPU s (user+sys), peak RSS kB. */
function timed(cmd, args) {
  return new Promise((ok) => {
    const t0 = performance.now();
    const p = spawn("nice", ["-n", a["client-nice"], "/usr/bin/time", "-f", "TIME %e %U %S %M", cmd, ...args], { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    p.stderr.on("data", (d) => (err += d));
    p.on("close", (code) => {
      const m = /TIME ([\d.]+) ([\d.]+) ([\d.]+) (\d+)/.exec(err);
      ok({ code, ms: performance.now() - t0, cpu: m ? Number(m[2]) + Number(m[3]) : NaN, rssKb: m ? Number(m[4]) : NaN, stderr: err.replace(/TIME .*\n?$/, "") });
    });
  });
}

// The server, read-only over the bench input repo: no summary rewriting, access log to a file.
const logPath = join(a.out, "access.log");
writeFileSync(join(a.out, "server.json"), JSON.stringify({ repos: [{ name: "", path: a.repo }], port: 0, updateSummary: false, log: { access: logPath, events: "off" } }));
const server = spawn(process.execPath, [serverBin, "--config", join(a.out, "server.json"), "--port", "0"], { stdio: ["ignore", "ignore", "pipe"] });
const port = await new Promise((ok, fail) => {
  let buf = "";
  server.stderr.on("data", (d) => {
    buf += d;
    const m = /"port":(\d+)/.exec(buf);
    if (m) ok(Number(m[1]));
  });
  server.on("exit", (c) => fail(new Error(`server exited (${c}): ${buf}`)));
});
const url = `http://127.0.0.1:${port}`;
const serverCpu = () => {
  const f = execFileSync("cat", [`/proc/${server.pid}/stat`], { encoding: "utf8" }).split(") ")[1].split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
};
const report = { ref: a.ref, commit: expected, clients: N, client: a.client, mode: a.mode, clientNice: Number(a["client-nice"]), load: (await import("node:os")).loadavg().map((x) => x.toFixed(1)) };

try {
  if (!a["skip-pulls"]) {
    const repos = [];
    for (let i = 0; i < N; i++) {
      const r = join(a.out, `c${i}`);
      execFileSync("ostree", ["init", `--repo=${r}`, `--mode=${a.mode}`]);
      execFileSync("ostree", ["remote", "add", `--repo=${r}`, "--no-gpg-verify", "origin", url]);
      repos.push(r);
    }
    const cpu0 = serverCpu();
    const t0 = performance.now();
    const runs = await Promise.all(
      repos.map((r) => (a.client === "ostree" ? timed("ostree", ["pull", `--repo=${r}`, "origin", a.ref]) : timed(process.execPath, [cli, "pull", `--repo=${r}`, "origin", a.ref]))),
    );
    const wall = (performance.now() - t0) / 1000;
    const failed = runs.filter((r) => r.code !== 0);
    const wrong = repos.filter((r) => execFileSync("ostree", ["rev-parse", `--repo=${r}`, `origin:${a.ref}`], { encoding: "utf8" }).trim() !== expected);
    const fsckOk = repos.slice(0, Number(a["fsck-clients"])).every((r) => {
      try {
        execFileSync("ostree", ["fsck", "-q", `--repo=${r}`], { stdio: "ignore" });
        return true;
      } catch {
        return false;
      }
    });
    const lines = execFileSync("wc", ["-l", logPath], { encoding: "utf8" });
    const sorted = runs.map((r) => r.ms / 1000).sort((x, y) => x - y);
    report.pulls = {
      wallSeconds: Number(wall.toFixed(1)),
      perClientSeconds: { min: Number(sorted[0].toFixed(1)), median: Number(sorted[Math.floor(N / 2)].toFixed(1)), max: Number(sorted[N - 1].toFixed(1)) },
      clientCpuSecondsTotal: Number(runs.reduce((n, r) => n + r.cpu, 0).toFixed(1)),
      clientPeakRssMb: Math.max(...runs.map((r) => r.rssKb)) / 1024,
      serverCpuSeconds: Number((serverCpu() - cpu0).toFixed(1)),
      requests: Number(lines.trim().split(" ")[0]),
      failed: failed.length,
      firstError: failed[0]?.stderr.slice(0, 500),
      wrongCommit: wrong.length,
      fsckOk,
    };
    report.pulls.requestsPerSecond = Math.round(report.pulls.requests / wall);
    process.stdout.write(`${JSON.stringify(report.pulls)}\n`);
  }

  if (!a["skip-wrk"]) runWrk();
} finally {
  server.kill("SIGTERM");
  await new Promise((ok) => server.on("exit", ok));
  // Client repos go last: deleting 50 copies of a large tree takes minutes of disk time.
  for (const d of readdirSync(a.out)) if (/^c\d+$/.test(d)) rmSync(join(a.out, d), { recursive: true, force: true });
}

/** wrk over every .filez object of the repo, cycling, at three concurrency levels. */
function runWrk() {
  const paths = [];
  for (const d of readdirSync(join(a.repo, "objects"))) for (const f of readdirSync(join(a.repo, "objects", d))) if (f.endsWith(".filez")) paths.push(`/objects/${d}/${f}`);
  writeFileSync(join(a.out, "paths.txt"), paths.join("\n") + "\n");
  writeFileSync(
    join(a.out, "wrk.lua"),
    `local paths = {}\nfor l in io.lines("${join(a.out, "paths.txt")}") do paths[#paths + 1] = l end\nlocal i = 0\nrequest = function()\n  i = i % #paths + 1\n  return wrk.format("GET", paths[i])\nend\n`,
  );
  report.wrk = [];
  for (const [t, c] of [
    [1, 8],
    [2, 32],
    [2, 128],
  ]) {
    const out = execFileSync("wrk", [`-t${t}`, `-c${c}`, `-d${a["wrk-seconds"]}s`, "--latency", "-s", join(a.out, "wrk.lua"), url], { encoding: "utf8" });
    const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
    const lat = (p) => /(\d+(?:\.\d+)?)(us|ms|s)\s*$/.exec(new RegExp(`^\\s+${p}%\\s+\\S+`, "m").exec(out)?.[0] ?? "");
    const ms = (m) => (m ? Number(m[1]) * (m[2] === "us" ? 0.001 : m[2] === "s" ? 1000 : 1) : NaN);
    const errors = /Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? "0";
    report.wrk.push({ threads: t, connections: c, requestsPerSecond: Math.round(rps), p50ms: ms(lat("50")), p99ms: ms(lat("99")), non2xx: Number(errors), transferPerSec: /Transfer\/sec:\s+(\S+)/.exec(out)?.[1] });
  }
  report.objects = paths.length;
}
writeFileSync(join(a.out, "load.json"), JSON.stringify(report, null, 2));
process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
if (report.pulls && (report.pulls.failed || report.pulls.wrongCommit || !report.pulls.fsckOk)) process.exitCode = 1;
