import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ostree } from "@ostree-ts/interop";
import { parseSummary } from "@ostree-ts/fetch";

/** An archive repo made by real ostree whose tree is one file, `f`. */
export interface OneFileRepo {
  path: string;
  /** The tree directory committed (holds `f`). */
  tree: string;
  /** The first commit (of `content`, on `ref`). */
  first: string;
  /** Rewrite `f` with `content` and commit it to `ref` (default the repo's ref); returns the commit. */
  commit(content: string, ref?: string): string;
}

/**
 * `ostree init --mode=archive` at PARENT/NAME, then `f` = `content` in
 * PARENT/NAME-tree committed to `ref` (default `main`).
 */
export function oneFileRepo(parent: string, name: string, content: string, o: { ref?: string; collectionId?: string } = {}): OneFileRepo {
  const path = join(parent, name);
  const tree = join(parent, `${name}-tree`);
  ostree(["init", `--repo=${path}`, "--mode=archive", ...(o.collectionId ? [`--collection-id=${o.collectionId}`] : [])]);
  mkdirSync(tree);
  const commit = (text: string, ref = o.ref ?? "main") => {
    writeFileSync(join(tree, "f"), text);
    return ostree(["commit", `--repo=${path}`, "-b", ref, "--no-xattrs", tree]).trim();
  };
  return { path, tree, first: commit(content), commit };
}

/** The delta names the repo's summary lists (`ostree.static-deltas`), sorted. */
export function summaryDeltas(repo: string): string[] {
  const v = parseSummary(new Uint8Array(readFileSync(join(repo, "summary")))).metadata.get("ostree.static-deltas");
  return v ? (v.value as Array<[string, unknown]>).map(([k]) => k).sort() : [];
}
