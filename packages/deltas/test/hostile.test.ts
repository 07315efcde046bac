// Hostile and corrupted deltas: every failure is a DeltaError with a message
// naming what was wrong, and nothing that hashes wrongly is ever stored.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir } from "@ostree-ts/interop";
import { fsckObject, ObjectType, Repo } from "@ostree-ts/objstore";
import {
  applyPart,
  compress,
  decodeSuperblock,
  DeltaError,
  DeltaFormatError,
  encodePartPayload,
  generateDelta,
  loadDelta,
  OpWriter,
  partFileBytes,
  sha256Hex,
  writeOfft,
  type PartPayload,
  type Superblock,
} from "../src/index.js";
import { commitTree, noise, text } from "./tree.js";

async function objectCount(repo: Repo): Promise<number> {
  let n = 0;
  for await (const _ of repo.listObjects()) n++;
  return n;
}

describe("hostile parts and superblocks", () => {
  let tmp: ReturnType<typeof tempDir>;
  let src: Repo;
  let c1: string;
  let sb: Superblock;
  let part: Uint8Array;
  let fileA: { checksum: string; data: Uint8Array };
  let n = 0;
  const fresh = async () => Repo.init(join(tmp.path, `dst${n++}`), { mode: "bare-user" });

  beforeAll(async () => {
    tmp = tempDir("deltas-hostile-");
    src = await Repo.init(join(tmp.path, "src"), { mode: "archive" });
    c1 = await commitTree(src, { a: text(5000, 1), b: noise(3000, 2), c: { link: "a" }, d: { e: text(100, 3) } });
    const file = join(tmp.path, "sb");
    await generateDelta(src, { from: null, to: c1, filename: file, compression: "none" });
    const d = await loadDelta(file);
    sb = d.superblock;
    part = new Uint8Array(readFileSync(join(tmp.path, "0")));
    const data = text(5000, 1);
    const a = (await src.readDirTree((await src.readCommit(c1)).rootTree)).files.find((f) => f.name === "a")!;
    fileA = { checksum: a.checksum, data };
  });
  afterAll(() => tmp.cleanup());

  /** A one-part superblock around a crafted payload (header checksum correct). */
  const craft = (payload: PartPayload, objects: Superblock["parts"][0]["objects"], usize = 1 << 16) => {
    const bytes = partFileBytes("none", encodePartPayload(payload));
    const s: Superblock = { ...sb, parts: [{ version: 0, checksum: sha256Hex(bytes), size: bytes.length, usize, objects }] };
    return { s, bytes };
  };
  const fileObj = () => [{ type: ObjectType.File, checksum: fileA.checksum }];
  const mode = [{ uid: 0, gid: 0, mode: 0o100644 }];

  it("the untouched delta applies", async () => {
    const dst = await fresh();
    const r = await applyPart(dst, sb, 0, part);
    expect(r.objectsWritten).toBe(sb.parts[0]!.objects.length);
  });

  it("rejects a part whose checksum does not match, writing nothing", async () => {
    const dst = await fresh();
    const bad = new Uint8Array(part);
    bad[bad.length - 1]! ^= 1;
    await expect(applyPart(dst, sb, 0, bad)).rejects.toThrow(/Checksum mismatch in static delta part; expected=/);
    await expect(applyPart(dst, sb, 0, part.subarray(0, 100))).rejects.toThrow(/part file is 100 bytes, superblock says/);
    expect(await objectCount(dst)).toBe(0);
  });

  it("rejects malformed programs before writing anything", async () => {
    const ops = (f: (w: OpWriter) => void) => {
      const w = new OpWriter();
      f(w);
      return w.finish();
    };
    const blob = fileA.data;
    const cases: Array<[string, PartPayload, RegExp]> = [
      ["unknown opcode", { modes: mode, xattrs: [[]], blob, ops: Uint8Array.of(0xff) }, /Unknown opcode 255 at offset 0/],
      ["truncated varint", { modes: mode, xattrs: [[]], blob, ops: Uint8Array.of(0x53, 0, 0, 0x88) }, /truncated varint/],
      ["splice past blob", { modes: mode, xattrs: [[]], blob, ops: ops((w) => w.op(0x53, 0, 0, blob.length, 1)) }, /outside the 5000-byte payload blob/],
      ["mode index", { modes: mode, xattrs: [[]], blob, ops: ops((w) => w.op(0x53, 5, 0, 10, 0)) }, /mode index 5 out of range/],
      ["xattr index", { modes: mode, xattrs: [[]], blob, ops: ops((w) => w.op(0x53, 0, 3, 10, 0)) }, /xattr index 3 out of range/],
      ["open too large", { modes: mode, xattrs: [[]], blob, ops: ops((w) => w.op(0x6f, 0, 0, 1e12)) }, /exceeds the part's declared usize/],
      ["write overrun", { modes: mode, xattrs: [[]], blob, ops: ops((w) => (w.op(0x6f, 0, 0, 10), w.op(0x77, 11, 0))) }, /overruns object size 10/],
      ["unclosed", { modes: mode, xattrs: [[]], blob, ops: ops((w) => (w.op(0x6f, 0, 0, 10), w.op(0x77, 10, 0))) }, /still open/],
      ["bspatch without source", { modes: mode, xattrs: [[]], blob, ops: ops((w) => (w.op(0x6f, 0, 0, 10), w.op(0x42, 0, 10))) }, /no read source set/],
      ["read source past blob", { modes: mode, xattrs: [[]], blob, ops: ops((w) => w.op(0x72, blob.length - 10)) }, /read source checksum/],
      ["too few objects", { modes: mode, xattrs: [[]], blob, ops: new Uint8Array(0) }, /writes 0 objects, the part lists 1/],
      ["S for missing object", { modes: mode, xattrs: [[]], blob, ops: ops((w) => (w.op(0x53, 0, 0, 5000, 0), w.op(0x53, 0, 0, 1, 0))) }, /writes object #1, but the part lists 1/],
      ["directory mode", { modes: [{ uid: 0, gid: 0, mode: 0o40755 }], xattrs: [[]], blob, ops: ops((w) => w.op(0x53, 0, 0, 10, 0)) }, /neither a regular file nor a symlink/],
    ];
    for (const [name, payload, re] of cases) {
      const dst = await fresh();
      const { s, bytes } = craft(payload, fileObj());
      const err = await applyPart(dst, s, 0, bytes).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err, name).toBeInstanceOf(DeltaFormatError);
      expect((err as Error).message, name).toMatch(re);
      expect(await objectCount(dst), name).toBe(0);
    }
  });

  it("refuses an object whose bytes hash differently from the part's object list", async () => {
    const dst = await fresh();
    const blob = new Uint8Array(fileA.data);
    blob[0]! ^= 1;
    const w = new OpWriter();
    w.op(0x53, 0, 0, blob.length, 0);
    const { s, bytes } = craft({ modes: mode, xattrs: [[]], blob, ops: w.finish() }, fileObj());
    await expect(applyPart(dst, s, 0, bytes)).rejects.toThrow(new RegExp(`${fileA.checksum}.*hashes to`));
    expect(await objectCount(dst)).toBe(0);
  });

  it("bsdiff controls pointing outside the old file are rejected", async () => {
    const dst = await fresh();
    const { meta, data } = await src.readContentBytes(fileA.checksum);
    await dst.writeContent(meta, { data }, fileA.checksum);
    // Target = an object the part claims; the patch reads old[4990, 5090).
    const patch = new Uint8Array(24 + 100);
    writeOfft(patch, 0, 100);
    writeOfft(patch, 8, 0);
    writeOfft(patch, 16, 0);
    const csum = Buffer.from(fileA.checksum, "hex");
    const seekFirst = new Uint8Array(24);
    writeOfft(seekFirst, 16, 4990);
    const zero = new Uint8Array(24);
    writeOfft(zero, 8, 0);
    const blob = new Uint8Array([...csum, ...seekFirst, ...patch]);
    const w = new OpWriter();
    w.op(0x72, 0);
    w.op(0x6f, 0, 0, 100);
    w.op(0x42, 32, blob.length - 32);
    w.op(0x63);
    const target = "00".repeat(32);
    const { s, bytes } = craft({ modes: mode, xattrs: [[]], blob, ops: w.finish() }, [{ type: ObjectType.File, checksum: target }]);
    await expect(applyPart(dst, s, 0, bytes)).rejects.toThrow(/bsdiff patch for object 0{64}: control #1 .*outside old size 5000/);
    expect(await objectCount(dst)).toBe(1);
  });

  it("a read source that is a symlink object or missing is refused (bare-user and bare-user-only)", async () => {
    for (const repoMode of ["bare-user", "bare-user-only"] as const) {
      const dst = await Repo.init(join(tmp.path, `dst${n++}`), { mode: repoMode });
      const link = await dst.writeContent({ uid: 0, gid: 0, mode: 0o120777, symlinkTarget: "target", xattrs: [] }, { data: new Uint8Array(0) });
      const readFrom = (source: string) => {
        const patch = new Uint8Array(24 + 10);
        writeOfft(patch, 0, 10);
        const w = new OpWriter();
        w.op(0x72, 0);
        w.op(0x6f, 0, 0, 10);
        w.op(0x42, 32, patch.length);
        w.op(0x63);
        return craft({ modes: mode, xattrs: [[]], blob: new Uint8Array([...Buffer.from(source, "hex"), ...patch]), ops: w.finish() }, [{ type: ObjectType.File, checksum: "00".repeat(32) }]);
      };
      const sym = readFrom(link);
      await expect(applyPart(dst, sym.s, 0, sym.bytes), repoMode).rejects.toThrow(new RegExp(`read source ${link} is not a regular file`));
      const missing = readFrom("ab".repeat(32));
      await expect(applyPart(dst, missing.s, 0, missing.bytes), repoMode).rejects.toThrow(new RegExp(`read source ${"ab".repeat(32)}: `));
      expect(await objectCount(dst), repoMode).toBe(1);
    }
  });

  it("an xz bomb is cut off at the part's declared size", async () => {
    const dst = await fresh();
    const huge = new Uint8Array(64 << 20);
    const bytes = partFileBytes("xz", await compress(huge, "xz"));
    const s: Superblock = { ...sb, parts: [{ version: 0, checksum: sha256Hex(bytes), size: bytes.length, usize: 1000, objects: fileObj() }] };
    await expect(applyPart(dst, s, 0, bytes)).rejects.toThrow(/decompresses past the declared maximum of \d+ bytes/);
    expect(await objectCount(dst)).toBe(0);
  });

  it("xz parts, read from xz's output file a range at a time: applied, and broken framing or tables refused", async () => {
    const payload = part.subarray(1);
    const xzPart = async (p: Uint8Array) => {
      const bytes = partFileBytes("xz", await compress(p, "xz"));
      return { s: { ...sb, parts: [{ ...sb.parts[0]!, checksum: sha256Hex(bytes), size: bytes.length }] } as Superblock, bytes };
    };
    const good = await xzPart(payload);
    const dst = await fresh();
    expect((await applyPart(dst, good.s, 0, good.bytes, { decoder: "xz" })).objectsWritten).toBe(sb.parts[0]!.objects.length);
    for (const o of sb.parts[0]!.objects) await fsckObject(dst, o.checksum, o.type as ObjectType);
    // The tuple's last framing offset (where the modes end) past the others; then modes cut mid-entry.
    const w = payload.length <= 0xff ? 1 : payload.length <= 0xffff ? 2 : 4;
    const framing = new Uint8Array(payload);
    framing.fill(0xff, framing.length - w);
    const tables = new Uint8Array(payload);
    const modesEnd = Buffer.from(payload.buffer, payload.byteOffset + payload.length - w, w).readUIntLE(0, w);
    Buffer.from(tables.buffer, tables.byteOffset + tables.length - w, w).writeUIntLE(modesEnd - 1, 0, w);
    for (const [bad, re] of [
      [framing, /invalid payload: bad framing/],
      [tables, /invalid payload/],
    ] as const) {
      const d = await fresh();
      const { s, bytes } = await xzPart(bad);
      await expect(applyPart(d, s, 0, bytes, { decoder: "xz" })).rejects.toThrow(re);
      expect(await objectCount(d)).toBe(0);
    }
  });

  it("too-new part versions and unknown compression bytes are refused", async () => {
    const dst = await fresh();
    await expect(applyPart(dst, { ...sb, parts: [{ ...sb.parts[0]!, version: 1 }] }, 0, part)).rejects.toThrow(/too new version 1/);
    const bad = new Uint8Array(part);
    bad[0] = 0x7a;
    await expect(applyPart(dst, sb, 0, bad, { skipChecksum: true })).rejects.toThrow(/Invalid compression type/);
  });

  it("random corruption of parts (checksum skipped) never stores a bad object", async () => {
    const dst = await fresh();
    let rnd = 12345;
    const next = () => (rnd = (rnd * 1103515245 + 12345) & 0x7fffffff);
    let failures = 0;
    let stored = 0;
    for (let i = 0; i < 300; i++) {
      const bad = new Uint8Array(part);
      const flips = 1 + (next() % 4);
      for (let j = 0; j < flips; j++) bad[1 + (next() % (bad.length - 1))] = next() & 0xff;
      const cut = next() % 5 === 0 ? bad.subarray(0, 1 + (next() % bad.length)) : bad;
      try {
        await applyPart(dst, sb, 0, cut, { skipChecksum: true });
      } catch (e) {
        expect(e).toBeInstanceOf(DeltaError);
        failures++;
      }
      // Whatever was stored must verify; then start over so the next iteration writes again.
      for await (const o of dst.listObjects()) {
        await fsckObject(dst, o.checksum, o.type);
        stored++;
        await dst.deleteObject(o.checksum, o.type);
      }
    }
    expect(failures).toBeGreaterThan(200);
    expect(stored).toBeGreaterThan(0);
  });

  it("random corruption of superblocks is a DeltaFormatError or decodes", () => {
    const bytes = new Uint8Array(readFileSync(join(tmp.path, "sb")));
    let rnd = 777;
    const next = () => (rnd = (rnd * 1103515245 + 12345) & 0x7fffffff);
    for (let i = 0; i < 500; i++) {
      const bad = new Uint8Array(bytes);
      bad[next() % bad.length] = next() & 0xff;
      const cut = next() % 4 === 0 ? bad.subarray(0, next() % bad.length) : bad;
      try {
        decodeSuperblock(cut);
      } catch (e) {
        expect(e).toBeInstanceOf(DeltaFormatError);
      }
    }
  });
});
