// The real ostree prints metadata with g_variant_print() and parses
// --add-metadata values with g_variant_parse(); check both ends against it.
// Skips when ostree is missing unless OSTREE_TS_INTEROP=required.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { decode, parseText, print } from "../src/index.js";

const OSTREE = process.env.OSTREE_BIN ?? "ostree";
const available = spawnSync(OSTREE, ["--version"], { encoding: "utf8" }).status === 0;
const suite = available || process.env.OSTREE_TS_INTEROP === "required" ? describe : describe.skip;

function ostree(args: string[]): string {
  if (!available) throw new Error(`real ostree (${OSTREE}) is required (OSTREE_TS_INTEROP=required) but not runnable`);
  const r = spawnSync(OSTREE, args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`ostree ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

const METADATA: [string, string][] = [
  ["n", "uint64 5"],
  ["l", `['a', "it's"]`],
  ["m", "{'k': <byte 0x01>}"],
  ["e", "@ay []"],
  ["bs", "b'ab'"],
  ["d", "3.5"],
  ["t", "('x', int16 -2, just true, @mi nothing)"],
];

suite("against the real ostree", () => {
  test("commit metadata: ostree's parse, our parse, and `show --raw` printing agree", () => {
    const dir = mkdtempSync(join(tmpdir(), "gvariant-ostree-"));
    try {
      mkdirSync(join(dir, "tree"));
      writeFileSync(join(dir, "tree", "f"), "hi\n");
      const repo = join(dir, "repo");
      ostree(["init", `--repo=${repo}`, "--mode=archive"]);
      const checksum = ostree([
        "commit",
        `--repo=${repo}`,
        "-b",
        "x",
        "--add-metadata-string=version=1.0",
        ...METADATA.map(([k, v]) => `--add-metadata=${k}=${v}`),
        join(dir, "tree"),
      ]).trim();
      const type = "(a{sv}aya(say)sstayay)";
      const commit = decode(type, new Uint8Array(readFileSync(join(repo, "objects", checksum.slice(0, 2), `${checksum.slice(2)}.commit`))));
      const meta = (commit as unknown[])[0] as [string, { type: string; value: unknown }][];
      for (const [key, text] of METADATA) {
        const entry = meta.find(([k]) => k === key);
        expect(entry?.[1], key).toEqual({ type: parseText(text).type, value: parseText(text).value });
      }
      // ostree prints a byte-swapped copy of the commit on little-endian hosts.
      const raw = ostree(["show", `--repo=${repo}`, "--raw", "x"]).split("\n")[1];
      const swapped = decode(type, new Uint8Array(readFileSync(join(repo, "objects", checksum.slice(0, 2), `${checksum.slice(2)}.commit`))), { byteOrder: "be" });
      expect(print(type, swapped)).toBe(raw);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
