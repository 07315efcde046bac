import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeInterop, ostree, sh, SPEC_DIR, tempDir } from "@ostree-ts/interop";
import { bsdiff, bspatch, compress, computeRollsumMatches, rollsumPlan, type RollsumSegment } from "../src/index.js";
import { bspatchOps, ostreeDelta, type OstreeDelta } from "./ostree-delta.js";

describeInterop("real ostree: worked example (spec vectors/mktree2.sh)", () => {
  let tmp: ReturnType<typeof tempDir>;
  let delta: OstreeDelta;
  const file = (v: string, p: string) => new Uint8Array(readFileSync(join(tmp.path, v, p)));

  beforeAll(async () => {
    tmp = tempDir("deltas-interop-");
    sh(join(SPEC_DIR, "vectors/mktree2.sh"), [], tmp.path);
    delta = await ostreeDelta(tmp.path, join(tmp.path, "v1"), join(tmp.path, "v2"));
  });
  afterAll(() => tmp.cleanup());

  it("our xz encoder reproduces ostree's part file byte for byte", async () => {
    expect(delta.parts).toHaveLength(1);
    const p = delta.parts[0]!;
    expect(p.file[0]).toBe(0x78);
    const ours = await compress(p.payload, "xz");
    expect(Buffer.from(ours).equals(Buffer.from(p.file.subarray(1)))).toBe(true);
  });

  it("our bspatch applies ostree's bsdiff patches, and our bsdiff emits the same bytes", () => {
    const patches = bspatchOps(delta.parts[0]!);
    expect(patches.map((x) => x.size).sort((a, b) => a - b)).toEqual([10, 6000]);
    for (const { size, patch } of patches) {
      const path = size === 10 ? "usr/share/readme.txt" : "usr/bin/app";
      const [from, to] = [file("v1", path), file("v2", path)];
      expect(Buffer.from(bspatch(from, patch, size)).equals(Buffer.from(to))).toBe(true);
      expect(Buffer.from(bsdiff(from, to)).toString("hex")).toBe(Buffer.from(patch).toString("hex"));
    }
  });

  it("real ostree's bspatch applies the delta whose patches equal ours (apply-offline + fsck)", async () => {
    const bare = join(tmp.path, "bare");
    ostree(["init", `--repo=${bare}`, "--mode=bare-user"]);
    ostree(["pull-local", `--repo=${bare}`, delta.repo, delta.from]);
    // The part's B patches are byte-identical to bsdiff() output (previous test).
    const patches = bspatchOps(delta.parts[0]!);
    for (const { size, patch } of patches) {
      const path = size === 10 ? "usr/share/readme.txt" : "usr/bin/app";
      expect(Buffer.from(bsdiff(file("v1", path), file("v2", path))).equals(Buffer.from(patch))).toBe(true);
    }
    ostree(["static-delta", "apply-offline", `--repo=${bare}`, delta.dir]);
    ostree(["fsck", `--repo=${bare}`]);
    const out = join(tmp.path, "checkout");
    ostree(["checkout", `--repo=${bare}`, "-U", delta.to, out]);
    for (const path of ["usr/bin/app", "usr/share/readme.txt", "usr/share/big.dat"]) {
      expect(Buffer.from(readFileSync(join(out, path))).equals(Buffer.from(file("v2", path)))).toBe(true);
    }
  });

  it("ostree-keyed rollsum reproduces the write sequence ostree emitted for big.dat", () => {
    // o(mode,xattr,262144) then r/w/R/w…/c: copies while a read source is set, literals otherwise.
    const ops = delta.parts[0]!.ops;
    const start = ops.findIndex((o) => o.op === "o" && o.args[2] === 262144);
    expect(start).toBeGreaterThan(-1);
    const theirs: RollsumSegment[] = [];
    let reading = false;
    for (let i = start + 1; ops[i]!.op !== "c"; i++) {
      const { op, args } = ops[i]!;
      if (op === "r") reading = true;
      else if (op === "R") reading = false;
      else if (op === "w") {
        theirs.push(reading ? { kind: "copy", fromStart: args[1]!, length: args[0]! } : { kind: "literal", toStart: -1, length: args[0]! });
      }
    }
    const from = file("v1", "usr/share/big.dat");
    const to = file("v2", "usr/share/big.dat");
    const result = computeRollsumMatches(from, to, { keying: "ostree" });
    expect(result.worthwhile).toBe(true);
    const ours = rollsumPlan(result.matches, to.length).map((s) => (s.kind === "literal" ? { ...s, toStart: -1 } : s));
    expect(ours).toEqual(theirs);
  });
});

describeInterop("real ostree: bsdiff of real binaries", () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeAll(() => {
    tmp = tempDir("deltas-interop-bin-");
  });
  afterAll(() => tmp.cleanup());

  it("cmake → cpack: ostree's patch applies with our bspatch and equals our bsdiff output", async () => {
    // Same basename, different binaries from one build: rollsum matches < 50 %, so ostree bsdiffs.
    for (const [v, src] of [["v1", "/usr/bin/cmake"], ["v2", "/usr/bin/cpack"]] as const) {
      mkdirSync(join(tmp.path, v, "usr/bin"), { recursive: true });
      copyFileSync(src, join(tmp.path, v, "usr/bin/tool"));
    }
    writeFileSync(join(tmp.path, "v2", "marker"), "v2\n");
    const { parts } = await ostreeDelta(tmp.path, join(tmp.path, "v1"), join(tmp.path, "v2"));
    const patches = parts.flatMap(bspatchOps);
    expect(patches).toHaveLength(1);
    const from = new Uint8Array(readFileSync("/usr/bin/cmake"));
    const to = new Uint8Array(readFileSync("/usr/bin/cpack"));
    const { size, patch } = patches[0]!;
    expect(size).toBe(to.length);
    expect(Buffer.from(bspatch(from, patch, size)).equals(Buffer.from(to))).toBe(true);
    const ours = bsdiff(from, to);
    expect(ours.length).toBe(patch.length);
    expect(Buffer.from(ours).equals(Buffer.from(patch))).toBe(true);
  }, 300_000);
});
