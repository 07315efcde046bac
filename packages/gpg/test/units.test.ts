import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as openpgp from "openpgp";
import { afterAll, expect, it } from "vitest";
import { tempDir } from "@ostree-ts/interop";
import { addKeyfilePath, Keyring, splitKeyPaths } from "../src/keyring.js";
import { decodeSummarySig } from "../src/detached.js";
import { wkdUrls } from "../src/remote-keys.js";
import { splitUserId } from "../src/verify.js";

const tmp = tempDir();
afterAll(() => tmp.cleanup());

it("splits user IDs as gpgme does, name kept without an email", () => {
  expect(splitUserId("Ostree Tester <test@test.com>")).toEqual({ userName: "Ostree Tester", userEmail: "test@test.com" });
  // gpg --generate-key with only Name-Real: ostree prints "Test Key 1 <>".
  expect(splitUserId("Test Key 1")).toEqual({ userName: "Test Key 1", userEmail: "" });
  expect(splitUserId("Name (comment) <a@b>")).toEqual({ userName: "Name", userEmail: "a@b" });
});

it("splits gpgkeypath as ostree's keyfile string lists (test-remote-gpg-import)", () => {
  expect(splitKeyPaths("/a.asc,/b.asc")).toEqual(["/a.asc", "/b.asc"]);
  expect(splitKeyPaths("/a.asc;/b.asc;/c.asc")).toEqual(["/a.asc", "/b.asc", "/c.asc"]);
  expect(splitKeyPaths("/a.asc,")).toEqual(["/a.asc"]);
  expect(splitKeyPaths(",/a.asc")).toEqual(["", "/a.asc"]);
  expect(() => splitKeyPaths("/a,/b;/c")).toThrow("key value list contains more than one separator");
});

it("gpgkeypath entries: missing paths fail as opendir(), files without keys add nothing", async () => {
  const dir = join(tmp.path, "keys");
  mkdirSync(dir);
  writeFileSync(join(dir, "trustdb.gpg"), Buffer.from("0167706703", "hex"));
  const k = new Keyring();
  await addKeyfilePath(k, dir);
  await addKeyfilePath(k, join(dir, "trustdb.gpg"));
  expect(k.keys).toHaveLength(0);
  await expect(addKeyfilePath(k, join(dir, "nope.asc"))).rejects.toThrow(`opendir(${join(dir, "nope.asc")}): No such file or directory`);
  await expect(addKeyfilePath(k, "")).rejects.toThrow("opendir(): No such file or directory");
});

it("merging a key already present takes in its newer self-signature (gpg import of an expired copy)", async () => {
  const date = new Date(Date.now() - 10_000);
  const { privateKey } = await openpgp.generateKey({ userIDs: [{ name: "T" }], format: "object", date });
  const plain = privateKey.toPublic();
  // Same key, re-certified later with a 1 s lifetime: expired by now.
  const { privateKey: expiring } = await openpgp.reformatKey({ privateKey, userIDs: [{ name: "T" }], keyExpirationTime: 1, format: "object", date: new Date(Date.now() - 5_000) });
  const k = new Keyring();
  expect(await k.merge([plain])).toBe(1);
  expect(await k.keys[0]!.getExpirationTime()).toBe(Infinity);
  expect(await k.merge([expiring.toPublic()])).toBe(0);
  expect(k.keys).toHaveLength(1);
  expect((await k.keys[0]!.getExpirationTime()) as Date).toBeInstanceOf(Date);
});

it("a garbage summary.sig reads as no signatures, as GLib's untrusted GVariant access does", () => {
  expect(decodeSummarySig(new TextEncoder().encode("invalid\n"))).toEqual([]);
});

it("WKD URLs as ostree's ot_gpg_wkd_urls (values from test-remote-gpg-list-keys)", () => {
  expect(wkdUrls("test@test.com")).toEqual({
    advanced: "https://openpgpkey.test.com/.well-known/openpgpkey/test.com/hu/iffe93qcsgp4c8ncbb378rxjo6cn9q6u?l=test",
    direct: "https://test.com/.well-known/openpgpkey/hu/iffe93qcsgp4c8ncbb378rxjo6cn9q6u?l=test",
  });
  // The hash is of the lowered local part; the l= parameter keeps it as written, escaped.
  expect(wkdUrls("Test+x@Test.com")!.advanced).toMatch(/^https:\/\/openpgpkey\.Test\.com\/\.well-known\/openpgpkey\/test\.com\/hu\/[a-z0-9]{32}\?l=Test%2Bx$/);
  expect(wkdUrls("no-at-sign")).toBeNull();
});
