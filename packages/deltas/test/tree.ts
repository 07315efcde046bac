// Test helper: writes a commit into a repo from an in-memory tree, using only
// objstore's encoders (no ostree binary, no commit writer).
import { xorshiftBytes } from "@ostree-ts/interop";
import { encodeCommit, encodeDirMeta, encodeDirTree, ObjectType, compareNames, type Repo } from "@ostree-ts/objstore";

export type Tree = { [name: string]: Uint8Array | string | { link: string } | Tree };

function isDir(v: Tree[string]): v is Tree {
  return !(v instanceof Uint8Array) && typeof v !== "string" && typeof (v as { link?: unknown }).link !== "string";
}

async function writeTree(repo: Repo, tree: Tree): Promise<{ tree: string; meta: string }> {
  const files: Array<{ name: string; checksum: string }> = [];
  const dirs: Array<{ name: string; tree: string; meta: string }> = [];
  for (const name of Object.keys(tree).sort(compareNames)) {
    const v = tree[name]!;
    if (isDir(v)) {
      dirs.push({ name, ...(await writeTree(repo, v)) });
    } else if (typeof v === "object" && !(v instanceof Uint8Array)) {
      const checksum = await repo.writeContent({ uid: 0, gid: 0, mode: 0o120777, symlinkTarget: (v as { link: string }).link, xattrs: [] }, { data: new Uint8Array(0) });
      files.push({ name, checksum });
    } else {
      const data = typeof v === "string" ? new TextEncoder().encode(v) : v;
      const mode = name.endsWith(".sh") ? 0o100755 : 0o100644;
      files.push({ name, checksum: await repo.writeContent({ uid: 0, gid: 0, mode, symlinkTarget: "", xattrs: [] }, { data }) });
    }
  }
  const meta = await repo.writeMetadata(ObjectType.DirMeta, encodeDirMeta({ uid: 0, gid: 0, mode: 0o40755, xattrs: [] }));
  const t = await repo.writeMetadata(ObjectType.DirTree, encodeDirTree({ files, dirs }));
  return { tree: t, meta };
}

export async function commitTree(repo: Repo, tree: Tree, parent: string | null = null, subject = "test"): Promise<string> {
  const { tree: rootTree, meta: rootMeta } = await writeTree(repo, tree);
  const bytes = encodeCommit({ metadata: [], parent, related: [], subject, body: "", timestamp: 1600000000, rootTree, rootMeta });
  return repo.writeMetadata(ObjectType.Commit, bytes);
}

/** Deterministic pseudo-random bytes (xorshift). */
export function noise(n: number, seed = 1): Uint8Array {
  return new Uint8Array(xorshiftBytes(n, seed));
}

/** Text-like compressible bytes. */
export function text(n: number, seed = 1): Uint8Array {
  const words = ["alpha", "beta", "gamma", "delta", "kernel", "module", "ostree", "static", "part"];
  const r = noise(n, seed);
  const parts: string[] = [];
  let len = 0;
  for (let i = 0; len < n; i++) {
    const w = words[r[i % n]! % words.length]!;
    parts.push(w);
    len += w.length + 1;
  }
  return new TextEncoder().encode(parts.join(" ").slice(0, n));
}
