import { describe, expect, it } from "vitest";
import type { DirTree } from "@ostree-ts/objstore";
import { UnsafePathError } from "../src/index.js";
import { checkUniqueNames } from "../src/tree.js";

const C = "ab".repeat(32);
const tree = (files: string[], dirs: string[]): DirTree => ({
  files: files.map((name) => ({ name, checksum: C })),
  dirs: dirs.map((name) => ({ name, tree: C, meta: C })),
});
const check = (files: string[], dirs: string[]) => () => checkUniqueNames(tree(files, dirs), C);

describe("checkUniqueNames", () => {
  it("accepts distinct names, sorted or not", () => {
    expect(check(["a", "c", "e"], ["b", "d", "f"])).not.toThrow();
    expect(check(["e", "a", "c"], ["f", "b"])).not.toThrow();
    expect(check([], ["x"])).not.toThrow();
  });

  it("refuses a name in both lists, sorted or not", () => {
    expect(check(["a", "b", "c"], ["0", "b"])).toThrow(new UnsafePathError(`dirtree ${C} lists "b" more than once`));
    expect(check(["c", "b", "a"], ["b"])).toThrow(`dirtree ${C} lists "b" more than once`);
  });

  it("refuses a name twice in one list", () => {
    expect(check(["a", "a"], [])).toThrow(`lists "a" more than once`);
    expect(check([], ["b", "a", "b"])).toThrow(`lists "b" more than once`);
  });

  it("reports what comes first in list order, as one pass over files then directories does", () => {
    // The duplicate comes before the bad name …
    expect(check(["a", "a", "../x"], [])).toThrow(`lists "a" more than once`);
    // … and the bad name before the duplicate.
    expect(check(["../x", "a", "a"], [])).toThrow("Invalid / in filename ../x");
    expect(check(["b"], ["..", "b"])).toThrow("Invalid path uplink filename '..'");
    expect(check(["b"], ["b", ".."])).toThrow(`lists "b" more than once`);
  });
});
