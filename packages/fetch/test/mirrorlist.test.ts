import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { describeInterop, expectOstreeFsckClean, ostree, runOstreeAsync, tempDir } from "@ostree-ts/interop";
import { readRef, Repo } from "@ostree-ts/objstore";
import { checkMetalinkTarget, parseMetalink, parseMirrorlist, pull, Remotes } from "../src/index.js";
import { staticServer, type StaticServer } from "./helpers.js";

function metalink(o: { size: number; sha256?: string; sha512?: string; urls: string[]; name?: string }): string {
  return `<?xml version="1.0" encoding="utf-8"?>
<metalink version="3.0" xmlns="http://www.metalinker.org/">
  <files>
    <file name="${o.name ?? "summary"}">
      <size>${o.size}</size>
      <verification>
        <hash type="md5">00000000000000000000000000000000</hash>
        ${o.sha256 ? `<hash type="sha256">${o.sha256}</hash>` : ""}
        ${o.sha512 ? `<hash type="sha512">${o.sha512}</hash>` : ""}
      </verification>
      <resources maxconnections="1">
        <url protocol="ftp" type="ftp" location="US" preference="100">ftp://example.com/summary</url>
${o.urls.map((u) => `        <url protocol="http" type="http" location="US" preference="90">${u}</url>`).join("\n")}
      </resources>
    </file>
  </files>
</metalink>
`;
}

describe("mirrorlist and metalink parsing", () => {
  test("mirrorlist: comments, blank lines and non-http entries skipped", () => {
    expect(parseMirrorlist("# mirrors\n\nhttp://a/repo\nfile:///srv/repo\nnot a url\nhttps://b/repo/\r\n")).toEqual(["http://a/repo", "https://b/repo/"]);
  });

  test("metalink: ostree's checks, in its words", () => {
    const body = Buffer.from("summary bytes");
    const sha256 = createHash("sha256").update(body).digest("hex");
    const sha512 = createHash("sha512").update(body).digest("hex");
    const t = parseMetalink(metalink({ size: body.length, sha256, sha512, urls: ["http://m1/r/summary", "http://m2/r/summary"] }), "summary");
    expect(t).toEqual({ size: body.length, sha256, sha512, urls: ["http://m1/r/summary", "http://m2/r/summary"] });
    checkMetalinkTarget(t, body);
    // sha512 is the one checked when both are given.
    expect(() => checkMetalinkTarget({ ...t, sha512: "0".repeat(128) }, body)).toThrow(`Expected checksum is ${"0".repeat(128)} but actual is ${sha512}`);
    expect(() => checkMetalinkTarget(t, Buffer.from("short"))).toThrow(`Expected size is ${body.length} bytes but content is 5 bytes`);
    expect(() => parseMetalink(metalink({ size: 1, sha256, urls: ["http://x/summary"], name: "other" }), "summary")).toThrow("No <file name='summary'> found");
    expect(() => parseMetalink("<metalink><files></files></metalink>", "summary")).toThrow("No <file> element found");
    expect(() => parseMetalink(metalink({ size: 0, sha256, urls: ["http://x/summary"] }), "summary")).toThrow("No <size> element found or it is zero");
    expect(() => parseMetalink(metalink({ size: 3, urls: ["http://x/summary"] }), "summary")).toThrow("No <verification> element with known <hash type=> found");
    expect(() => parseMetalink(metalink({ size: 3, sha256: "abc", urls: ["http://x/summary"] }), "summary")).toThrow("Invalid hash digest for sha256");
    expect(() => parseMetalink(metalink({ size: 3, sha256, urls: [] }), "summary")).toThrow("No <url method='http'> elements found");
    expect(() => parseMetalink("<metalink><files>", "summary")).toThrow(/not closed/);
    expect(() => parseMetalink("bacon\n", "summary")).toThrow("Document must begin with an element");
  });
});

let tmp: { path: string; cleanup: () => void };
let src: string;
let commit: string;
let listSrv: StaticServer;
let partial: StaticServer;
let full: StaticServer;
const deadMirror = "http://127.0.0.1:9/repo";

describeInterop("mirrorlist= and metalink= remotes against real ostree", () => {
  beforeAll(async () => {
    tmp = tempDir("fetch-mirrors-");
    src = join(tmp.path, "src");
    ostree(["init", `--repo=${src}`, "--mode=archive"]);
    const tree = join(tmp.path, "tree");
    mkdirSync(tree);
    for (let i = 0; i < 30; i++) writeFileSync(join(tree, `f${i}`), `file ${i}\n`.repeat(i + 1));
    commit = ostree(["commit", `--repo=${src}`, "-b", "main", "--no-xattrs", tree]).trim();
    ostree(["summary", "-u", `--repo=${src}`]);
    partial = await staticServer(src);
    full = await staticServer(src);
    // An incomplete mirror: every other content object is missing there.
    partial.fault = (path, n) => (path.endsWith(".filez") && n % 2 === 0 ? "404" : null);
    mkdirSync(join(tmp.path, "lists"));
    writeFileSync(join(tmp.path, "lists", "mirrors"), `# test mirrors\n${deadMirror}\n\n${partial.url}\n${full.url}\n`);
    listSrv = await staticServer(join(tmp.path, "lists"));
  });
  afterAll(async () => {
    for (const s of [listSrv, partial, full]) await s?.close();
    tmp?.cleanup();
  });

  test("url=mirrorlist=…: dead mirror skipped, objects missing on one mirror come from the next; ostree and ours agree", async () => {
    const listUrl = `mirrorlist=${listSrv.url}/mirrors`;
    const real = join(tmp.path, "real");
    ostree(["init", `--repo=${real}`, "--mode=bare-user"]);
    ostree(["remote", "add", `--repo=${real}`, "--no-gpg-verify", "origin", listUrl]);
    const r = await runOstreeAsync(["pull", `--repo=${real}`, "origin", "main"]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(ostree(["rev-parse", `--repo=${real}`, "origin:main"]).trim()).toBe(commit);
    expectOstreeFsckClean(real);

    partial.log.length = 0;
    full.log.length = 0;
    const ours = await Repo.init(join(tmp.path, "ours"), { mode: "bare-user" });
    await new Remotes(ours).add("origin", listUrl, { noGpgVerify: true });
    await pull(ours, "origin", { refs: ["main"] });
    expect(await readRef(ours, { kind: "remote", remote: "origin" }, "main")).toBe(commit);
    expectOstreeFsckClean(ours.path);
    const missed = partial.log.filter((l) => l.status === 404 && l.path.endsWith(".filez")).map((l) => l.path);
    expect(missed.length).toBeGreaterThan(0);
    expect(full.log.filter((l) => l.status === 200).map((l) => l.path).sort()).toEqual(missed.sort());
  }, 120_000);

  test("contenturl=mirrorlist=… with a plain url", async () => {
    const ours = await Repo.init(join(tmp.path, "ours-content"), { mode: "archive" });
    await new Remotes(ours).add("origin", full.url, { noGpgVerify: true, contentUrl: `mirrorlist=${listSrv.url}/mirrors` });
    await pull(ours, "origin", { refs: ["main"] });
    expect(await readRef(ours, { kind: "remote", remote: "origin" }, "main")).toBe(commit);
    expectOstreeFsckClean(ours.path);
  });

  test("a mirrorlist with no working mirror fails as ostree does", async () => {
    writeFileSync(join(tmp.path, "lists", "dead"), `${deadMirror}\nfile:///nowhere\n`);
    const listUrl = `mirrorlist=${listSrv.url}/dead`;
    const real = join(tmp.path, "real-dead");
    ostree(["init", `--repo=${real}`, "--mode=archive"]);
    ostree(["remote", "add", `--repo=${real}`, "--no-gpg-verify", "origin", listUrl]);
    const r = await runOstreeAsync(["pull", `--repo=${real}`, "origin", "main"]);
    expect(r.status).not.toBe(0);
    const ours = await Repo.init(join(tmp.path, "ours-dead"), { mode: "archive" });
    await new Remotes(ours).add("origin", listUrl, { noGpgVerify: true, set: [["tls-permissive", "false"]] });
    const expected = `No valid mirrors were found in mirrorlist '${listSrv.url}/dead'`;
    expect(r.stderr).toContain(expected);
    await expect(pull(ours, "origin", { refs: ["main"], retries: 0 })).rejects.toThrow(expected);
  }, 60_000);

  test("metalink=…: summary taken from the first URL whose size and hash match; both clients pull; a wrong hash fails both", async () => {
    const summary = readFileSync(join(src, "summary"));
    const sha256 = createHash("sha256").update(summary).digest("hex");
    const sha512 = createHash("sha512").update(summary).digest("hex");
    // The partial mirror serves a corrupted summary: rejected by its hash, the full mirror's is used.
    partial.fault = (path) => (path === "summary" ? "corrupt" : null);
    writeFileSync(join(tmp.path, "lists", "metalink.xml"), metalink({ size: summary.length, sha256, sha512, urls: [`${partial.url}/summary`, `${full.url}/summary`] }));
    writeFileSync(join(tmp.path, "lists", "bad.xml"), metalink({ size: summary.length, sha256: "0".repeat(64), urls: [`${full.url}/summary`] }));

    const real = join(tmp.path, "real-ml");
    ostree(["init", `--repo=${real}`, "--mode=archive"]);
    ostree(["remote", "add", `--repo=${real}`, "--no-gpg-verify", "origin", `metalink=${listSrv.url}/metalink.xml`]);
    expect(readFileSync(join(real, "config"), "utf8")).toContain(`metalink=${listSrv.url}/metalink.xml`);
    const r = await runOstreeAsync(["pull", `--repo=${real}`, "origin", "main"]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(ostree(["rev-parse", `--repo=${real}`, "origin:main"]).trim()).toBe(commit);

    const ours = await Repo.init(join(tmp.path, "ours-ml"), { mode: "archive" });
    await new Remotes(ours).add("origin", `metalink=${listSrv.url}/metalink.xml`, { noGpgVerify: true });
    expect(readFileSync(join(ours.path, "config"), "utf8")).toBe(readFileSync(join(real, "config"), "utf8"));
    full.log.length = 0;
    await pull(ours, "origin", { refs: ["main"] });
    expect(await readRef(ours, { kind: "remote", remote: "origin" }, "main")).toBe(commit);
    expectOstreeFsckClean(ours.path);
    // The summary came through the metalink: not fetched again from the mirror.
    expect(full.log.filter((l) => l.path === "summary")).toHaveLength(1);

    const realBad = join(tmp.path, "real-ml-bad");
    ostree(["init", `--repo=${realBad}`, "--mode=archive"]);
    ostree(["remote", "add", `--repo=${realBad}`, "--no-gpg-verify", "origin", `metalink=${listSrv.url}/bad.xml`]);
    const rb = await runOstreeAsync(["pull", `--repo=${realBad}`, "origin", "main"]);
    expect(rb.status).not.toBe(0);
    const oursBad = await Repo.init(join(tmp.path, "ours-ml-bad"), { mode: "archive" });
    await new Remotes(oursBad).add("origin", `metalink=${listSrv.url}/bad.xml`, { noGpgVerify: true });
    const expected = `Exhausted 1 metalink targets, last error: Expected checksum is ${"0".repeat(64)} but actual is ${sha256}`;
    expect(rb.stderr).toContain(expected);
    await expect(pull(oursBad, "origin", { refs: ["main"] })).rejects.toThrow(expected);
  }, 120_000);
});
