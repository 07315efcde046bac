#!/usr/bin/env node
// Builds, checks and pins the Debian test images; see test-images/README.md.
import { join } from "node:path";
import { importTs, imagesPackageDir } from "./ts-entry.mjs";

process.env.OSTREE_TS_IMAGES_PKGDIR ??= imagesPackageDir;
const mod = await importTs(join(imagesPackageDir, "src/cli.ts"), "test-images-cli");
try {
  process.exitCode = await mod.main(process.argv.slice(2));
} catch (e) {
  process.stderr.write(`build.mjs: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 2;
}
