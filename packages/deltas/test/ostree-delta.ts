// Test helper: builds a static delta with the real ostree and decodes its
// parts far enough to pull out bsdiff patches and rollsum write sequences.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { decode } from "@ostree-ts/gvariant";
import { ostree } from "@ostree-ts/interop";
import { compressionKindOf, decompress } from "../src/index.js";

export interface Op {
  op: string;
  args: number[];
}

export interface DecodedPart {
  /** Raw part file. */
  file: Uint8Array;
  payload: Uint8Array;
  blob: Uint8Array;
  ops: Op[];
  objects: Array<{ type: number; checksum: string }>;
}

function varint(b: Uint8Array, at: { i: number }): number {
  let r = 0;
  let mul = 1;
  for (;;) {
    const c = b[at.i++]!;
    r += (c & 0x7f) * mul;
    if (!(c & 0x80)) return r;
    mul *= 128;
  }
}

const NARGS: Record<string, number> = { o: 3, w: 2, r: 1, R: 0, c: 0, B: 2 };

export function parseOps(ops: Uint8Array, objects: DecodedPart["objects"]): Op[] {
  const out: Op[] = [];
  const at = { i: 0 };
  let k = 0;
  while (at.i < ops.length) {
    const op = String.fromCharCode(ops[at.i++]!);
    const n = op === "S" ? (objects[k]!.type === 1 ? 4 : 2) : NARGS[op];
    if (n === undefined) throw new Error(`unknown opcode ${op}`);
    const args: number[] = [];
    for (let j = 0; j < n; j++) args.push(varint(ops, at));
    if (op === "S" || op === "c") k++;
    out.push({ op, args });
  }
  return out;
}

export interface OstreeDelta {
  repo: string;
  from: string;
  to: string;
  dir: string;
  parts: DecodedPart[];
}

/** Commits `v1` then `v2` into a fresh archive repo, generates FROM→TO, returns its decoded parts. */
export async function ostreeDelta(work: string, v1: string, v2: string, extraArgs: string[] = []): Promise<OstreeDelta> {
  const repo = join(work, "repo");
  ostree(["init", `--repo=${repo}`, "--mode=archive"]);
  const c1 = ostree(["commit", `--repo=${repo}`, "-b", "t", "--timestamp=2021-01-01T00:00:00Z", "-s", "v1", "--no-xattrs", v1]).trim();
  const c2 = ostree(["commit", `--repo=${repo}`, "-b", "t", "--timestamp=2021-02-01T00:00:00Z", "-s", "v2", "--no-xattrs", v2]).trim();
  ostree(["static-delta", "generate", `--repo=${repo}`, `--from=${c1}`, `--to=${c2}`, ...extraArgs]);
  const top = join(repo, "deltas");
  const [d1] = readdirSync(top);
  const [d2] = readdirSync(join(top, d1!));
  const dir = join(top, d1!, d2!);
  const sb = decode("(a{sv}tayay(a{sv}aya(say)sstayay)aya(uayttay)a(yaytt))", readFileSync(join(dir, "superblock"))) as unknown[];
  const headers = sb[6] as Array<[number, Uint8Array, bigint, bigint, Uint8Array]>;
  const parts: DecodedPart[] = [];
  for (let i = 0; i < headers.length; i++) {
    const objs = headers[i]![4];
    const objects: DecodedPart["objects"] = [];
    for (let o = 0; o < objs.length; o += 33) {
      objects.push({ type: objs[o]!, checksum: Buffer.from(objs.subarray(o + 1, o + 33)).toString("hex") });
    }
    const file = new Uint8Array(readFileSync(join(dir, String(i))));
    const payload = await decompress(file.subarray(1), compressionKindOf(file[0]!), 1 << 30);
    const [, , blob, ops] = decode("(a(uuu)aa(ayay)ayay)", payload) as [unknown, unknown, Uint8Array, Uint8Array];
    parts.push({ file, payload, blob, ops: parseOps(ops, objects), objects });
  }
  return { repo, from: c1, to: c2, dir, parts };
}

/** The bsdiff patches of a part: output size (from the preceding `o`) and patch bytes. */
export function bspatchOps(part: DecodedPart): Array<{ size: number; patch: Uint8Array }> {
  const out: Array<{ size: number; patch: Uint8Array }> = [];
  let size = -1;
  for (const { op, args } of part.ops) {
    if (op === "o") size = args[2]!;
    if (op === "B") out.push({ size, patch: part.blob.subarray(args[0]!, args[0]! + args[1]!) });
  }
  return out;
}
