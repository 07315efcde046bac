import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { describeInterop, expectOstreeFsckClean, makeDeltaTestTree, ostree, runOstreeAsync, tempDir, until } from "@ostree-ts/interop";
import { deltaIndexPath, superblockPath } from "@ostree-ts/deltas";
import { RepoServer, type AccessLogEntry, type ServerEvent } from "../src/server.js";
import { summaryDeltas } from "./helpers.js";

let tmp: { path: string; cleanup: () => void };
const servers: RepoServer[] = [];

describeInterop("ostree-ts-server: deltas from older ancestors, pruning of deltas to old tips", () => {
  beforeAll(() => {
    tmp = tempDir("server-depth-");
  });
  afterAll(async () => {
    for (const s of servers) await s.stop();
    tmp?.cleanup();
  });

  test("fromDepth 2: real ostree on the grandparent pulls by the grandparent→tip delta; deltas to a former tip go after the grace period", async () => {
    const src = join(tmp.path, "src");
    ostree(["init", `--repo=${src}`, "--mode=archive"]);
    const tree = join(tmp.path, "tree");
    makeDeltaTestTree(tree, 1);
    const commit = (n: number) => {
      writeFileSync(join(tree, "version"), `${n}\n`);
      return ostree(["commit", `--repo=${src}`, "-b", "os", "--no-xattrs", tree]).trim();
    };
    const c1 = commit(1);
    const log: AccessLogEntry[] = [];
    const events: ServerEvent[] = [];
    const server = new RepoServer({
      repos: [{ name: "", path: src }],
      port: 0,
      summaryPollMs: 50,
      log: (e) => log.push(e),
      events: (e) => events.push(e),
      deltas: { enabled: true, fromDepth: 2, pruneAfterSeconds: 1 },
    });
    servers.push(server);
    const url = `http://127.0.0.1:${await server.start()}`;
    const dest = join(tmp.path, "dest");
    ostree(["init", `--repo=${dest}`, "--mode=bare-user"]);
    ostree(["remote", "add", `--repo=${dest}`, "--no-gpg-verify", "origin", url]);
    let r = await runOstreeAsync(["pull", `--repo=${dest}`, "origin", "os"]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);

    const c2 = commit(2);
    await until("delta c1→c2", () => summaryDeltas(src).includes(`${c1}-${c2}`), 90_000);
    const c3 = commit(3);
    await until("deltas c2→c3 and c1→c3", () => summaryDeltas(src).includes(`${c2}-${c3}`) && summaryDeltas(src).includes(`${c1}-${c3}`), 90_000);

    log.length = 0;
    r = await runOstreeAsync(["pull", "--require-static-deltas", `--repo=${dest}`, "origin", "os"]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(ostree(["rev-parse", `--repo=${dest}`, "origin:os"]).trim()).toBe(c3);
    const paths = log.map((l) => l.path);
    expect(paths).toContain(`/${superblockPath(c1, c3)}`);
    expect(paths).not.toContain(`/${superblockPath(c2, c3)}`);
    expectOstreeFsckClean(dest);

    // c2 is no tip any more: c1→c2 goes after the 1 s grace, with its index; the summary no longer lists it.
    await until("c1→c2 pruned", () => !summaryDeltas(src).includes(`${c1}-${c2}`), 90_000);
    await server.deltaWorkers.get("")!.idle();
    await server.keepers.get("")!.idle();
    expect(existsSync(join(src, superblockPath(c1, c2)))).toBe(false);
    expect(existsSync(join(src, deltaIndexPath(c2)))).toBe(false);
    expect(existsSync(join(src, deltaIndexPath(c3)))).toBe(true);
    expect(summaryDeltas(src)).toEqual([`${c1}-${c3}`, `${c2}-${c3}`].sort());
    expect(events.filter((e) => e.event === "delta-pruned").map((e) => e.delta)).toEqual([`${c1}-${c2}`]);
    const listed = ostree(["static-delta", "list", `--repo=${src}`]);
    expect(listed).not.toContain(`${c1}-${c2}`);
    expectOstreeFsckClean(src);
  }, 240_000);
});
