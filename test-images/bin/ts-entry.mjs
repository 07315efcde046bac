// Runs a TypeScript entry point of this monorepo without a build step: esbuild
// (pinned in the root package.json) bundles it, resolving workspace packages
// to their src/ through the "source" export condition, into node_modules/.cache.
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export async function importTs(entry, name) {
  const { build } = await import("esbuild");
  const res = await build({
    entryPoints: [entry],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    conditions: ["source"],
    packages: "bundle",
    write: false,
    logLevel: "error",
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  });
  const dir = join(fileURLToPath(new URL("..", import.meta.url)), "node_modules", ".cache", "ostree-ts");
  mkdirSync(dir, { recursive: true });
  const out = join(dir, `${name}.mjs`);
  writeFileSync(`${out}.${process.pid}`, res.outputFiles[0].contents);
  renameSync(`${out}.${process.pid}`, out);
  return import(pathToFileURL(out).href);
}

export const imagesPackageDir = dirname(dirname(fileURLToPath(import.meta.url)));
