import { decode, print, type Value } from "@ostree-ts/gvariant";
import { resolveRev, formatSize, COMMITMETA_TYPE, decodeCommit, DIRMETA_TYPE, DIRTREE_TYPE, ObjectType, xattrsToValue, type Repo } from "@ostree-ts/objstore";
import { readFileSync } from "node:fs";
import { CliError, JSON_OPTION, UsageError, type CommandModule, type Invocation } from "../command.js";
import { commitJson, dumpCommit, dumpVariantBytes, COMMIT_TYPE } from "../dump.js";

const CHECKSUM = /^[0-9a-f]{64}$/;
const TYPES: Array<[ObjectType, string, string]> = [
  [ObjectType.Commit, "commit", COMMIT_TYPE],
  [ObjectType.DirMeta, "dirmeta", DIRMETA_TYPE],
  [ObjectType.DirTree, "dirtree", DIRTREE_TYPE],
];

function readVarint(b: Uint8Array, pos: { p: number }): number {
  let v = 0;
  let shift = 0;
  for (;;) {
    if (pos.p >= b.length) throw new CliError("Unexpected EOF reading varint");
    const c = b[pos.p++]!;
    v += (c & 0x7f) * 2 ** shift;
    if (!(c & 0x80)) return v;
    shift += 7;
  }
}

async function printMetadataKey(inv: Invocation, repo: Repo, csum: string, detached: boolean, key: string): Promise<void> {
  let bytes: Uint8Array;
  let type: string;
  if (!detached) {
    bytes = await repo.loadMetadataBytes(ObjectType.Commit, csum);
    type = COMMIT_TYPE;
  } else {
    const meta = await repo.readCommitMeta(csum);
    if (meta === null) throw new CliError(`No detached metadata for commit ${csum}`);
    bytes = await repo.loadMetadataBytes(ObjectType.CommitMeta, csum);
    type = COMMITMETA_TYPE;
  }
  const swapped = !inv.opts["no-byteswap"];
  const value = decode(type, bytes, { byteOrder: swapped ? "be" : "le", strict: false }) as Value[];
  const dict = (detached ? value : value[0]) as Value[][];
  const entry = dict.find((e) => e[0] === key);
  if (!entry) throw new CliError(`No such metadata key '${key}'`);
  const v = entry[1] as { type: string; value: Value };
  inv.out.print(inv.opts.json ? `${JSON.stringify({ key, type: v.type, value: print(v.type, v.value, false) })}\n` : `${print(v.type, v.value, true)}\n`);
}

async function printSizes(inv: Invocation, repo: Repo, csum: string): Promise<void> {
  let commit;
  try {
    commit = await repo.readCommit(csum);
  } catch (e) {
    throw new CliError(`Failed to read commit: ${(e as Error).message}`);
  }
  const sizes = commit.metadata.find(([k]) => k === "ostree.sizes")?.[1];
  if (!sizes) throw new CliError("No metadata key ostree.sizes in commit");
  let archived = 0, unpacked = 0, objects = 0, newArchived = 0, newUnpacked = 0, newObjects = 0;
  for (const entry of sizes.value as Uint8Array[]) {
    if (entry.length < 32) throw new CliError("Invalid object size metadata");
    const pos = { p: 32 };
    const a = readVarint(entry, pos);
    const u = readVarint(entry, pos);
    const type = pos.p < entry.length ? (entry[pos.p] as ObjectType) : ObjectType.File;
    const csumHex = Buffer.from(entry.subarray(0, 32)).toString("hex");
    archived += a;
    unpacked += u;
    objects++;
    if (!(await repo.hasObject(csumHex, type))) {
      newArchived += a;
      newUnpacked += u;
      newObjects++;
    }
  }
  inv.out.print(
    `Compressed size (needed/total): ${formatSize(newArchived)}/${formatSize(archived)}\n` +
      `Unpacked size (needed/total): ${formatSize(newUnpacked)}/${formatSize(unpacked)}\n` +
      `Number of objects (needed/total): ${newObjects}/${objects}\n`,
  );
}

async function printObject(inv: Invocation, repo: Repo, type: ObjectType, name: string, gvType: string, csum: string): Promise<void> {
  const bytes = await repo.loadMetadataBytes(type, csum);
  if (inv.opts.json && type === ObjectType.Commit) {
    inv.out.print(`${JSON.stringify(commitJson(csum, decodeCommit(bytes, csum)))}\n`);
    return;
  }
  inv.out.print(`${name} ${csum}\n`);
  if (inv.opts["no-byteswap"]) inv.out.print(`${print(gvType, decode(gvType, bytes, { strict: false }), true)}\n`);
  else if (inv.opts.raw) {
    inv.out.print(dumpVariantBytes(gvType, bytes));
    return;
  }
  if (type !== ObjectType.Commit) return;
  inv.out.print(dumpCommit(csum, decodeCommit(bytes, csum)).slice(`commit ${csum}\n`.length));
  // As ot-builtin-show.c: the commit's GPG signatures, checked against the remote's (or every) keyring.
  const gpg = await import("@ostree-ts/gpg");
  const result = await gpg.verifyCommitForShow(repo, csum, {
    remote: inv.opts["gpg-verify-remote"] as string | undefined,
    keyringDir: inv.opts["gpg-homedir"] as string | undefined,
  });
  if (result) inv.out.print(gpg.formatShowSignatures(result));
}

const show: CommandModule = {
  parameterString: "OBJECT",
  options: [
    { long: "print-related", arg: "none", description: 'Show the "related" commits' },
    { long: "print-variant-type", arg: "string", description: "Memory map OBJECT (in this case a filename) to the GVariant type string", argDescription: "TYPE" },
    { long: "print-metadata-key", arg: "string", description: "Print string value of metadata key", argDescription: "KEY" },
    { long: "print-detached-metadata-key", arg: "string", description: "Print string value of detached metadata key", argDescription: "KEY" },
    { long: "print-sizes", arg: "none", description: "Show the commit size metadata" },
    { long: "raw", arg: "none", description: "Show raw variant data" },
    { long: "no-byteswap", short: "B", arg: "none", description: "Do not automatically convert variant data from big endian" },
    { long: "gpg-homedir", arg: "filename", description: "GPG Homedir to use when looking for keyrings", argDescription: "HOMEDIR" },
    { long: "gpg-verify-remote", arg: "string", description: "Use REMOTE name for GPG configuration", argDescription: "REMOTE" },
    JSON_OPTION,
  ],
  async run(inv) {
    const repo = inv.repo as Repo;
    if (inv.args.length < 1) throw new UsageError("An object argument is required");
    const rev = inv.args[0]!;
    const o = inv.opts;
    if (o["print-metadata-key"] !== undefined || o["print-detached-metadata-key"] !== undefined) {
      const detached = o["print-detached-metadata-key"] !== undefined;
      const csum = (await resolveRev(repo, rev))!;
      await printMetadataKey(inv, repo, csum, detached, (detached ? o["print-detached-metadata-key"] : o["print-metadata-key"]) as string);
    } else if (o["print-related"]) {
      const csum = (await resolveRev(repo, rev))!;
      for (const [name, c] of (await repo.readCommit(csum)).related) inv.out.print(`${name} ${c}\n`);
    } else if (o["print-variant-type"] !== undefined) {
      const type = o["print-variant-type"] as string;
      inv.out.print(dumpVariantBytes(type, new Uint8Array(readFileSync(rev))));
    } else if (o["print-sizes"]) {
      await printSizes(inv, repo, (await resolveRev(repo, rev))!);
    } else if (!CHECKSUM.test(rev)) {
      await printObject(inv, repo, ObjectType.Commit, "commit", COMMIT_TYPE, (await resolveRev(repo, rev))!);
    } else {
      for (const [type, name, gvType] of TYPES) {
        if (await repo.hasObject(rev, type)) return printObject(inv, repo, type, name, gvType, rev);
      }
      const obj = await repo.openContent(rev);
      const m = obj.meta;
      const symlink = (m.mode & 0o170000) === 0o120000;
      if (o.json) {
        inv.out.print(`${JSON.stringify({ object: rev, type: "file", fileType: symlink ? "symlink" : "regular", size: obj.size, target: symlink ? m.symlinkTarget : undefined, mode: m.mode, uid: m.uid, gid: m.gid })}\n`);
        return;
      }
      let s = `Object: ${rev}\nType: file\nFile Type: `;
      s += symlink ? `symlink\nTarget: ${m.symlinkTarget}\n` : `regular\nSize: ${obj.size}\n`;
      s += `Mode: 0${m.mode.toString(8).padStart(4, "0")}\nUid: ${m.uid}\nGid: ${m.gid}\n`;
      s += `Extended Attributes: { ${print("a(ayay)", xattrsToValue(m.xattrs), true)} }\n`;
      inv.out.print(s);
    }
  },
};
export default show;
