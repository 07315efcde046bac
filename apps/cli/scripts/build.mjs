// Bundle the CLI: dist/ostree-ts.mjs (entry: option parsing and the command
// table) plus code-split chunks in dist/chunks/, so a call parses only the
// command it runs and the packages that command imports (openpgp, undici,
// deltas stay out of `rev-parse`). Workspace packages resolve to their
// TypeScript sources (the "source" condition); native modules stay external
// and are loaded lazily through createRequire so `--version` never pays for them.
//
// Several developers rebuild while others run the CLI, so the build never
// pulls a file from under a running process: chunk names carry a content hash
// and are written once, the entry is replaced atomically (temp + rename), and a
// chunk is deleted only an hour after a build first found that no .mjs file in
// dist/ (a copy of the entry such as bench-ostree-ts.mjs counts) reaches it
// (the marker chunks/.unreachable-NAME records when).
import { build } from "esbuild";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const dist = join(root, "dist");
const chunkDir = join(dist, "chunks");
const ENTRY = "ostree-ts.mjs";
const NATIVE = ["@napi-rs/xattr"];
const STALE_MS = 60 * 60 * 1000;

const lazyNative = {
  name: "lazy-native",
  setup(b) {
    const filter = new RegExp(`^(${NATIVE.map((n) => n.replace(/[/]/g, "\\/")).join("|")})$`);
    b.onResolve({ filter }, (args) => ({ path: args.path, namespace: "lazy-native" }));
    b.onLoad({ filter: /.*/, namespace: "lazy-native" }, (args) => ({
      // A Proxy-free shim: every export forwards to the real module, required on first use.
      contents: `import { createRequire } from "node:module";
const req = createRequire(import.meta.url);
let mod;
const load = () => (mod ??= req(${JSON.stringify(args.path)}));
${["getAttributeSync", "listAttributesSync", "setAttributeSync", "removeAttributeSync", "getAttribute", "listAttributes", "setAttribute", "removeAttribute"]
  .map((n) => `export function ${n}(...a) { return load().${n}(...a); }`)
  .join("\n")}
`,
      loader: "js",
    }));
  },
};

const result = await build({
  entryPoints: { "ostree-ts": `${root}/src/main.ts` },
  outdir: dist,
  splitting: true,
  chunkNames: "chunks/[name]-[hash]",
  outExtension: { ".js": ".mjs" },
  bundle: true,
  platform: "node",
  target: "node20",
  format: "esm",
  conditions: ["source"],
  // CommonJS dependencies bundled into ESM call require() for Node built-ins;
  // every output file gets its own (a chunk may hold such a dependency).
  banner: { js: 'import { createRequire as __ostreeTsCreateRequire } from "node:module";\nconst require = __ostreeTsCreateRequire(import.meta.url);' },
  plugins: [lazyNative],
  sourcemap: false,
  legalComments: "none",
  logLevel: "warning",
  write: false,
});

// `--clean` (prepack): only this build's chunks, for the published package. Not for a
// shared checkout: it removes chunks that running CLIs may still load.
const clean = process.argv.includes("--clean");
if (clean) rmSync(chunkDir, { recursive: true, force: true });
mkdirSync(chunkDir, { recursive: true });
let entryText;
for (const f of result.outputFiles) {
  if (f.path === join(dist, ENTRY)) {
    entryText = `#!/usr/bin/env node\n${f.text}`;
  } else if (!existsSync(f.path)) {
    // Content-hashed: an existing file of this name already holds these bytes.
    const tmp = `${f.path}.${process.pid}.tmp`;
    writeFileSync(tmp, f.contents);
    renameSync(tmp, f.path);
  }
}
if (entryText === undefined) throw new Error(`esbuild produced no ${ENTRY}`);
const tmpEntry = join(dist, `.${ENTRY}.${process.pid}.tmp`);
writeFileSync(tmpEntry, entryText, { mode: 0o755 });
chmodSync(tmpEntry, 0o755);
renameSync(tmpEntry, join(dist, ENTRY));

// Chunks reachable from any entry-like file in dist/ (relative import specifiers).
const IMPORT_RE = /["'](\.{1,2}\/(?:chunks\/)?[\w.-]+\.mjs)["']/g;
const reachable = new Set();
const visit = (file) => {
  if (reachable.has(file) || !existsSync(file)) return;
  reachable.add(file);
  for (const m of readFileSync(file, "utf8").matchAll(IMPORT_RE)) visit(join(dirname(file), m[1]));
};
for (const name of readdirSync(dist)) if (name.endsWith(".mjs")) visit(join(dist, name));
const MARK = ".unreachable-";
const now = Date.now();
const names = readdirSync(chunkDir);
for (const name of names) {
  const p = join(chunkDir, name);
  if (name.startsWith(MARK)) {
    // The chunk is gone, or reachable again (rebuilt with the same content).
    const chunk = join(chunkDir, name.slice(MARK.length));
    if (!existsSync(chunk) || reachable.has(chunk)) rmSync(p, { force: true });
    continue;
  }
  if (reachable.has(p)) continue;
  const mark = join(chunkDir, MARK + name);
  if (!existsSync(mark)) writeFileSync(mark, "");
  else if (now - statSync(mark).mtimeMs > STALE_MS) {
    rmSync(p, { force: true });
    rmSync(mark, { force: true });
  }
}
if (process.env.OSTREE_TS_BUILD_VERBOSE) {
  for (const f of result.outputFiles) process.stdout.write(`${relative(root, f.path)} ${f.contents.length}\n`);
}
