#!/usr/bin/env node
// Run Debian's installed upstream ostree tests (package ostree-tests) with
// ostree-ts first on PATH as `ostree`.
//
//   node tooling/upstream-tests/run.mjs [--real] [--jobs N] [--out DIR] [test-name|group ...]
//
// Groups: `core` (the foundation issue's list, the default), `all` (every
// *.sh test). Results: DIR/results.json and DIR/results.md (default DIR =
// tooling/upstream-tests/results), full output in DIR/logs/NAME.log. `--real` runs the same tests against
// /usr/bin/ostree for comparison. Exit status is 0 only when every test passed.
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const TESTS_DIR = process.env.OSTREE_TESTS_DIR ?? "/usr/libexec/installed-tests/libostree";
const here = fileURLToPath(new URL(".", import.meta.url));
const cli = resolve(here, "../../apps/cli/dist/ostree-ts.mjs");

const GROUPS = {
  core: [
    "test-basic-user",
    "test-basic-user-only",
    "test-basic-root",
    "test-archivez",
    "test-commit-timestamp",
    "test-config",
    "test-corruption",
    "test-parent",
    "test-prune",
    "test-refs",
    "test-reset-nonlinear",
    "test-fsck-delete",
    "test-export",
  ],
};

const argv = process.argv.slice(2);
let jobs = 4;
let outDir = join(here, "results");
let real = false;
const names = [];
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === "--jobs") jobs = Number(argv[++i]);
  else if (a === "--out") outDir = resolve(argv[++i]);
  else if (a === "--real") real = true;
  else names.push(a);
}

if (!existsSync(TESTS_DIR)) {
  console.error(`${TESTS_DIR} not found: install Debian's ostree-tests package (apt-get install ostree-tests)`);
  process.exit(2);
}
if (!real && !existsSync(cli)) {
  console.error(`${cli} is missing: run \`npx pnpm@10.34.9 --filter ostree-ts build\` first`);
  process.exit(2);
}

// Some tests run gpg with --homedir inside the tests' own gpghome, leaving agent
// sockets there that later `commit .` runs refuse (for real ostree too). Every run
// works on its own copy, sockets skipped, so the installed tree never changes.
const sandbox = mkdtempSync(join(tmpdir(), "ostree-ts-upstream-"));
const testsDir = join(sandbox, "libexec/installed-tests/libostree");
cpSync(TESTS_DIR, testsDir, { recursive: true, verbatimSymlinks: true, filter: (src) => !lstatSync(src).isSocket() });
// libtest.sh finds ostree-trivial-httpd at $G_TEST_SRCDIR/../../libostree.
symlinkSync(resolve(TESTS_DIR, "../../libostree"), join(sandbox, "libexec/libostree"));

const all = readdirSync(testsDir).filter((f) => /^test-.*\.sh$/.test(f)).map((f) => f.slice(0, -3)).sort();
const selected = [];
for (const n of names.length ? names : ["core"]) {
  if (n === "all") selected.push(...all);
  else if (GROUPS[n]) selected.push(...GROUPS[n]);
  else selected.push(n.replace(/\.sh$/, ""));
}
const tests = [...new Set(selected)];

const shim = mkdtempSync(join(tmpdir(), "ostree-ts-shim-"));
if (!real) {
  writeFileSync(join(shim, "ostree"), `#!/bin/sh\nOSTREE_TS_PRGNAME=ostree exec ${JSON.stringify(process.execPath)} ${JSON.stringify(cli)} "$@"\n`);
  chmodSync(join(shim, "ostree"), 0o755);
}

function runOne(name) {
  const script = join(testsDir, `${name}.sh`);
  if (!existsSync(script)) return Promise.resolve({ name, status: "missing", passed: 0, failed: 0, skipped: 0, seconds: 0, tail: "" });
  const start = Date.now();
  // libtest.sh runs in the current directory and insists that it is empty.
  const cwd = mkdtempSync(join(tmpdir(), `ostree-ts-${name}-`));
  return new Promise((done) => {
    const child = spawn("bash", [script], {
      cwd,
      env: {
        ...process.env,
        PATH: real ? process.env.PATH : `${shim}:${process.env.PATH}`,
        G_TEST_SRCDIR: testsDir,
        G_TEST_BUILDDIR: testsDir,
        LANG: "C.UTF-8",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 900_000);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      rmSync(cwd, { recursive: true, force: true });
      // Most scripts print `ok NAME` without a number; TAP-numbered ones print `ok N ...`.
      const oks = out.match(/^ok\b/gm)?.length ?? 0;
      const skips = out.match(/^ok\b.*# SKIP/gim)?.length ?? 0;
      const notOks = out.match(/^not ok\b/gm)?.length ?? 0;
      mkdirSync(join(outDir, "logs"), { recursive: true });
      writeFileSync(join(outDir, "logs", `${name}.log`), out);
      const planSkip = /^1\.\.0\s*#\s*SKIP/im.test(out);
      const status = code === 0 && planSkip ? "skip" : code === 0 ? "pass" : code === 77 ? "skip" : signal ? `killed (${signal})` : "fail";
      const tail = out.trimEnd().split("\n").slice(-25).join("\n");
      done({ name, status, exitCode: code, passed: oks - skips, failed: notOks, skipped: skips, seconds: (Date.now() - start) / 1000, tail });
    });
  });
}

const results = [];
let next = 0;
await Promise.all(
  Array.from({ length: Math.min(jobs, tests.length) }, async () => {
    while (next < tests.length) {
      const t = tests[next++];
      const r = await runOne(t);
      results.push(r);
      console.log(`${r.status.padEnd(6)} ${t} (${r.passed} ok, ${r.failed} not ok, ${r.skipped} skipped, ${r.seconds.toFixed(1)}s)`);
    }
  }),
);
rmSync(shim, { recursive: true, force: true });
spawnSync("gpgconf", ["--homedir", join(testsDir, "gpghome"), "--kill", "gpg-agent"], { stdio: "ignore" });
rmSync(sandbox, { recursive: true, force: true });
results.sort((a, b) => tests.indexOf(a.name) - tests.indexOf(b.name));

mkdirSync(outDir, { recursive: true });
const subject = real ? "/usr/bin/ostree" : "ostree-ts";
writeFileSync(join(outDir, "results.json"), `${JSON.stringify({ subject, date: new Date().toISOString(), results }, null, 2)}\n`);
let md = `# Upstream ostree tests with ${subject}\n\n| test | result | ok | not ok | skipped | first error (or last line) |\n|---|---|---|---|---|---|\n`;
for (const r of results) {
  const lines = r.tail.split("\n").filter((l) => l.trim());
  // The failing assertion is near the end; "no errors found" lines from fsck are not it.
  const failing = [...lines].reverse().find((l) => /^error:|^# error|Unexpected nonzero|doesn't match|^not ok|SKIP/.test(l.trim()));
  const last = r.status === "pass" ? "" : (failing ?? lines.filter((l) => !/gpg-connect|OK closing/.test(l)).at(-1) ?? "").replace(/\|/g, "\\|").slice(0, 160);
  md += `| ${r.name} | ${r.status} | ${r.passed} | ${r.failed} | ${r.skipped} | ${last} |\n`;
}
writeFileSync(join(outDir, "results.md"), md);
console.log(`\n${results.filter((r) => r.status === "pass").length}/${results.length} passed; see ${join(outDir, "results.md")}`);
process.exit(results.every((r) => r.status === "pass" || r.status === "skip") ? 0 : 1);
