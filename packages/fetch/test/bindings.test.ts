import { appendFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describeInterop, ostree, tempDir } from "@ostree-ts/interop";
import { listRefs, Repo } from "@ostree-ts/objstore";
import { afterAll, beforeAll, expect, test } from "vitest";
import { pull, pullLocal, Remotes } from "../src/index.js";
import { staticServer, type StaticServer } from "./helpers.js";

// The cases of upstream test-pull-collections: commits made by the real ostree
// in a repo with a collection ID, pulled under refs their bindings do or do not cover.
const CID = "org.example.CollectionRepo";

let tmp: { path: string; cleanup: () => void };
let src: string;
let srv: StaticServer;
const commits: Record<string, string> = {};

describeInterop("ref and collection bindings on pull", () => {
  beforeAll(async () => {
    tmp = tempDir("fetch-bindings-");
    src = join(tmp.path, "src");
    ostree(["init", `--repo=${src}`, "--mode=archive"]);
    const commit = (ref: string, ...extra: string[]) => {
      const dir = join(tmp.path, `t-${ref}`);
      mkdirSync(dir);
      writeFileSync(join(dir, "f"), `${ref}\n`);
      commits[ref] = ostree(["commit", `--repo=${src}`, "-b", ref, "--no-xattrs", "-s", ref, ...extra, dir]).trim();
    };
    commit("nocid");
    // Set afterwards so "nocid" has a ref binding but no collection binding.
    appendFileSync(join(src, "config"), `collection-id=${CID}\n`);
    commit("othercid", "--add-metadata-string=ostree.collection-binding=org.example.Whatever");
    commit("good");
    ostree(["refs", `--repo=${src}`, `--create=alias`, commits.good!]);
    ostree(["summary", "-u", `--repo=${src}`]);
    srv = await staticServer(src);
  }, 60_000);
  afterAll(async () => {
    await srv?.close();
    tmp?.cleanup();
  });

  const failures: [ref: string, message: (c: Record<string, string>) => string][] = [
    ["nocid", (c) => `Commit ${c.nocid}: Expected commit metadata to have collection ID binding information, found none`],
    ["othercid", (c) => `Commit ${c.othercid}: Commit has collection ID ‘org.example.Whatever’ in collection binding metadata, while the remote it came from has collection ID ‘${CID}’`],
    ["alias", (c) => `Commit ${c.good}: Commit has no requested ref ‘alias’ in ref binding metadata (‘good’)`],
  ];

  test("pull-local checks against the source repo's collection ID, also for a commit it already has", async () => {
    const repo = await Repo.init(join(tmp.path, "local"), { mode: "archive" });
    for (const [ref, message] of failures) await expect(pullLocal(repo, src, { refs: [ref] }), ref).rejects.toThrow(message(commits));
    await pullLocal(repo, src, { refs: ["good"] });
    // "alias" points at the commit just pulled under "good": still refused.
    await expect(pullLocal(repo, src, { refs: ["alias"] })).rejects.toThrow(failures[2]![1](commits));
    // Both refs in one pull: the commit is fetched once, each ref's binding is still checked.
    const both = await Repo.init(join(tmp.path, "local-both"), { mode: "archive" });
    await expect(pullLocal(both, src, { refs: ["good", "alias"] })).rejects.toThrow(failures[2]![1](commits));
    for (const [ref] of failures) await pullLocal(repo, src, { refs: [ref], disableVerifyBindings: true });
    expect((await listRefs(repo)).map((r) => r.refspec).sort()).toEqual(["alias", "good", "nocid", "othercid"]);
  });

  test("HTTP pull checks against the remote's configured collection ID", async () => {
    const repo = await Repo.init(join(tmp.path, "http"), { mode: "archive" });
    await new Remotes(repo).add("origin", srv.url, { noGpgVerify: true, collectionId: CID });
    for (const [ref, message] of failures) await expect(pull(repo, "origin", { refs: [ref] }), ref).rejects.toThrow(message(commits));
    await pull(repo, "origin", { refs: ["good"] });
    await expect(pull(repo, "origin", { refs: ["alias"] })).rejects.toThrow(failures[2]![1](commits));
    await pull(repo, "origin", { refs: ["alias"], disableVerifyBindings: true });

    // Without a collection ID only the ref binding is checked.
    const plain = await Repo.init(join(tmp.path, "http-plain"), { mode: "archive" });
    await new Remotes(plain).add("origin", srv.url, { noGpgVerify: true });
    await pull(plain, "origin", { refs: ["nocid", "othercid"] });
    await expect(pull(plain, "origin", { refs: ["alias"] })).rejects.toThrow(failures[2]![1](commits));
  });
});
