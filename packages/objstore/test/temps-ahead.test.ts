/**
 * Temp files created ahead on the threadpool (Repo.createTempsAhead): writes
 * that take one store the same objects as writes that create their own, none
 * is left in tmp/ after releaseTemps, and one made outside a transaction is
 * not used inside it.
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { tempDir } from "@ostree-ts/interop";
import { fsck, ObjectType, Repo, type FileMeta, type RepoMode } from "../src/index.js";

const tmp = tempDir("temps-ahead-");
afterAll(() => tmp.cleanup());

/** Waits (bounded) for the threadpool's creates and removals to show in tmp/ and be handed over. */
async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !done(); i++) await new Promise((r) => setTimeout(r, 2));
  await new Promise((r) => setTimeout(r, 5));
}
const tmpObjects = (repo: Repo, dir = repo.tmpDir) => readdirSync(dir).filter((n) => n.startsWith("tmpobject-"));
const file = (mode = 0o100644): FileMeta => ({ uid: 0, gid: 0, mode, symlinkTarget: "", xattrs: [] });

describe("temp files created ahead", () => {
  for (const mode of ["bare-user", "bare-user-only", "archive"] as RepoMode[]) {
    it(`${mode}: objects written through them are stored as usual; the rest are removed`, async () => {
      const ahead = await Repo.init(join(tmp.path, `ahead-${mode}`), { mode });
      const plain = await Repo.init(join(tmp.path, `plain-${mode}`), { mode });
      ahead.createTempsAhead(3);
      await until(() => tmpObjects(ahead).length === 3);
      expect(tmpObjects(ahead)).toHaveLength(3);
      const objects: Array<[FileMeta, Uint8Array]> = [
        [file(), new TextEncoder().encode("one\n")],
        [file(0o100755), new Uint8Array(5000).fill(7)],
        [{ ...file(0o120777), symlinkTarget: "one" }, new Uint8Array(0)],
      ];
      for (const [meta, data] of objects) {
        const a = await ahead.writeContent(meta, { data });
        expect(a).toBe(await plain.writeContent(meta, { data }));
      }
      const dirtree = new Uint8Array([0, 0]);
      expect(await ahead.writeMetadata(ObjectType.DirTree, dirtree)).toBe(await plain.writeMetadata(ObjectType.DirTree, dirtree));
      expect(ahead.writeStats).toEqual(plain.writeStats);
      for (const [meta, data] of objects.slice(0, 2)) {
        const c = await ahead.writeContent(meta, { data });
        expect((await ahead.readContentBytes(c)).data).toEqual(data);
        expect((await ahead.openContent(c)).meta.mode).toBe((await plain.openContent(c)).meta.mode);
      }
      ahead.releaseTemps();
      await until(() => tmpObjects(ahead).length === 0);
      expect(tmpObjects(ahead)).toEqual([]);
      await fsck(ahead, { quiet: true });
    });
  }

  it("a temp made before a transaction began is not used in it", async () => {
    const repo = await Repo.init(join(tmp.path, "txn"), { mode: "bare-user" });
    repo.createTempsAhead(2);
    await until(() => tmpObjects(repo).length === 2);
    expect(tmpObjects(repo)).toHaveLength(2);
    await repo.prepareTransaction({ fsync: true });
    const staging = readdirSync(repo.tmpDir).find((n) => n.startsWith("staging-"))!;
    const c = await repo.writeContent(file(), { data: new TextEncoder().encode("staged\n") });
    // Written in the staging dir, renamed into objects/ at commit; tmp/'s temps were dropped.
    await until(() => tmpObjects(repo).length === 0);
    expect(tmpObjects(repo)).toEqual([]);
    expect(tmpObjects(repo, join(repo.tmpDir, staging))).toEqual([]);
    await repo.commitTransaction();
    expect(await repo.hasObject(c, ObjectType.File)).toBe(true);
    await fsck(repo, { quiet: true });
  });
});
