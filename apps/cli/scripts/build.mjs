// Bundle the CLI: dist/ostree-ts.mjs (entry: option parsing and the command
// table) plus code-split chunks in dist/chunks/, so a call parses only the
// command it runs and the packages that command imports (openpgp, undici,
// deltas stay out of `rev-parse`). Workspace packages resolve to their
// TypeScript sources (the "source" condition); native modules stay external
// and are loaded lazily through createRequire so `--version` never pays for them.
//
// esbuild splits by file: every module a command reaches through import
// statements is loaded with it. objstore's index re-exports all of objstore
// (commit, fsck, prune, tar import with pako and tar-stream…), so importing
// anything from "@ostree-ts/objstore" used to load all of it (a 440 KB chunk
// for `rev-parse` and `checkout`). The deep-imports plugin points each named
// import at the file that declares the name instead (objstore, gvariant and
// checkout, whose index brings diff and walk).
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

/**
 * Exported value names of a package's index, mapped to the source file that
 * declares them (from the index's `export *` and `export { … } from` lines and
 * each file's `export function/class/const …` and `export { … }`). A name
 * found in two files, or not found, keeps the index import. A wrong mapping
 * cannot go unnoticed: esbuild fails on an import the file does not export.
 */
function exportMap(indexPath) {
  const dir = dirname(indexPath);
  const map = new Map();
  const conflicts = new Set();
  const add = (name, file) => {
    if (map.has(name) && map.get(name) !== file) conflicts.add(name);
    else map.set(name, file);
  };
  const fileOf = (spec) => join(dir, spec.replace(/\.js$/, ".ts"));
  const declared = (file) => {
    const text = readFileSync(file, "utf8");
    for (const m of text.matchAll(/^export (?:declare )?(?:async )?(?:abstract )?(?:function\*?|class|const|let|var|enum) ([A-Za-z0-9_$]+)/gm)) add(m[1], file);
    for (const m of text.matchAll(/^export \{([^}]*)\}(?: from "([^"]+)")?;/gm)) {
      for (const spec of m[1].split(",")) {
        const [local, exported = local] = spec.trim().replace(/^type\s+/, "").split(/\s+as\s+/);
        if (!local || /^type\s/.test(spec.trim())) continue;
        // Re-exported from elsewhere: the declaring file is the other one.
        add(exported, m[2] ? fileOf(m[2]) : file);
      }
    }
  };
  const index = readFileSync(indexPath, "utf8");
  for (const m of index.matchAll(/^export \* from "([^"]+)";/gm)) declared(fileOf(m[1]));
  for (const m of index.matchAll(/^export \{([^}]*)\} from "([^"]+)";/gm)) {
    for (const spec of m[1].split(",")) {
      const t = spec.trim();
      if (!t || t.startsWith("type ")) continue;
      const [local, exported = local] = t.split(/\s+as\s+/);
      if (local === exported) add(exported, fileOf(m[2]));
    }
  }
  for (const c of conflicts) map.delete(c);
  return map;
}

const DEEP = {
  "@ostree-ts/objstore": exportMap(join(root, "../../packages/objstore/src/index.ts")),
  "@ostree-ts/gvariant": exportMap(join(root, "../../packages/gvariant/src/index.ts")),
  // checkout's index also re-exports diff and walk, which bring objstore's traverse and prune.
  "@ostree-ts/checkout": exportMap(join(root, "../../packages/checkout/src/index.ts")),
  // deltas' index brings the generator (bsdiff, suffix arrays, rollsum), which a pull never runs;
  // fetch's brings finders and metalink, which `pull` loads only when it needs them.
  "@ostree-ts/deltas": exportMap(join(root, "../../packages/deltas/src/index.ts")),
  "@ostree-ts/fetch": exportMap(join(root, "../../packages/fetch/src/index.ts")),
};

const deepImports = {
  name: "deep-imports",
  setup(b) {
    const pkgs = Object.keys(DEEP).map((p) => p.replace(/[/]/g, "\\/")).join("|");
    const staticRe = new RegExp(`(import|export)\\s*\\{([^}]*)\\}\\s*from\\s*"(${pkgs})";`, "g");
    const dynamicRe = new RegExp(`const\\s*\\{([^}]*)\\}\\s*=\\s*await\\s+import\\("(${pkgs})"\\);`, "g");
    const split = (list, pkg) => {
      const byFile = new Map();
      const rest = [];
      for (const raw of list.split(",")) {
        const spec = raw.trim();
        if (!spec) continue;
        const name = spec.replace(/^type\s+/, "").split(/\s+as\s+|\s*:\s*/)[0];
        const file = spec.startsWith("type ") ? undefined : DEEP[pkg].get(name);
        if (file === undefined) rest.push(spec);
        else byFile.set(file, [...(byFile.get(file) ?? []), spec]);
      }
      return { byFile, rest };
    };
    b.onLoad({ filter: /\/(packages\/[^/]+\/src|apps\/cli\/src)\/.*\.ts$/ }, (args) => {
      const text = readFileSync(args.path, "utf8");
      if (!Object.keys(DEEP).some((p) => text.includes(`"${p}"`))) return undefined;
      let out = text.replace(staticRe, (_all, kw, list, pkg) => {
        const { byFile, rest } = split(list, pkg);
        const lines = [...byFile].map(([file, specs]) => `${kw} { ${specs.join(", ")} } from ${JSON.stringify(file)};`);
        // Type-only names as `import type`, which is always erased (an `import { type X }` left alone would load the index).
        const types = rest.filter((t) => t.startsWith("type ")).map((t) => t.slice(5).trim());
        const values = rest.filter((t) => !t.startsWith("type "));
        if (types.length) lines.push(`${kw} type { ${types.join(", ")} } from "${pkg}";`);
        if (values.length) lines.push(`${kw} { ${values.join(", ")} } from "${pkg}";`);
        return lines.join(" ");
      });
      // `const { A, B } = await import(PKG)` with every name from one file: import that file.
      out = out.replace(dynamicRe, (all, list, pkg) => {
        const { byFile, rest } = split(list, pkg);
        if (rest.length || byFile.size !== 1) return all;
        return `const {${list}} = await import(${JSON.stringify([...byFile.keys()][0])});`;
      });
      return { contents: out, loader: "ts", resolveDir: dirname(args.path) };
    });
  },
};

// Trims of undici's client for what the CLI sends (GET and HEAD requests, no bodies); each
// replacement must match, so a changed undici fails the build instead of bundling all again.
// - client.js requires its HTTP/2 client (and with it node:http2, tls and their internals,
//   ~3 ms) at load, though only an https connection that negotiates h2 uses it: required on
//   first use instead.
// - client-h1/h2 require web/fetch/body.js (with webidl, FormData, MIME and data: URL parsing,
//   ~93 KB that every pull read and compiled before its first request) only to send a FormData
//   body, which nothing here does.
const UNDICI_TRIMS = {
  "client.js": [["const connectH2 = require('./client-h2.js')", "const connectH2 = (...a) => require('./client-h2.js')(...a)"]],
  "client-h1.js": [["require('../web/fetch/body.js')", "{ extractBody () { throw new Error('ostree-ts: FormData request bodies are not supported') } }"]],
  "client-h2.js": [["require('../web/fetch/body.js')", "{ extractBody () { throw new Error('ostree-ts: FormData request bodies are not supported') } }"]],
};
const undiciTrims = {
  name: "undici-trims",
  setup(b) {
    b.onLoad({ filter: /[/\\]undici[/\\]lib[/\\]dispatcher[/\\]client(-h[12])?\.js$/ }, (args) => {
      let text = readFileSync(args.path, "utf8");
      for (const [from, to] of UNDICI_TRIMS[args.path.replace(/.*[/\\]/, "")]) {
        if (!text.includes(from)) throw new Error(`undici-trims: ${args.path} no longer has \`${from}\``);
        text = text.replaceAll(from, to);
      }
      return { contents: text, loader: "js", resolveDir: dirname(args.path) };
    });
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
  plugins: [lazyNative, deepImports, undiciTrims],
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
