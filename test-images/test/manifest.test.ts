import { chmodSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "@ostree-ts/interop";
import { afterAll, describe, expect, it } from "vitest";
import { checkTrees, cpioNewc, formatLock, parseLock, readManifest, recordTree, treeDigest, type Pin } from "../src/index.js";
import { imageRoots, type ImagesFile } from "../src/images.js";

const tmp = tempDir("ostree-ts-manifest-");
afterAll(() => tmp.cleanup());

function tinyTree(dir: string): void {
  mkdirSync(join(dir, "etc"), { recursive: true });
  writeFileSync(join(dir, "etc/hostname"), "box\n");
  writeFileSync(join(dir, "run.sh"), "#!/bin/sh\n");
  chmodSync(join(dir, "run.sh"), 0o755);
  symlinkSync("etc/hostname", join(dir, "link"));
}

describe("manifest and --check", () => {
  const cache = join(tmp.path, "cache");
  const manifest = join(cache, "manifest.json");
  tinyTree(join(cache, "os-t"));

  it("records a tree and verifies it unchanged", () => {
    const e = recordTree(manifest, cache, "os-t", { kver: "1.0" });
    expect(readManifest(manifest).trees["os-t"]).toEqual(e);
    const [r] = checkTrees(cache, ["os-t"], readManifest(manifest).trees);
    expect(r?.ok).toBe(true);
  });

  it("fails on changed content, changed mode, missing tree, and missing expectation", () => {
    const expected = readManifest(manifest).trees;
    writeFileSync(join(cache, "os-t/etc/hostname"), "other\n");
    expect(checkTrees(cache, ["os-t"], expected)[0]).toMatchObject({ ok: false, reason: expect.stringMatching(/digest mismatch/) });
    writeFileSync(join(cache, "os-t/etc/hostname"), "box\n");
    expect(checkTrees(cache, ["os-t"], expected)[0]?.ok).toBe(true);
    chmodSync(join(cache, "os-t/run.sh"), 0o700);
    expect(checkTrees(cache, ["os-t"], expected)[0]?.ok).toBe(false);
    chmodSync(join(cache, "os-t/run.sh"), 0o755);
    expect(checkTrees(cache, ["os-nope"], expected)[0]).toMatchObject({ ok: false, reason: expect.stringMatching(/not built/) });
    expect(checkTrees(cache, ["os-t"], {})[0]).toMatchObject({ ok: false, reason: expect.stringMatching(/no expected digest/) });
  });

  it("digests ignore mtimes and inode identity but not symlink targets", () => {
    const a = join(tmp.path, "t1");
    const b = join(tmp.path, "t2");
    tinyTree(a);
    tinyTree(b);
    expect(treeDigest(a)).toEqual(treeDigest(b));
    symlinkSync("x", join(b, "link2"));
    symlinkSync("y", join(a, "link2"));
    expect(treeDigest(a).digest).not.toBe(treeDigest(b).digest);
  });
});

describe("package locks", () => {
  const pin: Pin = { name: "libc6", version: "2.36-9+deb12u7", arch: "amd64", sha256: "a".repeat(64), size: 10, suite: "bookworm-security", source: "glibc" };
  it("round-trip through the lock format", () => {
    const text = formatLock("os-x", [pin, { ...pin, name: "bash", source: "bash" }], ["comment"]);
    expect(parseLock(text, "x.lock").map((p) => p.name)).toEqual(["bash", "libc6"]);
    expect(parseLock(text, "x.lock")[1]).toEqual(pin);
  });
  it("reject malformed lines with the file and line", () => {
    expect(() => parseLock("# c\nlibc6 1.0 amd64 nothex 1 s s\n", "x.lock")).toThrow(/x\.lock:2/);
  });
  it("derive image roots from the base image's add/remove lists", () => {
    const spec: ImagesFile = {
      epoch: 0,
      arch: "amd64",
      images: {
        a: { description: "", roots: ["bash", "nano", "systemd"], prefer: "oldest", versions: {} },
        b: { description: "", base: "a", remove: ["nano"], add: ["curl"], prefer: "newest", versions: {} },
        c: { description: "", base: "b", prefer: "newest", versions: {} },
      },
    };
    expect(imageRoots(spec, "c")).toEqual(["bash", "curl", "systemd"]);
  });
  it("checked-in locks parse and pin every image's kernel", () => {
    for (const n of ["os-v1", "os-v2", "os-v3"]) {
      const pins = parseLock(readFileSync(new URL(`../packages/${n}.lock`, import.meta.url), "utf8"), n);
      expect(pins.some((p) => /^linux-image-6\.1\.0-\d+-cloud-amd64$/.test(p.name))).toBe(true);
    }
  });
});

describe("cpio newc", () => {
  it("is byte-stable and parses back", () => {
    const entries = [
      { name: "bin", type: "dir" as const, mode: 0o755 },
      { name: "bin/x", type: "file" as const, mode: 0o755, data: "abc" },
      { name: "bin/sh", type: "symlink" as const, mode: 0o777, data: "x" },
    ];
    const a = cpioNewc(entries, 1686355200);
    expect(cpioNewc(entries, 1686355200).equals(a)).toBe(true);
    expect(a.length % 4).toBe(0);
    const text = a.toString("latin1");
    expect(text.startsWith("070701")).toBe(true);
    expect(text).toContain("bin/x\0");
    expect(text).toContain("TRAILER!!!");
    // mode field of the second entry: regular file 0755
    const second = text.indexOf("070701", 6);
    expect(parseInt(text.slice(second + 14, second + 22), 16)).toBe(0o100755);
  });
});
