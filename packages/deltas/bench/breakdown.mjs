#!/usr/bin/env node
// Where a delta's bytes go, measured rather than estimated: every object's blob bytes (its
// spliced content, rollsum literals, bsdiff patch, read-source checksum) are attributed by
// reading the part programs, concatenated per (file kind, strategy) in delta order, and each
// group is xz-compressed on its own. `explain` shares a part's size by a deflate weight, which
// misjudges incompressible data (.gz) and duplicated content; this does not. The strategy comes
// from the program (B = bsdiff, WRITE under a read source = rollsum), so a delta made by
// ostree reads the same way as ours.
//
// Usage: node bench/breakdown.mjs DELTA_DIR EXPLAIN_JSON [XZ_LZMA2_OPTIONS]
//   DELTA_DIR     directory holding `superblock` and the part files 0, 1, …
//   EXPLAIN_JSON  `ostree-ts static-delta explain --json` for the same FROM/TO (paths of objects)
//   XZ_LZMA2_OPTIONS  default "preset=8,nice=273,depth=32" (our patch-part preset)
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const [dir, explainPath, lzma2 = "preset=8,nice=273,depth=32"] = process.argv.slice(2);
if (!dir || !explainPath) {
  console.error("usage: node bench/breakdown.mjs DELTA_DIR EXPLAIN_JSON [XZ_LZMA2_OPTIONS]");
  process.exit(2);
}
const here = dirname(fileURLToPath(import.meta.url));
// Built inside the package so the bundle resolves its dependencies from its node_modules.
const out = mkdtempSync(join(here, "../node_modules/.deltas-breakdown-"));
try {
  const lib = join(out, "deltas.mjs");
  await build({ entryPoints: [join(here, "../src/index.ts")], bundle: true, platform: "node", format: "esm", packages: "external", outfile: lib, logLevel: "warning" });
  const { decodeSuperblock, decodePartPayload, parseOps, OP_BSPATCH, OP_CLOSE, OP_OPEN_SPLICE_AND_CLOSE, OP_SET_READ_SOURCE, OP_UNSET_READ_SOURCE, OP_WRITE } = await import(lib);
  const sbBytes = readFileSync(join(dir, "superblock"));
  const sb = decodeSuperblock(sbBytes);
  const explain = JSON.parse(readFileSync(explainPath, "utf8"));
  const paths = new Map(explain.files.map((f) => [f.checksum, f]));

  const kindOf = (obj) => {
    if (obj.type !== 1) return "metadata";
    const f = paths.get(obj.checksum);
    if (!f) return "unknown";
    if (f.strategy === "symlink") return "symlink";
    const p = f.path;
    const b = p.slice(p.lastIndexOf("/") + 1);
    if (b.startsWith("vmlinuz")) return "vmlinuz";
    if (b.endsWith(".ko")) return ".ko";
    if (b.endsWith(".gz")) return ".gz";
    if (/\.so(\.|$)/.test(b) || /\/(s?bin|libexec)\//.test(p)) return "ELF (.so, bin)";
    return "other";
  };

  const groups = new Map();
  const add = (key, bytes) => {
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { objects: 0, chunks: [] }));
    g.chunks.push(bytes);
  };
  let compressedParts = 0;
  sb.parts.forEach((h, i) => {
    const file = readFileSync(join(dir, String(i)));
    compressedParts += file.length;
    const payload = decodePartPayload(file[0] === 0x78 ? execFileSync("xz", ["-dc"], { input: file.subarray(1), maxBuffer: 1 << 30 }) : file.subarray(1));
    const ops = parseOps(payload.ops, h.objects);
    // First pass: each object's strategy; the bytecode of one object ends at its S or CLOSE.
    const strategy = [];
    let reading = false;
    let s = "new";
    for (const op of ops) {
      if (op.code === OP_SET_READ_SOURCE) reading = true;
      else if (op.code === OP_UNSET_READ_SOURCE) reading = false;
      else if (op.code === OP_BSPATCH) s = "bsdiff";
      else if (op.code === OP_WRITE && reading && s === "new") s = "rollsum";
      if (op.code === OP_OPEN_SPLICE_AND_CLOSE || op.code === OP_CLOSE) {
        strategy.push(h.objects[strategy.length].type === 1 ? s : "metadata");
        s = "new";
      }
    }
    // Second pass: blob bytes per object. A read source is set before the object it serves is
    // opened (bsdiff) and unset after its CLOSE, so it is charged to the next object to close.
    let k = 0;
    reading = false;
    for (const op of ops) {
      const obj = h.objects[Math.min(k, h.objects.length - 1)];
      const key = `${kindOf(obj)}\t${strategy[Math.min(k, strategy.length - 1)]}`;
      const a = op.args;
      if (op.code === OP_OPEN_SPLICE_AND_CLOSE) add(key, payload.blob.subarray(a.at(-1), a.at(-1) + a.at(-2)));
      else if (op.code === OP_SET_READ_SOURCE) {
        reading = true;
        add(key, payload.blob.subarray(a[0], a[0] + 32));
      } else if (op.code === OP_UNSET_READ_SOURCE) reading = false;
      else if (op.code === OP_WRITE && !reading) add(key, payload.blob.subarray(a[1], a[1] + a[0]));
      else if (op.code === OP_BSPATCH) add(key, payload.blob.subarray(a[0], a[0] + a[1]));
      if (op.code === OP_OPEN_SPLICE_AND_CLOSE || op.code === OP_CLOSE) {
        const g = groups.get(key);
        if (g) g.objects++;
        k++;
      }
    }
  });

  console.log(`${"kind".padEnd(16)} ${"strategy".padEnd(9)} ${"objects".padStart(7)} ${"blob bytes".padStart(11)} ${"xz alone".padStart(10)}`);
  let sum = 0;
  for (const [key, g] of [...groups].sort((x, y) => (x[0] < y[0] ? -1 : 1))) {
    const blob = Buffer.concat(g.chunks);
    const xz = execFileSync("xz", [`--lzma2=${lzma2}`, "-T1", "-c", "-q"], { input: blob, maxBuffer: 1 << 30 }).length;
    sum += xz;
    const [kind, strategy] = key.split("\t");
    console.log(`${kind.padEnd(16)} ${strategy.padEnd(9)} ${String(g.objects).padStart(7)} ${String(blob.length).padStart(11)} ${String(xz).padStart(10)}`);
  }
  console.log(`sum of groups ${sum} (parts as shipped ${compressedParts}), superblock ${sbBytes.length}`);
} finally {
  rmSync(out, { recursive: true, force: true });
}
