#!/usr/bin/env node
// `pnpm bench`: ostree-ts vs ostree side by side; see tooling/bench/README.md.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { importTs, imagesPackageDir } from "../../test-images/bin/ts-entry.mjs";

const here = dirname(fileURLToPath(import.meta.url));
process.env.OSTREE_TS_IMAGES_PKGDIR ??= imagesPackageDir;
const mod = await importTs(join(here, "src/cli.ts"), "bench-cli");
try {
  process.exitCode = await mod.main(process.argv.slice(2), join(here, "../.."));
} catch (e) {
  process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 2;
}
