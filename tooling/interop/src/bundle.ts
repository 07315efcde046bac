import { build } from "esbuild";

/**
 * Bundle workspace sources as apps/cli/scripts/build.mjs does (ESM, code
 * splitting, `source` condition, a `require` for bundled CommonJS), for tests
 * of code that runs in worker threads: a worker needs a JavaScript file, which
 * the TypeScript sources under vitest are not. Writes `<name>.mjs` per entry
 * point into `outdir`; `external` modules are loaded at run time (natives).
 */
export async function bundleLikeCli(o: { entryPoints: Record<string, string>; outdir: string; external: string[] }): Promise<void> {
  await build({
    entryPoints: o.entryPoints,
    outdir: o.outdir,
    external: o.external,
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node20",
    conditions: ["source"],
    outExtension: { ".js": ".mjs" },
    // Bundled CommonJS dependencies require() Node built-ins.
    banner: { js: 'import { createRequire as __testRequire } from "node:module";\nconst require = __testRequire(import.meta.url);' },
    logLevel: "warning",
  });
}
