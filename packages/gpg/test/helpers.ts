import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export { makeGnupgKey, type GnupgKey } from "@ostree-ts/interop";

export function gpgAvailable(): boolean {
  return spawnSync("gpg", ["--version"]).status === 0;
}

/** A small tree to commit. */
export function makeTree(dir: string): string {
  const tree = join(dir, "tree");
  mkdirSync(join(tree, "sub"), { recursive: true });
  writeFileSync(join(tree, "a"), "hello\n");
  writeFileSync(join(tree, "sub", "b"), "world\n");
  return tree;
}
