// Bundles bench/generate.ts with the repo's esbuild (workspace packages from src/) and runs it.
import { build } from "esbuild";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = fileURLToPath(new URL("../../..", import.meta.url));
// Inside objstore's node_modules so its native dependencies (kept external) resolve.
const outfile = `${root}/packages/objstore/node_modules/.cache/ostree-ts/deltas-bench.mjs`;
await build({
  entryPoints: [fileURLToPath(new URL("./generate.ts", import.meta.url))],
  outfile,
  bundle: true,
  platform: "node",
  target: "node20",
  format: "esm",
  conditions: ["source"],
  external: ["@napi-rs/xattr", "fs-ext"],
  logLevel: "error",
  // CommonJS dependencies bundled into ESM call require() for Node built-ins.
  banner: { js: 'import { createRequire as __cr } from "node:module";\nconst require = __cr(import.meta.url);' },
});
await import(pathToFileURL(outfile).href);
