// Bundle the CLI into one ESM file. Workspace packages resolve to their
// TypeScript sources (the "source" condition); native modules stay external
// and are loaded lazily through createRequire so `--version` never pays for them.
import { build } from "esbuild";
import { chmodSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const NATIVE = ["@napi-rs/xattr"];

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

await build({
  entryPoints: [`${root}/src/main.ts`],
  outfile: `${root}/dist/ostree-ts.mjs`,
  bundle: true,
  platform: "node",
  target: "node20",
  format: "esm",
  conditions: ["source"],
  // CommonJS dependencies bundled into ESM call require() for Node built-ins.
  banner: { js: '#!/usr/bin/env node\nimport { createRequire as __ostreeTsCreateRequire } from "node:module";\nconst require = __ostreeTsCreateRequire(import.meta.url);' },
  plugins: [lazyNative],
  sourcemap: false,
  legalComments: "none",
  logLevel: "warning",
});
chmodSync(`${root}/dist/ostree-ts.mjs`, 0o755);
