// Builds the optional checkout addon (native/checkout_native.c) with node-gyp
// at install. Without a compiler, or when the build fails, checkouts use the
// JavaScript walk alone, so this never fails the install.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const dir = dirname(fileURLToPath(import.meta.url));

/** node-gyp: the one the package manager names, else on PATH, else the copy npm ships next to this Node. */
function nodeGyp() {
  const named = process.env.npm_config_node_gyp;
  if (named && existsSync(named)) return [process.execPath, named];
  const onPath = spawnSync("node-gyp", ["--version"], { stdio: "ignore" });
  if (onPath.status === 0) return ["node-gyp"];
  const npms = join(dirname(process.execPath), "../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js");
  return existsSync(npms) ? [process.execPath, npms] : undefined;
}

const gyp = nodeGyp();
// This Node's own headers when it has them: node-gyp would otherwise download them.
const prefix = join(dirname(process.execPath), "..");
const nodedir = existsSync(join(prefix, "include/node/node_api.h")) ? [`--nodedir=${prefix}`] : [];
const r = gyp && spawnSync(gyp[0], [...gyp.slice(1), "rebuild", `--directory=${dir}`, ...nodedir], { stdio: ["ignore", "ignore", "pipe"], encoding: "utf8" });
if (!r || r.status !== 0) {
  const why = !gyp ? "node-gyp not found" : (r.stderr || r.error?.message || "").trim().split("\n").slice(-3).join(" | ");
  process.stderr.write(`@ostree-ts/checkout: the native addon was not built (${why}); checkouts use the JavaScript walk only\n`);
}
