import { FsckError } from "./errors.js";
import type { Commit } from "./metadata.js";

/** The binding check ostree runs for `--verify-bindings` (message text as ostree's). */
export function verifyBindings(collectionId: string | null, refName: string | null, commit: Commit): void {
  const refsV = commit.metadata.find(([k]) => k === "ostree.ref-binding")?.[1];
  if (!refsV || refsV.type !== "as") {
    if (collectionId === null) return;
    throw new FsckError("Expected commit metadata to have ref binding information, found none");
  }
  const refs = refsV.value as string[];
  if (refName !== null && !refs.includes(refName)) {
    const list = refs.length ? refs.map((r) => `‘${r}’`).join(", ") : "no refs";
    throw new FsckError(`Commit has no requested ref ‘${refName}’ in ref binding metadata (${list})`);
  }
  if (collectionId !== null) {
    const c = commit.metadata.find(([k]) => k === "ostree.collection-binding")?.[1];
    if (!c || c.type !== "s") throw new FsckError("Expected commit metadata to have collection ID binding information, found none");
    if (c.value !== collectionId) {
      throw new FsckError(
        `Commit has collection ID ‘${c.value as string}’ in collection binding metadata, while the remote it came from has collection ID ‘${collectionId}’`,
      );
    }
  }
}
