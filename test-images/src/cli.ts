import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { makeFixtureTree } from "./fixtures.js";
import { IMAGE_NAMES, buildImage, cacheDir, packageDir, pinImage } from "./images.js";
import { MANIFEST_NAME, checkTrees, readManifest, writeJsonAtomic, type Manifest } from "./manifest.js";
import { treeDigest } from "./tree.js";

const USAGE = `usage: node test-images/bin/build.mjs [command] [options] [image...]
commands:
  build (default)      build the named images (default: os-v1 os-v2 os-v3) and their -ostree forms
  --check              recompute each cached tree's digest and compare with expected-digests.json
  --update-expected    copy the cache manifest's digests into expected-digests.json
  pin                  re-resolve packages/<image>.lock from images.json and this machine's apt
  fixture DIR [--files N] [--seed S] [--large]   write a generated fixture tree
  digest DIR           print a tree's digest
options:
  --offline            never download; fail if a .deb is not cached
  --force              rebuild even if the cache already matches
  --cache DIR          cache folder (default $OSTREE_TS_IMAGES_CACHE or test-images/cache)
`;

export const EXPECTED_NAME = "expected-digests.json";

function allTreeNames(images: string[]): string[] {
  return images.flatMap((i) => [i, `${i}-ostree`]);
}

export async function main(argv: string[]): Promise<number> {
  const log = (s: string) => process.stderr.write(`${s}\n`);
  const flags = new Set(argv.filter((a) => a.startsWith("--")));
  const positional: string[] = [];
  let cache = cacheDir();
  const opt: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === "--cache" || a === "--files" || a === "--seed") {
      opt[a] = argv[++i] ?? "";
      flags.delete(a);
    } else if (!a.startsWith("--")) positional.push(a);
  }
  if (opt["--cache"]) cache = opt["--cache"];
  if (flags.has("--help")) {
    process.stdout.write(USAGE);
    return 0;
  }
  const cmd = ["pin", "fixture", "digest", "build"].includes(positional[0] ?? "") ? (positional.shift() as string) : "build";
  const expectedPath = join(packageDir(), EXPECTED_NAME);
  const manifestPath = join(cache, MANIFEST_NAME);

  if (cmd === "fixture") {
    const dir = positional[0];
    if (!dir) throw new Error("fixture needs a target directory");
    const info = makeFixtureTree(dir, { files: Number(opt["--files"] ?? 200), seed: Number(opt["--seed"] ?? 1), largeFile: flags.has("--large") });
    log(`${dir}: ${info.files.length} generated files, digest ${treeDigest(dir).digest}`);
    return 0;
  }
  if (cmd === "digest") {
    for (const d of positional) process.stdout.write(`${JSON.stringify({ tree: d, ...treeDigest(d) })}\n`);
    return 0;
  }
  const images = positional.length ? positional : [...IMAGE_NAMES];
  for (const i of images) if (!(IMAGE_NAMES as readonly string[]).includes(i)) throw new Error(`unknown image ${i} (known: ${IMAGE_NAMES.join(", ")})`);

  if (cmd === "pin") {
    for (const i of images) pinImage(i, log);
    return 0;
  }
  if (flags.has("--update-expected")) {
    const m = readManifest(manifestPath);
    const exp: Manifest = existsSync(expectedPath) ? (JSON.parse(readFileSync(expectedPath, "utf8")) as Manifest) : { version: 1, trees: {} };
    for (const n of allTreeNames(images)) {
      const e = m.trees[n];
      if (!e) throw new Error(`${n} is not in ${manifestPath}: build it first`);
      exp.trees[n] = e;
    }
    writeJsonAtomic(expectedPath, exp);
    log(`wrote ${expectedPath}`);
    return 0;
  }
  const expected = (): Manifest["trees"] =>
    existsSync(expectedPath) ? (JSON.parse(readFileSync(expectedPath, "utf8")) as Manifest).trees : readManifest(manifestPath).trees;
  if (flags.has("--check")) {
    const res = checkTrees(cache, allTreeNames(images), expected());
    for (const r of res) log(`${r.ok ? "ok  " : "FAIL"} ${r.name}${r.ok ? ` ${r.actual?.slice(0, 16)}` : `: ${r.reason}${r.expected ? ` (expected ${r.expected.slice(0, 16)}, got ${r.actual?.slice(0, 16) ?? "-"})` : ""}`}`);
    return res.every((r) => r.ok) ? 0 : 1;
  }
  for (const i of images) {
    if (!flags.has("--force")) {
      const have = readManifest(manifestPath).trees;
      const exp = expected();
      const names = allTreeNames([i]);
      if (names.every((n) => have[n] && exp[n] && have[n]?.digest === exp[n]?.digest && existsSync(join(cache, n)))) {
        log(`${i}: cached (use --force to rebuild, --check to verify)`);
        continue;
      }
    }
    await buildImage(i, { cache, offline: flags.has("--offline"), log });
  }
  if (existsSync(expectedPath)) {
    const res = checkTrees(cache, allTreeNames(images), expected());
    const bad = res.filter((r) => !r.ok);
    for (const r of bad) log(`WARNING ${r.name}: ${r.reason} (expected ${r.expected?.slice(0, 16) ?? "-"}, got ${r.actual?.slice(0, 16) ?? "-"})`);
    return bad.length ? 1 : 0;
  }
  return 0;
}
