import { spawnSync } from "node:child_process";
import { mkdirSync, realpathSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { describeInterop, makeGnupgKey, ostree, tempDir } from "@ostree-ts/interop";
import { readRef, Repo } from "@ostree-ts/objstore";
import { findRemotes, pullFromRemotes, userMountPoints, type FinderResult } from "../src/index.js";

let tmp: { path: string; cleanup: () => void };
let gpgHome: string;
let keyId: string;
const c: Record<string, string> = {};

const r = (name: string) => join(tmp.path, name);
const sign = () => [`--gpg-homedir=${gpgHome}`, `--gpg-sign=${keyId}`];
function commit(repo: string, branch: string, content: string, timestamp: string): string {
  writeFileSync(join(r("tree"), "f"), content);
  return ostree(["commit", `--repo=${r(repo)}`, "-b", branch, "--no-xattrs", `--timestamp=${timestamp}`, ...sign(), r("tree")]).trim();
}
const summarize = (repo: string) => ostree(["summary", "-u", `--repo=${r(repo)}`, ...sign()]);
const addRemote = (repo: string, name: string, src: string, cid: string) =>
  ostree(["remote", "add", `--repo=${r(repo)}`, `--collection-id=${cid}`, `--gpg-import=${r("key.gpg")}`, name, `file://${r(src)}`]);
const brief = (results: FinderResult[]) => results.map((x) => ({ finder: x.finder, url: x.url, keyring: x.keyring, refs: x.refs.map((y) => `${y.collectionId}/${y.ref}=${y.checksum}`) }));

describeInterop("find-remotes: config and mount finders, newest commit per ref, pull through the results", () => {
  beforeAll(() => {
    tmp = tempDir("find-remotes-");
    if (spawnSync("gpg", ["--version"]).status !== 0) throw new Error("gnupg (gpg) is required");
    const key = makeGnupgKey(tmp.path, "Finder <finder@example.com>");
    gpgHome = key.homedir;
    keyId = key.keyId;
    writeFileSync(r("key.gpg"), key.publicKey);
    mkdirSync(r("tree"));

    ostree(["init", `--repo=${r("apps")}`, "--mode=archive", "--collection-id=org.example.Apps"]);
    c.app1 = commit("apps", "app1", "a1", "2024-01-01 00:00:00");
    c.app2 = commit("apps", "app2", "a2", "2024-01-01 00:00:00");
    summarize("apps");
    ostree(["init", `--repo=${r("os")}`, "--mode=archive", "--collection-id=org.example.Os"]);
    c.os1 = commit("os", "os/main", "o1", "2024-01-01 00:00:00");
    summarize("os");
    // A USB-stick-like mirror of the os collection, then left behind by a newer commit.
    mkdirSync(r("usb"));
    ostree(["init", `--repo=${r("usb/mirror")}`, "--mode=archive"]);
    addRemote("usb/mirror", "os-remote", "os", "org.example.Os");
    ostree(["pull", "--mirror", `--repo=${r("usb/mirror")}`, "os-remote", "os/main"]);
    ostree(["summary", "-u", `--repo=${r("usb/mirror")}`]);
    mkdirSync(r("usb/.ostree/repos.d"), { recursive: true });
    symlinkSync("../../mirror", r("usb/.ostree/repos.d/os"));
    c.os2 = commit("os", "os/main", "o2", "2024-02-01 00:00:00");
    summarize("os");

    ostree(["init", `--repo=${r("local")}`, "--mode=bare-user"]);
    addRemote("local", "apps-remote", "apps", "org.example.Apps");
    addRemote("local", "os-remote", "os", "org.example.Os");
    addRemote("local", "os-usb", "usb/mirror", "org.example.Os");
  });
  afterAll(() => {
    spawnSync("gpgconf", ["--homedir", gpgHome, "--kill", "gpg-agent"]);
    tmp?.cleanup();
  });

  test("config finder: remotes whose summary lists the refs; the stale mirror is dropped; not-found refs are null", async () => {
    const repo = await Repo.open(r("local"));
    const refs = [
      { collectionId: "org.example.Apps", ref: "app1" },
      { collectionId: "org.example.Os", ref: "os/main" },
      { collectionId: "org.example.Apps", ref: "not-an-app" },
    ];
    const results = await findRemotes(repo, refs, { finders: ["config"] });
    expect(brief(results).sort((a, b) => a.url.localeCompare(b.url))).toEqual([
      {
        finder: "OstreeRepoFinderConfig",
        url: `file://${r("apps")}`,
        keyring: "apps-remote.trustedkeys.gpg",
        refs: expect.arrayContaining([`org.example.Apps/app1=${c.app1}`, "org.example.Os/os/main=null", "org.example.Apps/not-an-app=null"]),
      },
      {
        finder: "OstreeRepoFinderConfig",
        url: `file://${r("os")}`,
        keyring: "os-remote.trustedkeys.gpg",
        refs: expect.arrayContaining([`org.example.Os/os/main=${c.os2}`, "org.example.Apps/app1=null"]),
      },
    ]);
    expect(results.every((x) => x.priority === 100 && x.summaryLastModified > 0)).toBe(true);

    await pullFromRemotes(repo, results);
    expect(await readRef(repo, { kind: "remote", remote: "apps-remote" }, "app1")).toBe(c.app1);
    expect(await readRef(repo, { kind: "remote", remote: "os-remote" }, "os/main")).toBe(c.os2);
    expect(await readRef(repo, { kind: "remote", remote: "os-usb" }, "os/main")).toBeNull();
  }, 120_000);

  test("mount finder: .ostree/repos.d on a mount, keyring from the remote configured for the collection; pulls under that remote", async () => {
    ostree(["init", `--repo=${r("local2")}`, "--mode=bare-user"]);
    addRemote("local2", "os-remote", "os", "org.example.Os");
    const repo = await Repo.open(r("local2"));
    const refs = [{ collectionId: "org.example.Os", ref: "os/main" }];
    const mounted = await findRemotes(repo, refs, { finders: ["mount"], mountRoots: [r("usb")] });
    expect(brief(mounted)).toEqual([
      { finder: "OstreeRepoFinderMount", url: `file://${realpathSync(r("usb/mirror"))}`, keyring: "os-remote.trustedkeys.gpg", refs: [`org.example.Os/os/main=${c.os1}`] },
    ]);
    expect(mounted[0]!.priority).toBe(50);
    await pullFromRemotes(repo, mounted);
    expect(await readRef(repo, { kind: "remote", remote: "os-remote" }, "os/main")).toBe(c.os1);
    expect(ostree(["fsck", `--repo=${r("local2")}`])).toContain("Verifying content integrity of 1 commit objects");

    // Both finders: the mount's older commit loses to the configured remote's newer one.
    const both = await findRemotes(repo, refs, { finders: ["config", "mount"], mountRoots: [r("usb")] });
    expect(brief(both)).toEqual([{ finder: "OstreeRepoFinderConfig", url: `file://${r("os")}`, keyring: "os-remote.trustedkeys.gpg", refs: [`org.example.Os/os/main=${c.os2}`] }]);
    // Without a remote for the collection there is no keyring: the mount offers nothing.
    ostree(["init", `--repo=${r("local3")}`, "--mode=bare-user"]);
    expect(await findRemotes(await Repo.open(r("local3")), refs, { finders: ["mount"], mountRoots: [r("usb")] })).toEqual([]);
  }, 120_000);

  test("--mirror: refs land in refs/mirrors/COLLECTION; a repo with no matching remote finds nothing", async () => {
    ostree(["init", `--repo=${r("m")}`, "--mode=archive"]);
    addRemote("m", "apps-remote", "apps", "org.example.Apps");
    const repo = await Repo.open(r("m"));
    const results = await findRemotes(repo, [{ collectionId: "org.example.Apps", ref: "app2" }], { finders: ["config"] });
    await pullFromRemotes(repo, results, { mirror: true });
    expect(await readRef(repo, { kind: "mirror", collectionId: "org.example.Apps" }, "app2")).toBe(c.app2);
    expect(await readRef(repo, { kind: "remote", remote: "apps-remote" }, "app2")).toBeNull();
    expect(ostree(["refs", "--collections", `--repo=${r("m")}`])).toContain("(org.example.Apps, app2)");
    expect(await findRemotes(repo, [{ collectionId: "org.example.Nowhere", ref: "x" }], { finders: ["config"] })).toEqual([]);

    // Pulls through results verify commit signatures whatever the remote says: an unsigned commit fails, named.
    ostree(["init", `--repo=${r("unsigned")}`, "--mode=archive", "--collection-id=org.example.Unsigned"]);
    writeFileSync(join(r("tree"), "f"), "u");
    ostree(["commit", `--repo=${r("unsigned")}`, "-b", "u", "--no-xattrs", r("tree")]);
    ostree(["summary", "-u", `--repo=${r("unsigned")}`]);
    ostree(["remote", "add", `--repo=${r("m")}`, "--collection-id=org.example.Unsigned", "--no-gpg-verify", "unsigned-remote", `file://${r("unsigned")}`]);
    const reopened = await Repo.open(r("m"));
    const unsigned = await findRemotes(reopened, [{ collectionId: "org.example.Unsigned", ref: "u" }], { finders: ["config"] });
    expect(unsigned).toHaveLength(1);
    await expect(pullFromRemotes(reopened, unsigned)).rejects.toThrow("Failed to pull some refs from the remotes: (org.example.Unsigned, u)");
    expect(await readRef(reopened, { kind: "remote", remote: "unsigned-remote" }, "u")).toBeNull();
  }, 120_000);
});

test("userMountPoints: removable and home mounts from mountinfo, not system filesystems, dot directories or hidden ones", () => {
  const info = [
    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw",
    "25 22 0:5 / /proc rw - proc proc rw",
    "40 22 8:17 / /media/alice/USB\\040STICK rw,nosuid shared:30 - vfat /dev/sdb1 rw",
    "41 22 8:33 / /run/media/bob/disk rw shared:31 - ext4 /dev/sdc1 rw",
    "42 22 0:40 / /media/ram rw - tmpfs tmpfs rw",
    "43 22 8:49 / /home/carol/usb rw - ext4 /dev/sdd1 rw",
    "44 22 8:50 / /home/carol/.cache/x rw - ext4 /dev/sdd2 rw",
    "45 22 8:51 / /mnt/data rw - ext4 /dev/sdd3 rw",
    "46 40 0:41 / /media/alice/USB\\040STICK rw - tmpfs tmpfs rw",
  ].join("\n");
  expect(userMountPoints(info, "/home/carol")).toEqual(["/run/media/bob/disk", "/home/carol/usb"]);
});
