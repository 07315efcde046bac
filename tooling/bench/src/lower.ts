import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileSha256, walkTree, writeJsonAtomic } from "@ostree-ts/test-images";
import type { Version } from "./inputs.js";

/** Reference sizes a delta from `from` to `to` can be compared with. */
export interface LowerBounds {
  from: string;
  to: string;
  /** `xz -9` of a tar of the new tree: what shipping the whole tree costs with a strong compressor. */
  xzTar: number;
  /** `zstd --long=27 --patch-from=old.tar` of new.tar: a generic binary delta of the two tars. */
  zstdPatch?: number;
  /** Set when zstd was not installed, so zstdPatch could not be computed. */
  zstdMissing?: boolean;
  /** Uncompressed size of the new tree's file contents that do not occur anywhere in the old tree. */
  changedBytes: number;
  commands: string[];
}

export const TAR_ARGS = ["--sort=name", "--numeric-owner", "--owner=0", "--group=0", "--mtime=@0", "--format=gnu"];

function sh(cmd: string[], stdoutFile?: string): void {
  const r = spawnSync("sh", ["-c", stdoutFile ? '"$@" > "$OUT"' : '"$@"', "sh", ...cmd], {
    encoding: "utf8",
    env: { ...process.env, OUT: stdoutFile ?? "" },
    maxBuffer: 1 << 24,
  });
  if (r.status !== 0) throw new Error(`${cmd.join(" ")} exited ${r.status}: ${r.stderr}`);
}

/** Content hash → size of every regular file of a tree. */
function contentSet(tree: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const e of walkTree(tree)) if (e.type === "file") m.set(fileSha256(join(tree, e.path)), e.size);
  return m;
}

/** Bytes of new content (by hash, counted once) absent from the old tree; `from` undefined = everything. */
export function changedBytes(from: string | undefined, to: string): number {
  const old = from ? contentSet(from) : new Map<string, number>();
  let n = 0;
  for (const [h, size] of contentSet(to)) if (!old.has(h)) n += size;
  return n;
}

/**
 * Computes (or reads from `<cache>/<digests>.json`) the lower bounds for a
 * pair of trees; `from` undefined means from scratch.
 */
export function lowerBounds(from: Version | undefined, to: Version, cache: string, log: (s: string) => void): LowerBounds {
  mkdirSync(cache, { recursive: true });
  const key = join(cache, `${from?.digest.slice(0, 16) ?? "empty"}-${to.digest.slice(0, 16)}.json`);
  if (existsSync(key)) return JSON.parse(readFileSync(key, "utf8")) as LowerBounds;
  const tmp = join(cache, `tmp-${process.pid}-${from?.name ?? "empty"}-${to.name}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  const newTar = join(tmp, "new.tar");
  const oldTar = join(tmp, "old.tar");
  const commands = [`tar ${TAR_ARGS.join(" ")} -C <tree> -cf <tree>.tar .`, "xz -9 -T0 -c new.tar | wc -c"];
  sh(["tar", ...TAR_ARGS, "-C", to.tree, "-cf", newTar, "."]);
  // xz of a tree is the same whatever it is compared with: computed once per tree digest.
  const xzKey = join(cache, `xz-${to.digest.slice(0, 16)}.json`);
  let xzTar: number;
  if (existsSync(xzKey)) xzTar = (JSON.parse(readFileSync(xzKey, "utf8")) as { xzTar: number }).xzTar;
  else {
    log(`lower bounds ${from?.name ?? "empty"} → ${to.name}: xz -9 of the new tar`);
    sh(["xz", "-9", "-T0", "-c", newTar], join(tmp, "new.tar.xz"));
    xzTar = statSync(join(tmp, "new.tar.xz")).size;
    writeJsonAtomic(xzKey, { xzTar });
  }
  const res: LowerBounds = { from: from?.name ?? "empty", to: to.name, xzTar, changedBytes: 0, commands };
  if (from && spawnSync("zstd", ["--version"]).status !== 0) {
    res.zstdMissing = true;
    log("zstd is not installed (Debian package zstd): no --patch-from bound");
  } else if (from) {
    log(`lower bounds ${from.name} → ${to.name}: zstd --patch-from`);
    sh(["tar", ...TAR_ARGS, "-C", from.tree, "-cf", oldTar, "."]);
    sh(["zstd", "-q", "-19", "-T0", "--long=27", `--patch-from=${oldTar}`, newTar, "-f", "-o", join(tmp, "patch.zst")]);
    res.zstdPatch = statSync(join(tmp, "patch.zst")).size;
    commands.push("zstd -19 -T0 --long=27 --patch-from=old.tar new.tar -o patch.zst");
  }
  res.changedBytes = changedBytes(from?.tree, to.tree);
  commands.push("changed bytes: sum of sizes of new files whose SHA-256 is not among the old tree's files");
  rmSync(tmp, { recursive: true, force: true });
  writeJsonAtomic(key, res);
  return res;
}
