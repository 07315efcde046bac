// Bundle the server into one ESM file; workspace packages resolve to their
// sources, native modules (xattrs, fcntl locks) stay external.
import { build } from "esbuild";
import { chmodSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
await build({
  entryPoints: [`${root}/src/main.ts`],
  outfile: `${root}/dist/ostree-ts-server.mjs`,
  bundle: true,
  platform: "node",
  target: "node20",
  format: "esm",
  conditions: ["source"],
  external: ["@napi-rs/xattr", "fs-ext"],
  banner: { js: '#!/usr/bin/env node\nimport { createRequire as __srvCreateRequire } from "node:module";\nconst require = __srvCreateRequire(import.meta.url);' },
  legalComments: "none",
  logLevel: "warning",
});
chmodSync(`${root}/dist/ostree-ts-server.mjs`, 0o755);
