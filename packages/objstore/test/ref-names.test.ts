import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { describeInterop, ostree, tempDir } from "@ostree-ts/interop";
import { InvalidNameError, isValidRef, validateRef, validateRemoteName } from "../src/index.js";

// ASCII names take the fast path, the others the Unicode classes (GRegex's \w); both must agree with ostree.
const NAMES = ["main", "a_b.c-d/e", "_x", "os/x86_64/v1", "héllo/wörld", "ß", "٣x", "a‿b", "-a", "a//b", "a/", "/a", "a b", "a/.b", "", "é/-x", "x\u0301y", "\u0301x"];

let tmp: { path: string; cleanup: () => void };
let repo: string;
let commit: string;

describeInterop("ref and remote names: accepted exactly where ostree accepts them", () => {
  beforeAll(() => {
    tmp = tempDir("objstore-ref-names-");
    repo = join(tmp.path, "repo");
    ostree(["init", `--repo=${repo}`, "--mode=archive"]);
    mkdirSync(join(tmp.path, "t"));
    writeFileSync(join(tmp.path, "t", "f"), "x\n");
    commit = ostree(["commit", `--repo=${repo}`, "-b", "main", "--no-xattrs", join(tmp.path, "t")]).trim();
  });
  afterAll(() => tmp?.cleanup());

  test.each(NAMES)("ref %j", (name) => {
    const theirs = spawnSync("ostree", ["refs", `--repo=${repo}`, "--force", `--create=${name}`, commit], { encoding: "utf8" }).status === 0;
    expect(isValidRef(name)).toBe(theirs);
    if (theirs) expect(validateRef(name)).toBe(name);
    else expect(() => validateRef(name)).toThrow(InvalidNameError);
  });

  test.each(NAMES)("remote %j", (name) => {
    const theirs = spawnSync("ostree", ["remote", "add", `--repo=${repo}`, "--no-gpg-verify", "--force", name, "http://127.0.0.1:1/"], { encoding: "utf8" }).status === 0;
    if (theirs) expect(validateRemoteName(name)).toBe(name);
    else expect(() => validateRemoteName(name)).toThrow(InvalidNameError);
  });
});
