import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir } from "@ostree-ts/interop";
import { CorruptObjectError, ObjectNotFoundError, ObjectType, Repo } from "@ostree-ts/objstore";
import { readContentInfo, readPayload } from "../src/read-payload.js";
import { noise, text } from "./tree.js";

const meta = (mode: number, symlinkTarget = "") => ({ uid: 0, gid: 0, mode, symlinkTarget, xattrs: [] });

describe("readPayload", () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeAll(() => {
    tmp = tempDir("deltas-read-");
  });
  afterAll(() => tmp.cleanup());

  for (const mode of ["archive", "bare-user"] as const) {
    it(`returns what readContentBytes returns (${mode}: empty, tiny, large, symlink)`, async () => {
      const repo = await Repo.init(join(tmp.path, mode), { mode });
      const payloads = [new Uint8Array(0), Uint8Array.of(1, 2, 3), text(70_000, 3), noise(3 << 20, 5)];
      for (const data of payloads) {
        const c = await repo.writeContent(meta(0o100644), { data });
        const got = await readPayload(repo, c);
        expect(Buffer.from(got).equals(Buffer.from((await repo.readContentBytes(c)).data))).toBe(true);
        // Large payloads come back as one exact buffer, transferable without a copy.
        if (data.length >= 4096) expect([got.byteOffset, got.buffer.byteLength]).toEqual([0, data.length]);
      }
      const link = await repo.writeContent(meta(0o120777, "target"), { data: new Uint8Array(0) });
      expect((await readPayload(repo, link)).length).toBe(0);
    });
  }

  for (const mode of ["archive", "bare-user"] as const) {
    it(`readContentInfo returns openContent's metadata and size (${mode}: file, symlink, header past the first read)`, async () => {
      const repo = await Repo.init(join(tmp.path, `info-${mode}`), { mode });
      const big = { uid: 0, gid: 0, mode: 0o100640, symlinkTarget: "", xattrs: [["user.big", noise(3000, 9)] as const] };
      const objects = [
        await repo.writeContent(meta(0o100755), { data: text(1234, 4) }),
        await repo.writeContent(meta(0o120777, "some/target"), { data: new Uint8Array(0) }),
        await repo.writeContent(big, { data: text(99, 5) }),
      ];
      for (const c of objects) {
        const o = await repo.openContent(c);
        expect(await readContentInfo(repo, c)).toEqual({ meta: o.meta, size: o.size });
      }
      await expect(readContentInfo(repo, "11".repeat(32))).rejects.toThrow(ObjectNotFoundError);
    });
  }

  it("refuses an archive object whose payload does not have its declared size, and a missing one", async () => {
    const repo = await Repo.init(join(tmp.path, "corrupt"), { mode: "archive" });
    const a = await repo.writeContent(meta(0o100644), { data: text(5000, 1) });
    const b = await repo.writeContent(meta(0o100644), { data: text(9000, 2) });
    // b's header (size 9000) with a's 5000-byte deflate stream.
    const rawA = readFileSync(repo.objectPath(a, ObjectType.File));
    const rawB = readFileSync(repo.objectPath(b, ObjectType.File));
    const offA = 8 + rawA.readUInt32BE(0);
    const offB = 8 + rawB.readUInt32BE(0);
    writeFileSync(repo.objectPath(b, ObjectType.File), Buffer.concat([rawB.subarray(0, offB), rawA.subarray(offA)]));
    await expect(readPayload(repo, b)).rejects.toThrow(CorruptObjectError);
    await expect(readPayload(repo, "00".repeat(32))).rejects.toThrow(ObjectNotFoundError);
  });
});
