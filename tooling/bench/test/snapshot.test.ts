import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "@ostree-ts/interop";
import { afterAll, expect, it } from "vitest";
import { CliSnapshotError, snapshotCli } from "../src/snapshot.js";

const tmp = tempDir("ostree-ts-bench-snap-");
afterAll(() => tmp.cleanup());

/** A miniature code-split bundle: entry → static chunk, dynamic chunk → nested chunk; one unreachable chunk. */
function writeBundle(dist: string): void {
  mkdirSync(join(dist, "chunks"), { recursive: true });
  // The JSDoc line is what bundled undici carries: not an import to follow.
  writeFileSync(
    join(dist, "cli.mjs"),
    `import { a } from "./chunks/a-1.mjs";\n/** @param {import('./client.js')} c */\nconst { b } = await import("./chunks/b-2.mjs");\nconsole.log(a + b);\n`,
  );
  writeFileSync(join(dist, "chunks/a-1.mjs"), `export const a = "a";\n`);
  writeFileSync(join(dist, "chunks/b-2.mjs"), `import "./c-3.mjs";\nexport { b } from "./c-3.mjs";\n`);
  // Like the lazily required native modules: resolved from the bundle's own location.
  writeFileSync(join(dist, "chunks/c-3.mjs"), `import { createRequire } from "node:module";\nexport const b = createRequire(import.meta.url)("native-dep");\n`);
  mkdirSync(join(dist, "..", "node_modules", "native-dep"), { recursive: true });
  writeFileSync(join(dist, "..", "node_modules", "native-dep", "index.js"), `module.exports = "b";\n`);
  writeFileSync(join(dist, "chunks/stale-4.mjs"), `export const old = 1;\n`);
  writeFileSync(join(dist, "other.mjs"), `export {};\n`);
}

it("copies the entry and exactly the chunks it reaches, and the copy runs on its own", () => {
  const dist = join(tmp.path, "pkg", "dist");
  writeBundle(dist);
  const dest = join(tmp.path, "snap");
  const entry = snapshotCli(join(dist, "cli.mjs"), dest);
  expect(entry).toBe(join(dest, "cli.mjs"));
  for (const f of ["chunks/a-1.mjs", "chunks/b-2.mjs", "chunks/c-3.mjs"]) expect(existsSync(join(dest, f)), f).toBe(true);
  expect(existsSync(join(dest, "chunks/stale-4.mjs"))).toBe(false);
  expect(existsSync(join(dest, "other.mjs"))).toBe(false);
  rmSync(dist, { recursive: true });
  const run = spawnSync(process.execPath, [entry], { encoding: "utf8" });
  expect(run.stderr).toBe("");
  expect(run.stdout).toBe("ab\n");
});

it("refuses a bundle whose chunk is missing, naming it", () => {
  const dist = join(tmp.path, "pkg2", "dist");
  writeBundle(dist);
  rmSync(join(dist, "chunks/c-3.mjs"));
  expect(() => snapshotCli(join(dist, "cli.mjs"), join(tmp.path, "snap2"))).toThrow(CliSnapshotError);
  expect(() => snapshotCli(join(dist, "cli.mjs"), join(tmp.path, "snap2"))).toThrow(/c-3\.mjs/);
});
