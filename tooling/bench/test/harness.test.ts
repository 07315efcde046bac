import { chmodSync, existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describeInterop, tempDir } from "@ostree-ts/interop";
import { afterAll, expect, it } from "vitest";
import { runBench } from "../src/harness.js";
import { TIME_BIN } from "../src/measure.js";

const tmp = tempDir("ostree-ts-bench-");
afterAll(() => tmp.cleanup());

const ONLY = ["startup", "commit-archive", "fsck", "delta-generate-v1-v2", "pull-objects-v1-v2", "pull-delta-v2-v3"];

describeInterop("bench harness on a tiny fixture", () => {
  it("has GNU time to measure children with", () => {
    expect(existsSync(TIME_BIN), `${TIME_BIN} is missing: apt-get install time`).toBe(true);
  });

  it("measures ostree and reports a missing ostree-ts CLI as not implemented", async () => {
    const res = await runBench({
      source: { kind: "fixture", files: 15 },
      outDir: join(tmp.path, "out"),
      reps: 2,
      cli: join(tmp.path, "missing/ostree-ts.mjs"),
      only: ONLY,
      lowerBounds: true,
      log: () => {},
    });
    expect(res.ops.map((o) => o.id)).toEqual(ONLY);
    expect(res.versions).toHaveLength(3);
    for (const op of res.ops) {
      expect(op.results.ostree.status, `${op.id}: ${op.results.ostree.note}`).toBe("ok");
      expect(op.results.ostree.samples).toHaveLength(2);
      expect(op.results.ostree.median?.wall).toBeGreaterThan(0);
      expect(op.results.ostree.median?.maxRssKiB).toBeGreaterThan(1000);
      expect(op.results["ostree-ts"].status).toBe("not implemented");
      expect(op.results["ostree-ts"].median).toBeUndefined();
      expect(op.ratio.wall).toBeUndefined();
    }
    const delta = res.ops.find((o) => o.id === "delta-generate-v1-v2");
    expect(delta?.results.ostree.sizes.delta).toBeGreaterThan(0);
    const pull = res.ops.find((o) => o.id === "pull-delta-v2-v3");
    expect(pull?.results.ostree.sizes.transferred).toBeGreaterThan(0);
    // summary.sig (404), summary, the commit's metadata, the superblock and at least one part.
    expect(pull?.results.ostree.sizes.requests).toBeGreaterThanOrEqual(5);
    // By objects, a client on v1 fetches only what v2 changed: fewer requests than v2 has files.
    const byObjects = res.ops.find((o) => o.id === "pull-objects-v1-v2");
    expect(byObjects?.results.ostree.sizes.requests).toBeGreaterThan(3);
    expect(byObjects?.results.ostree.sizes.requests).toBeLessThan(res.versions[1]?.files ?? 0);
    expect(res.lowerBounds.map((l) => `${l.from}>${l.to}`)).toEqual(["fixture-v1>fixture-v2", "fixture-v2>fixture-v3", "empty>fixture-v3"]);
    for (const l of res.lowerBounds) expect(l.xzTar).toBeGreaterThan(0);
    const patch = res.lowerBounds[0];
    if (!patch?.zstdMissing) expect(patch?.zstdPatch).toBeGreaterThan(0);
  });

  it("runs a CLI that answers like ostree, and tells 'not implemented' from real failures", async () => {
    // Stand-in ostree-ts: forwards to the real ostree, except that it lacks fsck and breaks rev-parse.
    const cli = join(tmp.path, "fake-cli.mjs");
    writeFileSync(
      cli,
      `import { spawnSync } from "node:child_process";
const args = process.argv.slice(2);
if (args[0] === "fsck") { console.error("error: ostree-ts: the 'fsck' command is not implemented yet"); process.exit(1); }
if (args[0] === "rev-parse") { console.error("error: Refspec 'os' not found"); process.exit(1); }
process.exit(spawnSync("ostree", args, { stdio: "inherit" }).status ?? 1);
`,
    );
    chmodSync(cli, 0o755);
    const res = await runBench({ source: { kind: "fixture", files: 15 }, outDir: join(tmp.path, "out"), reps: 1, cli, only: ["startup", "commit-archive", "fsck"], lowerBounds: false, log: () => {} });
    const by = Object.fromEntries(res.ops.map((o) => [o.id, o]));
    expect(by["commit-archive"]?.results["ostree-ts"].status).toBe("ok");
    expect(by["commit-archive"]?.ratio.wall).toBeGreaterThan(0);
    // Same inputs, same command: the forwarding CLI writes a repo of exactly ostree's size.
    expect(by["commit-archive"]?.results["ostree-ts"].sizes.repo).toBe(by["commit-archive"]?.results.ostree.sizes.repo);
    expect(by.fsck?.results["ostree-ts"].status).toBe("not implemented");
    expect(by.startup?.results["ostree-ts"].status).toBe("error");
    expect(by.startup?.results["ostree-ts"].note).toMatch(/Refspec 'os' not found/);
  });
});
