import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describeInterop, ostree, runOstreeAsync, tempDir } from "@ostree-ts/interop";
import { listRefs, ObjectType, Repo } from "@ostree-ts/objstore";
import { afterAll, beforeAll, expect, test } from "vitest";
import { pull, pullLocal, Remotes } from "../src/index.js";
import { staticServer, type StaticServer } from "./helpers.js";

// test-commit-sign "repull corrupted": a server's .commitmeta overwritten with garbage.
const BORK = new TextEncoder().encode("borkborkbork\n");

let tmp: { path: string; cleanup: () => void };
let src: string;
let commit: string;
let srv: StaticServer;

describeInterop("pull of a commit whose detached metadata is garbage", () => {
  beforeAll(async () => {
    tmp = tempDir("fetch-commitmeta-");
    src = join(tmp.path, "src");
    ostree(["init", `--repo=${src}`, "--mode=archive"]);
    mkdirSync(join(tmp.path, "t"));
    writeFileSync(join(tmp.path, "t", "f"), "one\n");
    commit = ostree(["commit", `--repo=${src}`, "-b", "main", "--no-xattrs", "-s", "one", join(tmp.path, "t")]).trim();
    const srcRepo = await Repo.open(src);
    writeFileSync(srcRepo.objectPath(commit, ObjectType.CommitMeta), BORK);
    srv = await staticServer(src);
  }, 60_000);
  afterAll(async () => {
    await srv?.close();
    tmp?.cleanup();
  });

  async function client(name: string, gpgVerify: boolean): Promise<Repo> {
    const repo = await Repo.init(join(tmp.path, name), { mode: "archive" });
    await new Remotes(repo).add("origin", srv.url, { set: [["gpg-verify", String(gpgVerify)]] });
    return repo;
  }

  test("over HTTP with gpg-verify=false: succeeds and stores the same normal form as ostree", async () => {
    const ours = await client("ours", false);
    await pull(ours, "origin", { refs: ["main"] });
    expect((await listRefs(ours)).map((r) => r.checksum)).toEqual([commit]);

    const theirs = join(tmp.path, "theirs");
    ostree(["init", `--repo=${theirs}`, "--mode=archive"]);
    ostree(["remote", "add", `--repo=${theirs}`, "--set=gpg-verify=false", "origin", srv.url]);
    expect((await runOstreeAsync(["pull", `--repo=${theirs}`, "origin", "main"])).status).toBe(0);

    const rel = ours.objectPath(commit, ObjectType.CommitMeta).slice(ours.path.length);
    const stored = readFileSync(ours.objectPath(commit, ObjectType.CommitMeta));
    expect(stored.length).toBe(48);
    expect(stored).toEqual(readFileSync(join(theirs, rel)));
  });

  test("over HTTP with gpg-verify=true: fails as ostree does, nothing is stored", async () => {
    const ours = await client("ours-gpg", true);
    await expect(pull(ours, "origin", { refs: ["main"] })).rejects.toThrow(
      `Commit ${commit}: GPG verification enabled, but no signatures found (use gpg-verify=false in remote config to disable)`,
    );
    expect(await listRefs(ours)).toEqual([]);
  });

  test("from a local repo: the file is copied unchanged, as ostree does", async () => {
    const ours = await Repo.init(join(tmp.path, "ours-local"), { mode: "archive" });
    await pullLocal(ours, src, { refs: ["main"] });
    expect(new Uint8Array(readFileSync(ours.objectPath(commit, ObjectType.CommitMeta)))).toEqual(BORK);
  });
});
